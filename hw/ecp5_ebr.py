"""The DP16KD's own output register: move the fabric register after each block RAM read of a
``synth_ecp5`` netlist into the RAM (``REGMODE_A`` / ``REGMODE_B`` = ``OUTREG``), and prove the
rewritten netlist equivalent to the one before.

Yosys maps every ECP5 block RAM with its output register off (``memory_libmap`` has no such
option for the DP16KD), so the generator's register after a RAM read (a FIFO's read register, a
dense line buffer's row words) takes the data 5.8 ns after the clock on speed grade 6: a path of
6.2 ns of logic before any routing, the digits network's worst on LFE5U-85F once the
read-during-write logic was gone (``no_rw_check``, :mod:`hw.fifo`). With the register inside, the
RAM's data leaves a register.

:func:`absorb_output_registers` rewrites the netlist between synthesis (and
:func:`hw.ecp5_dsp.absorb_registers`) and placement: for each port (A, B) of each DP16KD whose
output register is off, when every read bit of its data output goes to exactly one fabric
register (its data input), the registers share one control that the RAM's output register can
stand for (the port's own clock net, no reset, initial value 0, an enable or none), the port's
reset pin is a constant 0 and neither port is 36 bits wide (then one read leaves on both ports'
outputs), those registers become the port's output register (``OCE`` their
enable) and are removed; the RAM then drives their nets. Cycle for cycle the same: the RAM's read
is still registered once inside it (the address), and its data once more, by the same clock and
enable, where the fabric register held it. As for the MULT18X18D's registers, both the proof
and the rewrite take the RAM's output register to power up at 0, as the fabric register does;
the generator's registers after a RAM read hold data that a valid bit qualifies (a FIFO's, a line
buffer step's), so a first word before any read is never used either way.

:func:`verify_absorption` proves the rewrite with Yosys: the RAMs and the registers it touched are
cut out of both netlists, and ``sat -tempinduct`` proves the two regions equal from power-up on
for every input sequence. The RAM model used there (:data:`MODEL`) takes what the port reads
without its output register (its array's word, registered at the address) as free inputs
(``RAWA``, ``RAWB``), the same in both regions: the rewrite touches no input of the RAM, so a
proof for every such sequence holds for the one the array gives.
"""

from __future__ import annotations

import copy
from pathlib import Path

from .ecp5_dsp import _ff_control, _finish_region, _Index, _param, _prove_regions, _top

__all__ = ["absorb_output_registers", "verify_absorption", "MODEL", "PORTS"]

#: The DP16KD's two ports.
PORTS = ("A", "B")
_WIDTH = 18  # data bits per port


def _width(cell: dict, port: str) -> int:
    v = _param(cell, f"DATA_WIDTH_{port}", "18")
    return int(v, 2) if v and set(v) <= {"0", "1"} and len(v) > 2 else int(v)


def _port_group(idx: _Index, name: str, port: str) -> dict | None:
    """``{"regs": {pin: register}, "ctrl": (clock, enable)}`` of the fabric registers after port
    ``port``'s data output, when they can become its output register, else ``None``."""
    cell = idx.cells[name]
    conn = cell["connections"]
    if _param(cell, f"REGMODE_{port}", "NOREG") != "NOREG":
        return None
    clock = conn.get(f"CLK{port}", ["x"])[0]
    if (not isinstance(clock, int) or conn.get(f"RST{port}", ["0"]) != ["0"]
            or _param(cell, f"CLK{port}MUX", f"CLK{port}") != f"CLK{port}"
            or _param(cell, f"OCE{port}MUX", f"OCE{port}") != f"OCE{port}"
            or conn.get(f"OCE{port}", ["1"]) != ["1"]):
        return None
    regs = {}
    for i in range(_WIDTH):
        pin = f"DO{port}{i}"
        b = conn.get(pin, [None])[0]
        if not isinstance(b, int):
            continue
        readers = idx.readers.get(b, set())
        if not readers and b not in idx.port_bits:
            continue  # a bit nothing reads
        if len(readers) != 1 or b in idx.port_bits:
            return None
        (ff, ffpin), = readers
        if ffpin != "DI":
            return None
        regs[pin] = ff
    ctrl = {_ff_control(idx.cells[ff]) for ff in regs.values()}
    if not regs or None in ctrl or len(ctrl) != 1:
        return None
    ctrl = ctrl.pop()
    return {"regs": regs, "ctrl": ctrl} if ctrl[0] == clock else None


def absorb_output_registers(netlist: dict) -> dict:
    """Rewrite ``netlist`` (Yosys JSON of a ``synth_ecp5`` run, changed in place) so that each
    DP16KD port holds the register after its read where it can (module docstring). Returns
    ``{"ebr": n, "ports": n, "removed_ffs": n, "region": {"rams": [...], "ffs": [...]}}``: the
    RAMs, the ports given their output register, the fabric registers removed, and the cells
    :func:`verify_absorption` checks."""
    _, mod = _top(netlist)
    idx = _Index(mod)
    cells = idx.cells
    counts = {"ebr": 0, "ports": 0}
    removed: list = []
    rams: list = []
    for name in sorted(cells):
        cell = cells[name]
        if cell["type"] != "DP16KD":
            continue
        counts["ebr"] += 1
        if any(_width(cell, p) > _WIDTH for p in PORTS):
            # 36 bits wide: one port's read leaves on both ports' outputs, whose output
            # registers this rewrite does not pair up; left as it is
            continue
        moved = False
        for port in PORTS:
            found = _port_group(idx, name, port)
            if found is None:
                continue
            conn = cell["connections"]
            enable = found["ctrl"][1]
            conn[f"OCE{port}"] = [enable]
            cell.setdefault("port_directions", {})[f"OCE{port}"] = "input"
            if isinstance(enable, int):
                idx.readers[enable].add((name, f"OCE{port}"))
            cell.setdefault("parameters", {})[f"REGMODE_{port}"] = "OUTREG"
            for pin, ff in found["regs"].items():
                q = cells[ff]["connections"]["Q"][0]
                idx.readers[conn[pin][0]].discard((ff, "DI"))
                conn[pin] = [q]
                idx.driver[q] = (name, pin)
                for fpin, (b,) in cells[ff]["connections"].items():
                    if isinstance(b, int) and fpin != "Q":
                        idx.readers[b].discard((ff, fpin))
                removed.append(ff)
            counts["ports"] += 1
            moved = True
        if moved:
            rams.append(name)
    region_ffs = sorted(removed)
    for ff in removed:
        del cells[ff]
    return {**counts, "removed_ffs": len(removed), "region": {"rams": rams, "ffs": region_ffs}}


