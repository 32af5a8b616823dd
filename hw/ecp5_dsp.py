"""The MULT18X18D's own registers: move the fabric registers around each multiplier of a
``synth_ecp5`` netlist into the DSP, and prove the rewritten netlist equivalent to the one before.

Yosys maps every ECP5 multiplier to a MULT18X18D with all its registers off (it packs registers
into Xilinx DSP48s with ``xilinx_dsp``, but has no such pass for ECP5), so a generated MAC's
operand register -> multiplier -> product register runs through the fabric: about 4.5 ns in the
DSP plus up to 13 ns of routing to it and from it on an LFE5U-85F. The same multiplier with its
input and output registers inside routes at 310 MHz in nextpnr-ecp5.

:func:`absorb_registers` rewrites the netlist between synthesis and placement:

- **output**: when every used product bit goes to exactly one fabric register (its data input),
  those registers become the DSP's output register (``REG_OUTPUT_CLK = CLK0``) and are removed;
  the DSP then drives their nets.
- **inputs**: when every bit of operand A and every bit of operand B comes from a fabric register
  (or is a constant 0), the DSP registers the registers' *data inputs* itself
  (``REG_INPUTA_CLK = REG_INPUTB_CLK = CLK0``): a per-DSP copy of the operand registers. The
  fabric register stays while anything else reads it. Both operands or neither: nextpnr-ecp5
  times a DSP with one registered operand as if neither were (``pack.cc``, "mixed input register
  modes"), from the register's data input through the multiplier, which is longer than before.

Only registers a DSP register can stand for are moved: rising edge of the one clock, no reset
(the DSP's reset and clock-enable priority is not that of a fabric register, so the generator
keeps the registers next to its multipliers reset-free: :meth:`hw.mac.Pipeline.data`), an
initial value of 0 (the DSP's registers power up at 0), and a clock enable that becomes one of
the DSP's four (``CE0`` .. ``CE3``). The signedness pins must be constants.

:func:`verify_absorption` proves the rewrite with Yosys: the region it touched (the DSPs and the
fabric registers around them) is cut out of both netlists, with the same inputs and outputs, and
``sat -tempinduct`` proves the two regions equal from power-up on for every input sequence. The
DSP model used there (:data:`MODEL`) exposes the operands the multiplier sees (``QA``, ``QB``), so
that the per-DSP operand copies are compared with the fabric registers they stand for, and it
stands for the product by the concatenation ``{B, A}``: the rewrite only moves registers across
the multiplier, a function of (A, B) that maps (0, 0) to 0, so a proof with a function that keeps
all of A and B (any wrong bit, wrong enable or lost cycle shows) holds for the product too.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from pathlib import Path

from common.errors import CodesignError

from .synth import run_logged, yosys_path

__all__ = ["absorb_registers", "verify_absorption", "MODEL", "GROUPS"]

#: The DSP's register groups that :func:`absorb_registers` fills: operand A, operand B, product.
GROUPS = ("INPUTA", "INPUTB", "OUTPUT")
_CTRL_PINS = ("SIGNEDA", "SIGNEDB", "SOURCEA", "SOURCEB")


def _top(netlist: dict) -> tuple[str, dict]:
    for name, mod in netlist["modules"].items():
        if mod.get("attributes", {}).get("top"):
            return name, mod
    raise CodesignError("the synthesised netlist has no top module")


def _param(cell: dict, name: str, default: str) -> str:
    # Yosys' JSON writes a string parameter that looks like bits with a trailing space
    return str(cell.get("parameters", {}).get(name, default)).strip()


class _Index:
    """Drivers and readers of every net bit of a module, kept current through the rewrite."""

    def __init__(self, mod: dict):
        self.cells = mod["cells"]
        self.driver: dict[int, tuple[str, str]] = {}
        self.readers: dict[int, set] = defaultdict(set)
        self.port_bits = {b for p in mod["ports"].values() for b in p["bits"] if isinstance(b, int)}
        for name, cell in self.cells.items():
            for pin, bits in cell["connections"].items():
                out = cell.get("port_directions", {}).get(pin) == "output"
                for b in bits:
                    if isinstance(b, int):
                        if out:
                            self.driver[b] = (name, pin)
                        else:
                            self.readers[b].add((name, pin))

    def reconnect(self, cell: str, pin: str, new) -> None:
        """Point input ``pin`` of ``cell`` at bit ``new``."""
        old = self.cells[cell]["connections"][pin][0]
        if isinstance(old, int):
            self.readers[old].discard((cell, pin))
        self.cells[cell]["connections"][pin] = [new]
        if isinstance(new, int):
            self.readers[new].add((cell, pin))


def _ff_control(cell: dict) -> tuple | None:
    """``(clock bit, enable)`` of a fabric register that a DSP register can stand for (rising
    clock, no reset, initial value 0; enable a net bit or ``"1"``), else ``None``."""
    if cell["type"] != "TRELLIS_FF":
        return None
    c = cell["connections"]
    if (_param(cell, "CLKMUX", "CLK") != "CLK" or _param(cell, "REGSET", "RESET") != "RESET"
            or _param(cell, "LSRMUX", "LSR") != "LSR" or _param(cell, "LSRMODE", "LSR") != "LSR"
            or c.get("LSR", ["0"]) != ["0"] or not isinstance(c["CLK"][0], int)):
        return None
    cemux = _param(cell, "CEMUX", "1")
    if cemux == "1":
        return (c["CLK"][0], "1")
    if cemux == "CE":
        return (c["CLK"][0], c["CE"][0])
    return None


def _one_control(idx: _Index, regs: dict) -> dict | None:
    """``{"regs": regs, "ctrl": (clock, enable)}`` when there are registers and they share one
    control that a DSP register can stand for, else ``None``."""
    ctrl = {_ff_control(idx.cells[ff]) for ff in regs.values()}
    if not regs or None in ctrl or len(ctrl) != 1:
        return None
    return {"regs": regs, "ctrl": ctrl.pop()}


def _output_group(idx: _Index, name: str) -> dict | None:
    """The fabric registers after a DSP's product (``{pin: register}``) and their control."""
    regs = {}
    for pin, (b,) in idx.cells[name]["connections"].items():
        if not (pin[0] == "P" and pin[1:].isdigit()) or not isinstance(b, int):
            continue
        readers = idx.readers.get(b, set())
        if not readers and b not in idx.port_bits:
            continue  # an unused product bit
        if len(readers) != 1 or b in idx.port_bits:
            return None
        (ff, ffpin), = readers
        if ffpin != "DI":
            return None
        regs[pin] = ff
    return _one_control(idx, regs)


