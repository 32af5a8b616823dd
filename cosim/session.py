"""One co-simulation run: frames in, golden model, simulator, result with a summary.

``simulate`` is the Python API behind ``codesign sim`` and the tests. ``path="fast"`` runs the
generated wrapper (:mod:`cosim.wrapper`), ``path="python"`` the cocotb-driven bench
(:mod:`cosim.parts`); both are checked by the same in-order :class:`~cosim.scoreboard.Scoreboard`
and produce cycle stamps with the same convention.
"""

from __future__ import annotations

import json
import math
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import CodesignError
from common.lock import dir_lock

from .manifest import Manifest, load_manifest
from .runner import cached_build, require_simulator, run_test
from .scoreboard import Scoreboard
from .wrapper import (
    MAX_STALL,
    STALL_RANGE,
    WRAPPER_TOP,
    read_trace,
    stall_threshold,
    wrapper_verilog,
    write_input_file,
)

__all__ = ["SimResult", "simulate", "expected_frames"]

PATHS = ("fast", "python")


@dataclass
class SimResult:
    """Outcome of one run; ``summary()`` is the JSON line ``codesign sim`` prints."""

    sim: str
    path: str
    frames: int
    mismatches: list
    cycles_per_frame: list
    latency: list
    total_cycles: int
    sim_wall_s: float
    wall_s: float
    sim_cpu_s: float = 0.0
    stopped: str | None = None
    build_reused: bool = False
    stall_in: float = 0.0
    stall_out: float = 0.0
    seed: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.stopped is None

    @property
    def sim_cycles_per_s(self) -> float:
        return self.total_cycles / self.sim_wall_s if self.sim_wall_s > 0 else 0.0

    @property
    def sim_cycles_per_cpu_s(self) -> float:
        """Cycles per CPU second of the simulator process (robust on a loaded machine)."""
        return self.total_cycles / self.sim_cpu_s if self.sim_cpu_s > 0 else 0.0

    def summary(self) -> dict:
        cpf = self.cycles_per_frame

        def stats(v):
            return {"mean": round(statistics.fmean(v), 2) if v else None,
                    "max": max(v) if v else None}
        # the first frame's cycles are its latency into an empty pipeline; the frames after it,
        # back to back, measure the initiation interval (what the DSE's II predicts)
        out = {"frames": self.frames, "mismatches": len(self.mismatches),
               "cycles_per_frame": stats(cpf), "interval_cycles": stats(cpf[1:]),
               "first_frame_cycles": cpf[0] if cpf else None, "sim": self.sim,
               "sim_cycles_per_s": round(self.sim_cycles_per_s, 1),
               "sim_cycles_per_cpu_s": round(self.sim_cycles_per_cpu_s, 1),
               "path": self.path, "latency_cycles": stats(self.latency),
               "total_cycles": self.total_cycles, "stall": [self.stall_in, self.stall_out],
               "seed": self.seed}
        if self.mismatches:
            out["first_mismatch"] = str(self.mismatches[0])
        if self.stopped:
            out["deadlock"] = self.stopped
        return out


def expected_frames(frames, golden) -> list:
    """Run the golden model ``golden(coords, feats) -> (coords, feats)`` on every frame."""
    return [golden(c, f) for c, f in frames]


def _frame_of_beat(beats_per_frame, index) -> int:
    total = 0
    for f, n in enumerate(beats_per_frame):
        total += n
        if index < total:
            return f
    return len(beats_per_frame)


def stall_timeout(timeout: int, stall: float) -> int:
    """The deadlock timeout at stall probability ``stall``: ``timeout`` cycles plus
    ``50 / (1 - stall)``, so that a run of paused cycles (probability ``stall ** n``) is never
    taken for a deadlock (odds ``e ** -50``) however close ``stall`` is to 1; at most 2**32 - 1
    (the wrapper's counter)."""
    return min(int(timeout) + math.ceil(50.0 / (1.0 - stall)), 2**32 - 1)


