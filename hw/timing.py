"""A critical-path *estimate* for a Xilinx netlist after ``synth_xilinx``: no placer, no sign-off.

No open placer exists for the Xilinx parts, so their clock cannot be measured here as it is on
ECP5 (``hw/pnr.py``). This module gives the documented estimate instead: static timing over the
flat, mapped netlist (Yosys ``write_json``) with

- **cell delays** of the 7-series -1 speed grade, the figures Yosys' own Xilinx cell library
  (``share/xilinx/cells_sim.v``, from Project X-Ray's Artix-7 timing database) gives its cells:
  LUT input to output by pin, MUXF7/F8, every CARRY4 arc, flip-flop clock to Q and setup,
  distributed RAM and SRL read and write, block-RAM clock to output with and without its
  output register, and the DSP48E1 paths by which of its pipeline registers are in use;
  UltraScale+ cells (CARRY8, DSP48E2, RAM32M16, RAMB18E2) take their 7-series counterparts'
  figures, so for an UltraScale+ part the estimate is pessimistic on the cells;
- **routing** that no tool measured: every net that is not a dedicated connection (a carry chain,
  a MUXF input, a DSP cascade) costs :data:`ROUTE_BASE_PS` plus :data:`ROUTE_FANOUT_PS` per
  doubling of its fan-out (typical 7-series local routing; a placed design can be better or
  much worse), reported apart from the logic so the reader sees which part is assumed.

Paths run from a register (or RAM / DSP output register) to a register input, within the one
clock domain the generated designs have; the top-level ports are not timed (as nextpnr's
register-to-register Fmax on ECP5). Cells of a type with no model are listed in ``unmodelled``
and cut the paths through them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import CodesignError

__all__ = ["ROUTE_BASE_PS", "ROUTE_FANOUT_PS", "BASIS", "estimate_netlist", "estimate_json"]

#: Assumed delay of a routed net with one load, in ps.
ROUTE_BASE_PS = 400
#: Assumed extra routing delay per doubling of a net's fan-out, in ps.
ROUTE_FANOUT_PS = 150

#: One line saying what the figure is, shown wherever it appears.
BASIS = ("estimate: static timing of the synth_xilinx netlist with 7-series -1 cell delays "
         "(Yosys cells_sim.v, Project X-Ray) and assumed routing "
         f"({ROUTE_BASE_PS} ps + {ROUTE_FANOUT_PS} ps per fan-out doubling); no placement")

# LUT6 input pin I0..I5 to O (a LUTk's pin Ij is the LUT6's pin I(6-k+j): the fast pins).
_LUT6_PS = (642, 631, 472, 407, 238, 127)

# CARRY4 output <- input arcs (ps), every arc cells_sim.v lists.
_CARRY4 = {
    "O0": {"CYINIT": 482, "S0": 223, "CI": 222},
    "O1": {"CYINIT": 598, "DI0": 407, "S0": 400, "S1": 205, "CI": 334},
    "O2": {"CYINIT": 584, "DI0": 556, "DI1": 537, "S0": 523, "S1": 558, "S2": 226, "CI": 239},
    "O3": {"CYINIT": 642, "DI0": 615, "DI1": 596, "DI2": 438, "S0": 582, "S1": 618, "S2": 330,
           "S3": 227, "CI": 313},
    "CO0": {"CYINIT": 536, "DI0": 379, "S0": 340, "CI": 271},
    "CO1": {"CYINIT": 494, "DI0": 465, "DI1": 445, "S0": 433, "S1": 469, "CI": 157},
    "CO2": {"CYINIT": 592, "DI0": 540, "DI1": 520, "DI2": 356, "S0": 512, "S1": 548, "S2": 292,
            "CI": 228},
    "CO3": {"CYINIT": 580, "DI0": 526, "DI1": 507, "DI2": 398, "DI3": 385, "S0": 508, "S1": 528,
            "S2": 378, "S3": 380, "CI": 114},
}
_MUXF = {"MUXF7": {"I0": 217, "I1": 223, "S": 296}, "MUXF8": {"I0": 104, "I1": 94, "S": 273},
         "MUXF9": {"I0": 104, "I1": 94, "S": 273}}
_FF = {"FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1"}
_FF_CLK_Q, _FF_SETUP = 303, {"D": 0, "CE": 109, "R": 404, "S": 404, "CLR": 404, "PRE": 404}
# distributed RAM: write clock to read data, write-side setups (worst of the data and address bits)
_LUTRAM_WCLK_DO, _LUTRAM_SETUP = 1190, {"DI": 461, "WE": 654, "WADDR": 245}
_SRL_CLK_Q, _SRL_SETUP = 1472, {"D": 173, "CE": 109}
_BRAM_CLK_DO = {False: 2454, True: 882}  # without / with the output register
_BRAM_SETUP = 737
_DSP_CTRL_SETUP = 500  # OPMODE, ALUMODE, CE, RST ... into a used pipeline register (assumed)
_IGNORED = {"BUFG", "BUFGCTRL", "BUFGCE", "$scopeinfo", "VCC", "GND"}
_DEDICATED = {("CO", "CI"), ("PCOUT", "PCIN"), ("ACOUT", "ACIN"), ("BCOUT", "BCIN"),
              ("CARRYCASCOUT", "CARRYCASCIN"), ("MULTSIGNOUT", "MULTSIGNIN")}


@dataclass
class _Timing:
    """One cell's arcs: ``comb[out] = [(in, ps)]``, ``launch[out] = ps`` after the clock edge,
    ``capture[in] = setup ps``; pins are ``(name, bit)``."""

    comb: dict = field(default_factory=dict)
    launch: dict = field(default_factory=dict)
    capture: dict = field(default_factory=dict)
    internal: int = 0  # the longest register-to-register path inside the cell (a DSP's stages)


def _param(params: dict, name: str, default=0):
    v = params.get(name, default)
    if isinstance(v, int):
        return v
    s = str(v).strip()
    if s and set(s) <= {"0", "1"}:
        return int(s, 2)
    return s


def _pins(conns: dict, dirs: dict, direction: str):
    for name, bits in conns.items():
        if dirs.get(name) == direction:
            for i in range(len(bits)):
                yield name, i


def _carry4(t: _Timing, conns: dict, *, offset: int = 0, ci: str = "CI") -> None:
    """CARRY4 arcs on bits ``offset..offset+3`` of a CARRY4 or CARRY8 (``ci`` its carry in)."""
    for out, arcs in _CARRY4.items():
        kind, k = out.rstrip("0123"), int(out[-1])
        if len(conns.get(kind, ())) <= offset + k:
            continue
        lst = []
        for src, ps in arcs.items():
            if src == "CI":
                pin = (ci, 0)
            elif src == "CYINIT":
                pin = ("CYINIT", 0)
            else:
                pin = (src.rstrip("0123"), offset + int(src[-1]))
            lst.append((pin, ps))
        t.comb[(kind, offset + k)] = lst


def _carry8(t: _Timing, conns: dict, params: dict) -> None:
    """A CARRY8 as two CARRY4s: the upper one's carry in is the lower's CO3 (``SINGLE_CY8``) or
    ``CI_TOP`` (``DUAL_CY4``); a path from the lower half into the upper adds the lower CO3 arc."""
    _carry4(t, conns)
    lower_co3 = t.comb.get(("CO", 3), [])
    dual = "DUAL" in str(_param(params, "CARRY_TYPE", "SINGLE_CY8"))
    upper = _Timing()
    _carry4(upper, conns, offset=4, ci="CI_TOP" if dual else "__C4")
    for out, arcs in upper.comb.items():
        lst = []
        for pin, ps in arcs:
            if pin == ("__C4", 0):
                lst += [(p2, ps + q) for p2, q in lower_co3]
            elif pin[0] != "CYINIT":
                lst.append((pin, ps))
        t.comb[out] = lst


def _dsp(t: _Timing, conns: dict, dirs: dict, params: dict) -> None:
    """DSP48E1/E2 by which registers are used (cells_sim.v's DSP48E1 ``required``/``arrival``/
    ``comb`` figures, multiplier in use, no pre-adder unless ``USE_DPORT``)."""
    reg = {r: bool(_param(params, r, 0)) for r in ("AREG", "BREG", "CREG", "DREG", "ADREG",
                                                    "MREG", "PREG")}
    mult = str(_param(params, "USE_MULT", "MULTIPLY")).strip() != "NONE"
    dport = str(_param(params, "USE_DPORT", "FALSE")).strip() == "TRUE" \
        or "AD" in (str(_param(params, "AMULTSEL", "A")).strip(),
                    str(_param(params, "BMULTSEL", "B")).strip())
    # setup into the first register a data input meets, or None (combinational to P)
    req = {
        "A": 254 if reg["AREG"] else (2400 if dport else 1416) if reg["MREG"] and mult
        else (3723 if dport else 2739 if mult else 1441) if reg["PREG"] else None,
        "B": 324 if reg["BREG"] else 1285 if reg["MREG"] and mult
        else (2608 if mult else 1428) if reg["PREG"] else None,
        "C": 168 if reg["CREG"] else 1244 if reg["PREG"] else None,
        "D": 248 if reg["DREG"] else 1195 if reg["ADREG"] else 2310 if reg["MREG"]
        else 3635 if reg["PREG"] else None,
        "PCIN": 1244 if reg["PREG"] else None,
    }
    comb = {"A": 3806 if dport else 2823 if mult else 1523, "B": 2690 if mult else 1509,
            "C": 1325, "D": 3717, "PCIN": 1325}
    # clock to P: the last register before P
    if reg["PREG"]:
        arrival = 329
    else:
        cand = [1687] if reg["CREG"] else []
        if reg["MREG"]:
            cand.append(1671)
        else:
            if reg["AREG"]:
                cand.append(3935 if dport else 2952 if mult else 1632)
            if reg["BREG"]:
                cand.append(2813 if mult else 1616)
            if reg["DREG"]:
                cand.append(3908)
            if reg["ADREG"]:
                cand.append(2958)
        arrival = max(cand) if cand else None
    # inside the DSP, from a used register to the next: the figures above for an input that
    # meets that register unregistered (the input register's clock to out is left out), and the
    # P register's feedback through the ALU (P arrival + C into P)
    stages = []
    if reg["MREG"] and mult:
        stages += [1416 if reg["AREG"] else 0, 1285 if reg["BREG"] else 0,
                   2310 if reg["DREG"] else 0]
    if reg["PREG"]:
        stages += [329 + 1244]
        if reg["MREG"]:
            stages.append(1671 - 329 + 1244 - 168)
        else:
            stages += [(2400 if dport else 2739) if reg["AREG"] and mult else 1441 if reg["AREG"]
                       else 0, (2608 if mult else 1428) if reg["BREG"] else 0,
                       1244 if reg["CREG"] else 0]
    t.internal = max(stages, default=0)
    outs = [p for p in _pins(conns, dirs, "output") if p[0] not in ("ACOUT", "BCOUT")]
    any_reg = any(reg.values())
    comb_ins = []
    for pin in _pins(conns, dirs, "input"):
        name = {"ACIN": "A", "BCIN": "B"}.get(pin[0], pin[0])
        if name in req:
            if req[name] is not None:
                t.capture[pin] = req[name]
            else:
                comb_ins.append((pin, comb[name]))
        elif name.startswith(("CLK",)):
            continue
        elif any_reg:
            t.capture[pin] = _DSP_CTRL_SETUP
        else:
            comb_ins.append((pin, comb["C"]))
    for out in outs:
        if arrival is not None:
            t.launch[out] = arrival + (106 if out[0] == "PCOUT" else 0)
        if comb_ins and not reg["PREG"]:
            t.comb[out] = list(comb_ins)


def _lutram(t: _Timing, conns: dict, dirs: dict) -> None:
    """Distributed RAM: the multi-port RAM32M/RAM64M (write address ADDRD) and RAM32M16/RAM64M8
    (ADDRH), read address ``ADDR<x>`` to ``DO<x>``; the RAMnX1S/D cells, ``A`` (bus or
    ``A0``, ``A1`` ...) to ``SPO``/``O`` and the write address, ``DPRA`` to ``DPO``. Read address
    bits cost a LUT's pins in order; the write clock launches the read data."""
    outs = list(_pins(conns, dirs, "output"))
    wport = "ADDRH" if "ADDRH" in conns else "ADDRD"
    for pin in _pins(conns, dirs, "input"):
        name, i = pin
        if name in ("WCLK", "CLK"):
            continue
        m = re.fullmatch(r"(ADDR[A-H]|DPRA|A)(\d*)", name)
        if m:
            k = int(m.group(2)) if m.group(2) else i
            if m.group(1).startswith("ADDR"):
                want = ("DO" + m.group(1)[4:],)
            elif m.group(1) == "DPRA":
                want = ("DPO",)
            else:
                want = ("SPO", "O")
            for out in outs:
                if out[0] in want:
                    t.comb.setdefault(out, []).append((pin, _LUT6_PS[min(k, 5)]))
            if m.group(1) in (wport, "A"):
                t.capture[pin] = _LUTRAM_SETUP["WADDR"]
        elif name.startswith("DI") or name == "D":
            t.capture[pin] = _LUTRAM_SETUP["DI"]
        elif name == "WE":
            t.capture[pin] = _LUTRAM_SETUP["WE"]
    for out in outs:
        t.launch[out] = _LUTRAM_WCLK_DO