def _input_group(idx: _Index, name: str, port: str, removed: set) -> dict | None:
    """The fabric registers before operand ``port`` (``{pin: register}``; constant-0 bits
    allowed) and their control."""
    regs = {}
    for i in range(18):
        pin = f"{port}{i}"
        b = idx.cells[name]["connections"].get(pin, ["0"])[0]
        if b == "0":
            continue
        if not isinstance(b, int) or b not in idx.driver:
            return None  # a constant 1 (a DSP register powers up at 0) or an undriven bit
        ff, ffpin = idx.driver[b]
        if ffpin != "Q" or ff in removed:
            return None
        regs[pin] = ff
    return _one_control(idx, regs)


def absorb_registers(netlist: dict) -> dict:
    """Rewrite ``netlist`` (Yosys JSON of a ``synth_ecp5`` run, changed in place) so that each
    MULT18X18D holds the registers around it that it can (module docstring). Returns
    ``{"dsp": n, "output": n, "inputa": n, "inputb": n, "removed_ffs": n, "region": {...}}``:
    counts of DSPs and of DSPs with each register group, the fabric registers removed, and the
    cells :func:`verify_absorption` checks (``dsps``, ``ffs``: every register moved or copied)."""
    _, mod = _top(netlist)
    idx = _Index(mod)
    cells = idx.cells
    removed: set = set()
    touched_ffs: set = set()
    counts = {"dsp": 0, "output": 0, "inputa": 0, "inputb": 0}
    region_dsps = []
    for name in sorted(cells):
        cell = cells[name]
        if cell["type"] != "MULT18X18D":
            continue
        counts["dsp"] += 1
        if any(_param(cell, f"REG_{g}_CLK", "NONE") != "NONE"
               for g in (*GROUPS, "INPUTC", "PIPELINE")):
            continue
        if any(cell["connections"].get(p, ["0"])[0] not in ("0", "1") for p in _CTRL_PINS):
            continue
        found = {"OUTPUT": _output_group(idx, name),
                 "INPUTA": _input_group(idx, name, "A", removed),
                 "INPUTB": _input_group(idx, name, "B", removed)}
        found = {g: v for g, v in found.items() if v is not None}
        if not found:
            continue
        # the DSP's registers share its one clock pin
        clock = next(iter(found.values()))["ctrl"][0]
        found = {g: v for g, v in found.items() if v["ctrl"][0] == clock}
        if ("INPUTA" in found) != ("INPUTB" in found):
            # nextpnr times a MULT18X18D with one operand registered as if neither were (from
            # the register's data input through the multiplier): both or none
            found = {g: v for g, v in found.items() if g == "OUTPUT"}
            if not found:
                continue
        enables = sorted({v["ctrl"][1] for v in found.values()}, key=str)
        pins = {ce: f"CE{i}" for i, ce in enumerate(enables)}
        conn, dirs, params = cell["connections"], cell.setdefault("port_directions", {}), \
            cell.setdefault("parameters", {})
        for pin, bit in (("CLK0", clock), ("RST0", "0"), *((p, ce) for ce, p in pins.items())):
            conn[pin] = [bit]
            dirs[pin] = "input"
            if isinstance(bit, int):
                idx.readers[bit].add((name, pin))
        params.update({"RESETMODE": "SYNC", "GSR": "DISABLED"})
        for g, v in found.items():
            params.update({f"REG_{g}_CLK": "CLK0", f"REG_{g}_CE": pins[v["ctrl"][1]],
                           f"REG_{g}_RST": "RST0"})
            counts[g.lower()] += 1
            touched_ffs.update(v["regs"].values())
            if g == "OUTPUT":
                for pin, ff in v["regs"].items():
                    q = cells[ff]["connections"]["Q"][0]
                    old = conn[pin][0]
                    idx.readers[old].discard((ff, "DI"))
                    conn[pin] = [q]
                    idx.driver[q] = (name, pin)
                    for fpin, (b,) in cells[ff]["connections"].items():
                        if isinstance(b, int) and fpin != "Q":
                            idx.readers[b].discard((ff, fpin))
                    removed.add(ff)
            else:
                for pin, ff in v["regs"].items():
                    idx.reconnect(name, pin, cells[ff]["connections"]["DI"][0])
        region_dsps.append(name)
    # an operand register that only its DSPs read is now a copy nobody reads: remove it
    for ff in sorted(touched_ffs - removed):
        q = cells[ff]["connections"]["Q"][0]
        if not idx.readers.get(q) and q not in idx.port_bits:
            for fpin, (b,) in cells[ff]["connections"].items():
                if isinstance(b, int) and fpin != "Q":
                    idx.readers[b].discard((ff, fpin))
            removed.add(ff)
    for ff in removed:
        del cells[ff]
    return {**counts, "removed_ffs": len(removed),
            "region": {"dsps": region_dsps, "ffs": sorted(touched_ffs)}}