def _model() -> str:
    def bus(n: str, p: str, w: int) -> str:
        return ", ".join(f"{n}{p}{i}" for i in range(w))

    def cat(n: str, p: str) -> str:
        return "{" + ", ".join(f"{n}{p}{i}" for i in reversed(range(_WIDTH))) + "}"

    pins, decl = [], []
    for p in PORTS:
        pins.append(f"{bus('DI', p, _WIDTH)}, {bus('AD', p, 14)}, CE{p}, OCE{p}, CLK{p}, WE{p}, "
                    f"RST{p}, CS{p}2, CS{p}1, CS{p}0, {bus('DO', p, _WIDTH)}, "
                    f"{bus('RAW', p, _WIDTH)}")
        decl.append(f"""
    input {bus('DI', p, _WIDTH)};
    input {bus('AD', p, 14)};
    input CE{p}, OCE{p}, CLK{p}, WE{p}, RST{p}, CS{p}2, CS{p}1, CS{p}0;
    input {bus('RAW', p, _WIDTH)};
    output {bus('DO', p, _WIDTH)};
    parameter REGMODE_{p} = "NOREG";
    wire [{_WIDTH - 1}:0] raw_{p} = {cat('RAW', p)};
    reg [{_WIDTH - 1}:0] r_{p} = 0;
    always @(posedge CLK{p}) if (OCE{p}) r_{p} <= raw_{p};
    assign {cat('DO', p)} = (REGMODE_{p} == "OUTREG") ? r_{p} : raw_{p};""")
    body = ",\n    ".join(pins)
    return f"""// DP16KD for hw.ecp5_ebr.verify_absorption only: what a port reads without its
// output register is the free input RAW<port> (see hw/ecp5_ebr.py); with REGMODE OUTREG the
// port's data is that registered at its clock with OCE as the enable.
module DP16KD(
    {body});{''.join(decl)}
endmodule
"""


#: The DP16KD model of :func:`verify_absorption` (Verilog).
MODEL = _model()


def _region(mod: dict, rams, ffs, outputs, raw_from: int, name: str) -> dict:
    """Module ``name``: the cells ``rams`` + ``ffs`` of ``mod`` that it still has, with a port per
    input bit (``i<bit>``), per bit of ``outputs`` (``o<bit>``) and per RAM port the free read
    data (``raw<k><port>``, bits from ``raw_from`` on, the same in both regions)."""
    cells = {n: copy.deepcopy(mod["cells"][n]) for n in (*rams, *ffs) if n in mod["cells"]}
    ports = {}
    nxt = raw_from
    for k, r in enumerate(rams):
        cell = cells[r]
        # the model knows the output registers' modes, not the array's contents
        cell["parameters"] = {f"REGMODE_{p}": _param(cell, f"REGMODE_{p}", "NOREG")
                              for p in PORTS}
        for p in PORTS:
            bits = list(range(nxt, nxt + _WIDTH))
            nxt += _WIDTH
            for i, b in enumerate(bits):
                cell["connections"][f"RAW{p}{i}"] = [b]
                cell.setdefault("port_directions", {})[f"RAW{p}{i}"] = "input"
            ports[f"raw{k}{p}"] = {"direction": "input", "bits": bits}
    return _finish_region(cells, ports, outputs, f"block RAM register check ({name})")


def verify_absorption(gold: dict, gate: dict, region: dict, workdir, *,
                      timeout: float = 3600) -> dict:
    """Prove that ``gate`` (``gold`` after :func:`absorb_output_registers`) equals ``gold`` on the
    region the rewrite touched (module docstring). Writes ``ebr_check/`` in ``workdir`` (the two
    regions, the model, the Yosys script and log); returns ``{"proved": True, "rams": n,
    "registers": n, "inputs": n, "outputs": n}`` or raises a one-line error."""
    rams, ffs = list(region["rams"]), list(region["ffs"])
    work = Path(workdir) / "ebr_check"
    work.mkdir(parents=True, exist_ok=True)
    if not rams:
        return {"proved": True, "rams": 0, "registers": 0, "inputs": 0, "outputs": 0}
    checked = _prove_regions(
        gold, gate, set(rams) | set(ffs),
        lambda mod, outputs, free, name: _region(mod, rams, ffs, outputs, free, name),
        work, model=("dp16kd_model.v", MODEL), creator="hw.ecp5_ebr",
        what="the block RAM register equivalence check", timeout=timeout,
        failure="the netlist with registers moved into the DP16KDs is not proved equal to the "
                "synthesised one",
        hint="implement with --no-ebr-registers to place it without")
    return {"proved": True, "rams": len(rams), "registers": len(ffs), **checked}