def _model(cell: dict) -> _Timing | None:
    typ, conns = cell["type"], cell["connections"]
    dirs = cell.get("port_directions", {})
    params = cell.get("parameters", {})
    t = _Timing()
    if typ.startswith("LUT") and typ[3:].isdigit():
        k = int(typ[3:])
        t.comb[("O", 0)] = [((f"I{j}", 0), _LUT6_PS[6 - k + j]) for j in range(k)
                            if f"I{j}" in conns]
    elif typ == "INV":
        t.comb[("O", 0)] = [(("I", 0), _LUT6_PS[5])]
    elif typ in _MUXF:
        t.comb[("O", 0)] = [((p, 0), ps) for p, ps in _MUXF[typ].items()]
    elif typ == "CARRY4":
        _carry4(t, conns)
    elif typ == "CARRY8":
        _carry8(t, conns, params)
    elif typ in _FF:
        t.launch[("Q", 0)] = _FF_CLK_Q
        for p, ps in _FF_SETUP.items():
            if p in conns:
                t.capture[(p, 0)] = ps
    elif typ in ("SRL16E", "SRLC32E", "SRLC16E"):
        addr = [(p, i) for p, i in _pins(conns, dirs, "input") if p.startswith("A")]
        for out in ("Q",):
            t.launch[(out, 0)] = _SRL_CLK_Q
            t.comb[(out, 0)] = [(a, _LUT6_PS[min(n, 5)]) for n, a in enumerate(addr)]
        if "Q31" in conns or "Q15" in conns:
            t.launch[("Q31" if "Q31" in conns else "Q15", 0)] = 1114
        for p, ps in _SRL_SETUP.items():
            if p in conns:
                t.capture[(p, 0)] = ps
    elif typ.startswith("RAM") and typ[3:5].isdigit():
        _lutram(t, conns, dirs)
    elif typ.startswith(("RAMB18", "RAMB36")):
        for pin in _pins(conns, dirs, "output"):
            port = "B" if pin[0].startswith(("DOB", "DOUTB", "DOPB", "DOUTPB")) else "A"
            t.launch[pin] = _BRAM_CLK_DO[bool(_param(params, f"DO{port}_REG", 0))]
        for pin in _pins(conns, dirs, "input"):
            if not pin[0].startswith("CLK"):
                t.capture[pin] = _BRAM_SETUP
    elif typ in ("DSP48E1", "DSP48E2"):
        _dsp(t, conns, dirs, params)
    else:
        return None

    def connected(pin):
        return pin[0] in conns and pin[1] < len(conns[pin[0]])

    t.comb = {o: [(p, ps) for p, ps in arcs if connected(p)] for o, arcs in t.comb.items()
              if connected(o)}
    t.launch = {o: ps for o, ps in t.launch.items() if connected(o)}
    t.capture = {p: ps for p, ps in t.capture.items() if connected(p)}
    return t