def _model() -> str:
    a = ", ".join(f"A{i}" for i in range(18))
    b = ", ".join(f"B{i}" for i in range(18))
    c = ", ".join(f"C{i}" for i in range(18))
    p = ", ".join(f"P{i}" for i in range(36))
    cat = lambda n, w: "{" + ", ".join(f"{n}{i}" for i in reversed(range(w))) + "}"  # noqa: E731
    sel = ("(SEL == \"CE0\") ? CE0 : (SEL == \"CE1\") ? CE1 : (SEL == \"CE2\") ? CE2 : "
           "(SEL == \"CE3\") ? CE3 : 1'bx")
    regs = []
    for g, src, w in (("INPUTA", "a", 18), ("INPUTB", "b", 18), ("OUTPUT", "prod", 36)):
        regs.append(f"""
    wire ce_{g} = {sel.replace('SEL', f'REG_{g}_CE')};
    reg [{w - 1}:0] r_{g} = 0;
    always @(posedge CLK0) if (ce_{g}) r_{g} <= {src};
    wire [{w - 1}:0] u_{g} = (REG_{g}_CLK == "NONE") ? {src} : r_{g};""")
    params = "\n".join(f'    parameter REG_{g}_{k} = "{v}";' for g in
                       ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT")
                       for k, v in (("CLK", "NONE"), ("CE", "CE0"), ("RST", "RST0")))
    return f"""// MULT18X18D for hw.ecp5_dsp.verify_absorption only: the registers that
// absorb_registers sets (clock CLK0, enable CE0..CE3, no reset), the operands as the
// multiplier sees them (QA, QB) and, for the product, the concatenation {{B, A}}
// (see hw/ecp5_dsp.py).
module MULT18X18D({a}, {b}, {c}, SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3, {p}, QA, QB);
    input {a}, {b}, {c};
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB;
    input CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3;
    output {p};
    output [17:0] QA, QB;
{params}
    parameter GSR = "ENABLED";
    parameter RESETMODE = "SYNC";
    parameter CLK0_DIV = "ENABLED";
    parameter CLK1_DIV = "ENABLED";
    parameter CLK2_DIV = "ENABLED";
    parameter CLK3_DIV = "ENABLED";
    parameter HIGHSPEED_CLK = "NONE";
    parameter CAS_MATCH_REG = "FALSE";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";
    wire [17:0] a = {cat('A', 18)};
    wire [17:0] b = {cat('B', 18)};
    wire [35:0] prod;{regs[0]}{regs[1]}
    assign prod = {{u_INPUTB, u_INPUTA}};{regs[2]}
    assign {cat('P', 36)} = u_OUTPUT;
    assign QA = u_INPUTA;
    assign QB = u_INPUTB;
endmodule
"""