def simulate(manifest, frames, golden=None, *, expected=None, sim: str = "verilator",
             path: str = "fast", stall_in: float = 0.0, stall_out: float = 0.0, seed: int = 0,
             timeout: int = 100000, work_dir=None, cache_dir=None, progress=None,
             hdl_clock: bool = True, probes=()) -> SimResult:
    """Simulate ``frames`` (list of ``(coords, feats)``) through the design of ``manifest``.

    Parameters
    ----------
    manifest : Manifest or path
        The built design (``manifest.json`` or its directory).
    frames : list
        Input frames in the token view.
    golden : callable, optional
        ``golden(coords, feats) -> (coords, feats)``, the expected output of one frame.
    expected : list, optional
        Precomputed expected output frames (instead of ``golden``).
    sim : {"verilator", "icarus"}
    path : {"fast", "python"}
        Generated HDL wrapper (simulator speed) or Python-driven cocotb bench (per-cycle).
    stall_in, stall_out : float
        Probability per cycle that the source idles / the sink withholds ``ready``.
    seed : int
        Seed of the stall patterns.
    timeout : int
        Cycles without any transfer that count as a deadlock.
    work_dir, cache_dir : path, optional
        Run files (default ``<build>/sim/<path>-<sim>``) and simulator builds (default
        ``<build>/sim_build``).
    progress : callable, optional
        ``progress(frames_done, frames_total)``, called while the fast path runs.
    hdl_clock : bool
        Fast path only: clock and reset generated inside the wrapper (default, fastest) rather
        than by a cocotb ``Clock``.
    probes : sequence of (str, str)
        Fast path only: streams inside the design to time, ``(valid, ready)`` hierarchical
        names below the top (:func:`cosim.wrapper.wrapper_verilog`); ``extra["probes"]`` then
        holds each one's ``(first, last, beats)`` over the run.
    """
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    if path not in PATHS:
        raise CodesignError(f"simulation path must be one of {PATHS}, not {path!r}")
    for name, p in (("stall_in", stall_in), ("stall_out", stall_out)):
        if not 0.0 <= p <= MAX_STALL:
            raise CodesignError(f"{name} must be a probability in {STALL_RANGE}, not {p}")
    timeout = stall_timeout(timeout, max(stall_in, stall_out))
    if not frames:
        raise CodesignError("nothing to simulate: no frames")
    if probes and path != "fast":
        raise CodesignError("probes are timed by the fast path's wrapper: use path='fast'")
    require_simulator(sim)
    if expected is None:
        if golden is None:
            raise CodesignError("simulate needs a golden model or expected frames")
        expected = expected_frames(frames, golden)
    if len(expected) != len(frames):
        raise CodesignError(f"{len(frames)} frames but {len(expected)} expected outputs")
    m = manifest
    work_dir = Path(work_dir or m.root / "sim" / f"{path}-{sim}").resolve()
    cache_dir = Path(cache_dir or m.root / "sim_build").resolve()
    # one run at a time in a scratch directory (two would share its input and trace files)
    with dir_lock(work_dir):
        inputs = [m.input.frame_beats(c, f) for c, f in frames]
        sb = Scoreboard(m.output)
        for c, f in expected:
            sb.expect(c, f)
        result_file = work_dir / "result.json"
        result_file.unlink(missing_ok=True)
        job = {"manifest": str(m.root / "manifest.json"), "seed": seed, "stall_in": stall_in,
               "stall_out": stall_out, "timeout": timeout, "result": str(result_file)}
        t0 = time.perf_counter()
        extra = {}
        if path == "fast":
            wrapper = work_dir / f"{WRAPPER_TOP}.v"
            wrapper.write_text(wrapper_verilog(m, hdl_clock=hdl_clock, probes=probes))
            job["hdl_clock"] = hdl_clock
            build_dir, reused = cached_build(sim, [m.verilog, wrapper], WRAPPER_TOP, cache_dir,
                                             top_only=hdl_clock)
            in_file, trace_file = work_dir / "input.hex", work_dir / "trace.txt"
            n_beats = write_input_file(in_file, (w for fr in inputs for w in fr))
            trace_file.unlink(missing_ok=True)
            plusargs = [f"+cosim_in={in_file}", f"+cosim_out={trace_file}",
                        f"+cosim_beats={n_beats}", f"+cosim_frames={len(frames)}",
                        f"+cosim_timeout={timeout}", f"+cosim_thr_in={stall_threshold(stall_in)}",
                        f"+cosim_thr_out={stall_threshold(stall_out)}", f"+cosim_seed={seed + 1}"]
            job_file = work_dir / "job.json"
            job_file.write_text(json.dumps(job))
            _run_with_progress(lambda: run_test(sim, build_dir, WRAPPER_TOP, work_dir,
                                                testcase="fast_stream", job_file=job_file,
                                                plusargs=plusargs),
                               trace_file, m.output.field("eof"), len(frames), progress)
            res = _read_result(result_file, work_dir)
            trace = read_trace(trace_file)
            out, frames_in = trace.out, trace.frames_in
            extra["probes"] = trace.probes
            stopped = None
            if res["timed_out"] or trace.timeout is not None:
                t = trace.timeout or {}
                bpf = [len(fr) for fr in inputs]
                if t.get("n_in", n_beats) < n_beats:
                    stopped = (f"input stream ({m.input.valid}/{m.input.ready}) stopped "
                               f"moving: the DUT did not accept input beat {t['n_in']} of "
                               f"{n_beats} (frame {_frame_of_beat(bpf, t['n_in'])}) for "
                               f"{timeout} cycles")
                else:
                    stopped = (f"output stream ({m.output.valid}/{m.output.ready}) stopped moving: "
                               f"{t.get('frames_out', '?')} of {len(frames)} frames and "
                               f"{t.get('n_out', '?')} beats came out, then nothing for {timeout} "
                               f"cycles")
            total_cycles = res["cycles"]
        else:
            stim_file = work_dir / "stimulus.json"
            stim_file.write_text(json.dumps({
                "inputs": inputs,
                "expected": [m.output.frame_beats(c, f) for c, f in expected]}))
            job["stimulus"] = str(stim_file)
            job_file = work_dir / "job.json"
            job_file.write_text(json.dumps(job))
            build_dir, reused = cached_build(sim, [m.verilog], m.top, cache_dir)
            try:
                run_test(sim, build_dir, m.top, work_dir, testcase="python_stream",
                         job_file=job_file)
            except CodesignError:
                if not result_file.exists():
                    raise
            res = _read_result(result_file, work_dir)
            out = [tuple(x) for x in res["out"]]
            frames_in = [tuple(x) for x in res["frames_in"]]
            stopped = None
            if res["stopped"]:
                s = res["stopped"]
                which = s["stream"]
                port = m.input if which == "input" else m.output
                stopped = (f"{which} stream ({port.valid}/{port.ready}) stopped moving: "
                           f"{s['n_in']} input beats in, {s['frames_out']} of {len(frames)} frames "
                           f"and {s['n_out']} beats out, then nothing for {timeout} cycles")
            total_cycles = res["cycles"]
        for cycle, word in out:
            sb.receive(word, cycle)
        mismatches = list(sb.mismatches) if stopped else sb.finish()
        eofs = sb.eof_cycles
        cpf, lat = [], []
        for i, e in enumerate(eofs[:len(frames)]):
            if i < len(frames_in):
                lat.append(e - frames_in[i][0])
            cpf.append(e - eofs[i - 1] if i else (e - frames_in[0][0] if frames_in else e))
        return SimResult(sim=sim, path=path, frames=len(frames), mismatches=mismatches,
                         cycles_per_frame=cpf, latency=lat, total_cycles=total_cycles,
                         sim_wall_s=res["wall_s"], wall_s=time.perf_counter() - t0,
                         sim_cpu_s=res.get("cpu_s", 0.0),
                         stopped=stopped, build_reused=reused, stall_in=stall_in,
                         stall_out=stall_out, seed=seed,
                         extra={"work_dir": str(work_dir), **extra})