def estimate_netlist(netlist: dict, top: str | None = None, *, route_base_ps: float = ROUTE_BASE_PS,
                     route_fanout_ps: float = ROUTE_FANOUT_PS) -> dict:
    """Estimate the worst register-to-register path of a flat Yosys JSON netlist (``top`` or the
    module with the ``top`` attribute). Returns ``delay_ns``, ``fmax_mhz``, ``logic_ns``,
    ``route_ns``, ``levels`` (cells between the two registers), ``path`` (their types),
    ``from`` / ``to`` (the nets or cells at both ends), ``hops`` (per cell on the path: the net
    it drives, that net's fan-out, its arrival in ns), ``endpoints`` (timed register inputs),
    ``unmodelled`` ({type: count}) and ``basis``."""
    modules = netlist.get("modules", {})
    if top is None:
        top = next((n for n, m in modules.items()
                    if str(m.get("attributes", {}).get("top", "0")).strip("0")), None)
    if top not in modules:
        raise CodesignError(f"netlist has no module {top!r}: write it with write_json after "
                            "synth_xilinx")
    mod = modules[top]
    cells = mod.get("cells", {})
    names = {}
    for n, v in mod.get("netnames", {}).items():
        hidden = v.get("hide_name", 0)
        for i, b in enumerate(v["bits"]):
            if isinstance(b, int) and (b not in names or (not hidden and names[b][1])):
                label = n if len(v["bits"]) == 1 else f"{n}[{i}]"
                names[b] = (label, hidden)
    models, unmodelled, hier = {}, {}, []
    driver, loads = {}, {}
    for cname, cell in cells.items():
        typ = cell["type"]
        if typ in _IGNORED:
            continue
        if typ in modules and not modules[typ].get("attributes", {}).get("blackbox"):
            hier.append(cname)
            continue
        t = _model(cell)
        if t is None:
            unmodelled[typ] = unmodelled.get(typ, 0) + 1
            continue
        models[cname] = t
        for (pin, i) in set(t.comb) | set(t.launch):
            b = cell["connections"][pin][i]
            if isinstance(b, int):
                driver[b] = (cname, (pin, i))
        for pin, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(pin) == "input":
                for b in bits:
                    if isinstance(b, int):
                        loads[b] = loads.get(b, 0) + 1
    if hier:
        raise CodesignError(f"netlist module {top!r} is not flat ({len(hier)} submodule "
                            "instances): flatten it before estimating its timing")

    def route(b: int, sink_cell: str, sink_pin: str) -> float:
        drv = driver.get(b)
        if drv is not None:
            dpin = drv[1][0]
            if (dpin, sink_pin) in _DEDICATED or (
                    cells[sink_cell]["type"] in _MUXF and sink_pin in ("I0", "I1")
                    and cells[drv[0]]["type"].startswith(("LUT", "MUXF"))):
                return 0.0
        return route_base_ps + route_fanout_ps * math.log2(max(loads.get(b, 1), 1))

    arrival: dict[int, float | None] = {}
    pred: dict[int, tuple] = {}

    def arrive(bit0: int) -> float | None:
        # iterative depth-first evaluation (carry chains and adder trees are deep)
        stack = [bit0]
        onstack = set()
        while stack:
            b = stack[-1]
            if b in arrival:
                stack.pop()
                continue
            drv = driver.get(b)
            if drv is None:
                arrival[b] = None
                stack.pop()
                continue
            cname, out = drv
            t = models[cname]
            conns = cells[cname]["connections"]
            arcs = t.comb.get(out, [])
            # inputs still to evaluate; one already in progress closes a loop: cut there
            pending = [conns[p][i] for (p, i), _ in arcs
                       if isinstance(conns[p][i], int) and conns[p][i] not in arrival
                       and conns[p][i] not in onstack]
            if pending:
                onstack.add(b)
                stack.extend(pending)
                continue
            best, via = t.launch.get(out), None
            for (p, i), ps in arcs:
                src = conns[p][i]
                a = arrival.get(src) if isinstance(src, int) else None
                if a is None:
                    continue  # a constant, a top-level input, or a combinational loop cut here
                a += route(src, cname, p) + ps
                if best is None or a > best:
                    best, via = a, src
            arrival[b] = best
            if via is not None:
                pred[b] = via
            onstack.discard(b)
            stack.pop()
        return arrival[bit0]

    worst, end, endpoints = None, None, 0
    for cname, t in models.items():
        if t.internal and (worst is None or t.internal > worst):
            worst, end = t.internal, (cname, None, None)
        conns = cells[cname]["connections"]
        for (p, i), setup in t.capture.items():
            b = conns[p][i]
            if not isinstance(b, int):
                continue
            a = arrive(b)
            if a is None:
                continue
            endpoints += 1
            total = a + route(b, cname, p) + setup
            if worst is None or total > worst:
                worst, end = total, (cname, p, b)
    out = {"estimate": True, "basis": BASIS, "unmodelled": unmodelled, "endpoints": endpoints}
    if worst is None:
        return {**out, "delay_ns": None, "fmax_mhz": None, "levels": 0, "path": "",
                "from": None, "to": None, "logic_ns": None, "route_ns": None}
    cname, pin, b = end
    if pin is None:  # inside one cell
        typ = cells[cname]["type"]
        return {**out, "delay_ns": round(worst / 1000, 3), "fmax_mhz": round(1e6 / worst, 1),
                "logic_ns": round(worst / 1000, 3), "route_ns": 0.0, "levels": 0,
                "path": f"{typ} (its own pipeline registers)",
                "from": _label(None, typ, cname), "to": _label(None, typ, cname)}
    # walk the worst path back to its launching cell; each hop: the net a cell drives on the
    # path, its fan-out and the arrival time at its driver
    chain, route_ps = [], route(b, cname, pin)
    hops = []
    while True:
        dcell = driver[b][0]
        chain.append(cells[dcell]["type"])
        hops.append({"cell": cells[dcell]["type"], "net": _label(names.get(b), "", "") or None,
                     "fanout": loads.get(b, 0), "at_ns": round(arrival[b] / 1000, 3)})
        if b not in pred:
            break
        src = pred[b]
        dpin = next(p for (p, i), _ in models[dcell].comb[driver[b][1]]
                    if cells[dcell]["connections"][p][i] == src)
        route_ps += route(src, dcell, dpin)
        b = src
    launch_cell = driver[b][0]
    chain.reverse()
    hops.reverse()
    end_type = cells[cname]["type"]
    end_name = cname
    if end_type in _FF:
        q = cells[cname]["connections"].get("Q", [None])[0]
        end_name = _label(names.get(q), end_type, cname)
    return {**out, "delay_ns": round(worst / 1000, 3), "fmax_mhz": round(1e6 / worst, 1),
            "logic_ns": round((worst - route_ps) / 1000, 3), "route_ns": round(route_ps / 1000, 3),
            "levels": len(chain) - 1, "path": " -> ".join(chain + [f"{end_type}.{pin}"]),
            "from": _label(names.get(b), cells[launch_cell]["type"], launch_cell),
            "to": end_name, "hops": hops}


def _label(name, cell_type: str, cell: str) -> str:
    """A net's name where Yosys kept one, else the cell's type and name (empty without them)."""
    if name and not name[1] and not name[0].startswith("$"):
        return name[0]
    return f"{cell_type} {cell.replace('$flatten', '').lstrip(chr(92))}".strip()


def estimate_json(path, top: str | None = None) -> dict:
    """:func:`estimate_netlist` of a Yosys JSON file, with ``logic_only``: the same analysis with
    no routing delay (``fmax_mhz``, ``path``), a bound no placement can beat."""
    path = Path(path)
    try:
        netlist = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CodesignError(f"cannot read the netlist {path}: {exc}") from None
    est = estimate_netlist(netlist, top)
    bound = estimate_netlist(netlist, top, route_base_ps=0, route_fanout_ps=0)
    est["logic_only"] = {k: bound[k] for k in ("fmax_mhz", "delay_ns", "levels", "path")}
    return est