#: The MULT18X18D model of :func:`verify_absorption` (Verilog).
MODEL = _model()


def _region(mod: dict, dsps, ffs, outputs, taps_from: int, name: str) -> dict:
    """Module ``name``: the cells ``dsps`` + ``ffs`` of ``mod`` that it still has, with a port
    per input bit (``i<bit>``), per bit of ``outputs`` (``o<bit>``) and per DSP the operands its
    multiplier sees (``qa_<k>``, ``qb_<k>``, from bit ``taps_from`` on)."""
    cells = {n: copy.deepcopy(mod["cells"][n]) for n in (*dsps, *ffs) if n in mod["cells"]}
    nxt = taps_from
    ports = {}
    for k, d in enumerate(dsps):
        cell = cells[d]
        for q in ("QA", "QB"):
            bits = list(range(nxt, nxt + 18))
            nxt += 18
            cell["connections"][q] = bits
            cell.setdefault("port_directions", {})[q] = "output"
            ports[f"{q.lower()}_{k}"] = {"direction": "output", "bits": bits}
    return _finish_region(cells, ports, outputs, f"DSP register check ({name})")


def _finish_region(cells: dict, ports: dict, outputs, what: str) -> dict:
    """A region module of ``cells`` with ``ports`` (those a rewrite's model adds) and a port per
    bit its cells read that none of them drives and no port names (``i<bit>``) and per bit of
    ``outputs`` (``o<bit>``, each driven in it, else an error naming ``what``)."""
    driven, read = set(), set()
    for cell in cells.values():
        for pin, bits in cell["connections"].items():
            out = cell.get("port_directions", {}).get(pin) == "output"
            (driven if out else read).update(b for b in bits if isinstance(b, int))
    named = {b for v in ports.values() for b in v["bits"]}
    for b in sorted(read - driven - named):
        ports[f"i{b}"] = {"direction": "input", "bits": [b]}
    for b in sorted(outputs):
        if b not in driven:
            raise CodesignError(f"{what}: net bit {b} is not driven")
        ports[f"o{b}"] = {"direction": "output", "bits": [b]}
    return {"ports": ports, "cells": cells, "netnames": {}}