def _read_result(result_file: Path, work_dir: Path) -> dict:
    """The bench's result, or a clear error when the bench ended without writing one."""
    try:
        return json.loads(result_file.read_text())
    except (OSError, ValueError):
        raise CodesignError(f"the simulation ended without a result ({result_file.name}); see "
                            f"{work_dir / 'sim.log'}") from None


def _run_with_progress(fn, trace_file: Path, eof_field, n_frames: int, progress) -> None:
    if progress is None:
        fn()
        return
    err = []

    def target():
        try:
            fn()
        except BaseException as exc:  # re-raised in the caller's thread
            err.append(exc)
    th = threading.Thread(target=target, daemon=True)
    th.start()
    last = -1
    while th.is_alive():
        th.join(0.5)
        done = _count_eofs(trace_file, eof_field)
        if done != last:
            progress(done, n_frames)
            last = done
    if err:
        raise err[0]
    progress(_count_eofs(trace_file, eof_field), n_frames)


def _count_eofs(trace_file: Path, eof_field) -> int:
    try:
        text = trace_file.read_text()
    except OSError:
        return 0
    n = 0
    for line in text.splitlines():
        if line.startswith("O "):
            parts = line.split()
            if len(parts) == 3 and eof_field.extract(int(parts[2], 16)):
                n += 1
    return n