def verify_absorption(gold: dict, gate: dict, region: dict, workdir, *,
                      timeout: float = 3600) -> dict:
    """Prove that ``gate`` (``gold`` after :func:`absorb_registers`) equals ``gold`` on the
    region the rewrite touched (module docstring). Writes ``dsp_check/`` in ``workdir``
    (the two regions, the model, the Yosys script and log); returns ``{"proved": True,
    "dsps": n, "registers": n, "inputs": n, "outputs": n}`` or raises a one-line error."""
    dsps, ffs = list(region["dsps"]), list(region["ffs"])
    work = Path(workdir) / "dsp_check"
    work.mkdir(parents=True, exist_ok=True)
    if not dsps:
        return {"proved": True, "dsps": 0, "registers": 0, "inputs": 0, "outputs": 0}
    checked = _prove_regions(
        gold, gate, set(dsps) | set(ffs),
        lambda mod, outputs, free, name: _region(mod, dsps, ffs, outputs, free, name),
        work, model=("mult18x18d_model.v", MODEL), creator="hw.ecp5_dsp",
        what="the DSP register equivalence check", timeout=timeout,
        failure="the netlist with registers moved into the MULT18X18Ds is not proved equal to "
                "the synthesised one",
        hint="implement with --no-dsp-registers to place the synthesised netlist as it is")
    return {"proved": True, "dsps": len(dsps), "registers": len(ffs), **checked}


def _prove_regions(gold: dict, gate: dict, inside: set, region, work: Path, *, model, creator,
                   what: str, failure: str, hint: str, timeout: float) -> dict:
    """Prove with ``yosys sat -tempinduct`` that the cells ``inside`` of ``gate`` equal those of
    ``gold`` from power-up on, cut out of both by ``region(mod, outputs, free_bit, name)`` (the
    outputs: what the cells drive that the rest of ``gold`` or a port reads; ``free_bit``: the
    first net bit neither netlist uses) and read with ``model`` (``(file name, Verilog)``) in
    ``work``. Returns ``{"inputs": n, "outputs": n}``; an unproved check raises one line,
    ``failure (the first error); see <log>; hint``."""
    _, gmod = _top(gold)
    _, tmod = _top(gate)
    drivers = set()
    for n in inside:
        cell = gmod["cells"][n]
        for pin, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(pin) == "output":
                drivers.update(b for b in bits if isinstance(b, int))
    outside = {b for n, cell in gmod["cells"].items() if n not in inside
               for pin, bits in cell["connections"].items()
               if cell.get("port_directions", {}).get(pin) != "output"
               for b in bits if isinstance(b, int)}
    port_bits = {b for p in gmod["ports"].values() for b in p["bits"] if isinstance(b, int)}
    outputs = {b for b in drivers if b in outside or b in port_bits}
    free = max((b for m in (gmod, tmod) for c in m["cells"].values()
                for bits in c["connections"].values() for b in bits if isinstance(b, int)),
               default=0) + 1
    mods = {n: region(m, outputs, free, n) for n, m in (("gold", gmod), ("gate", tmod))}
    # both regions take the same inputs (one may read a bit the other does not)
    ins = {p: v for m in mods.values() for p, v in m["ports"].items() if v["direction"] == "input"}
    for m in mods.values():
        for p, v in ins.items():
            m["ports"].setdefault(p, v)
    for n, m in mods.items():
        (work / f"{n}.json").write_text(json.dumps({"creator": creator, "modules": {n: m}}))
    model_file, model_text = model
    (work / model_file).write_text(model_text)
    script = [f"read_verilog -sv {model_file}", "read_verilog +/ecp5/common_sim.vh",
              "read_json gold.json", "read_json gate.json",
              "miter -equiv -make_assert -ignore_gold_x gold gate miter",
              "hierarchy -top miter", "proc", "flatten", "opt_clean",
              "sat -verify -tempinduct -prove-asserts -set-init-zero -seq 1 miter"]
    (work / "check.ys").write_text("\n".join(script) + "\n")
    log = work / "yosys.log"
    proc = run_logged([yosys_path(), "-q", "-l", log.name, "check.ys"], cwd=work,
                      log=work / "yosys.out", timeout=timeout, what=what)
    text = log.read_text(errors="replace") if log.exists() else ""
    if proc.returncode != 0 or "SUCCESS!" not in text:
        errs = [ln.strip() for ln in text.splitlines() if "ERROR" in ln] or \
            [ln.strip() for ln in text.splitlines() if "failed" in ln]
        raise CodesignError(f"{failure} ({(errs or ['no proof'])[0]}); see {log}; {hint}")
    n_in = sum(1 for v in mods["gold"]["ports"].values() if v["direction"] == "input")
    return {"inputs": n_in, "outputs": len(outputs)}
