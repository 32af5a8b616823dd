"""The cocotb tests the runner starts: a Python-driven bench and the fast-path bench.

Both read their job from the JSON file named by ``COSIM_JOB`` (written by :mod:`cosim.session`) and
write what they saw to ``job["result"]``; the checking against the golden model happens in the
scoreboard (live here for the Python path, on the wrapper's trace for the fast path).
"""

from __future__ import annotations

import json
import os
import time

import cocotb
from cocotb.triggers import RisingEdge, Timer

from .manifest import load_manifest
from .parts import TB, StreamMonitor, StreamSink, StreamSource
from .pause import make_pause
from .scoreboard import Scoreboard

__all__ = ["python_stream", "fast_stream"]


def _job() -> dict:
    with open(os.environ["COSIM_JOB"]) as f:
        return json.load(f)


def _write(path, obj) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


@cocotb.test()
async def python_stream(dut):
    """Drive every beat from Python with idle/backpressure pauses; check in order."""
    job = _job()
    m = load_manifest(job["manifest"])
    with open(job["stimulus"]) as f:
        stim = json.load(f)
    tb = TB(dut, clock=m.clock, reset=m.reset, reset_active=m.reset_active)
    sb = Scoreboard(m.output)
    for words in stim["expected"]:
        sb.expect_beats(words)
    out, frames_in = [], []
    first = [None]

    def on_input(word, cycle):
        first[0] = cycle if first[0] is None else first[0]
        if m.input.unpack(word).eof:
            frames_in.append((first[0], cycle))
            first[0] = None

    def on_output(word, cycle):
        out.append((cycle, word))
        sb.receive(word, cycle)

    seed = int(job.get("seed", 0))
    src = StreamSource(tb, m.input, pause=make_pause(job.get("stall_in"), seed * 2 + 1))
    StreamSink(tb, m.output, pause=make_pause(job.get("stall_out"), seed * 2 + 2))
    in_mon = StreamMonitor(tb, m.input, name="input_monitor", callback=on_input)
    out_mon = StreamMonitor(tb, m.output, name="output_monitor", callback=on_output)
    await tb.reset()
    t0, c0 = time.perf_counter(), time.process_time()
    for words in stim["inputs"]:
        src.send_beats(words)
    stopped = await tb.wait_until(
        lambda: sb.complete,
        watch=[("input", in_mon, lambda: not src.idle),
               ("output", out_mon, lambda: not sb.complete)],
        timeout_cycles=int(job.get("timeout", 100000)))
    end_cycle = tb.cycle
    if stopped is None:
        await Timer(64 * tb.period_ns, unit="ns")  # catch extra beats after the last frame
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    _write(job["result"], {
        "out": out, "frames_in": frames_in, "cycles": end_cycle, "wall_s": wall, "cpu_s": cpu,
        "stopped": None if stopped is None else {
            "stream": stopped, "cycle": tb.cycle, "n_in": in_mon.count,
            "n_out": out_mon.count, "frames_out": sb.frames_done},
        "mismatches": [str(x) for x in sb.mismatches]})
    assert stopped is None, f"stream {stopped} stopped moving"
    assert not sb.mismatches, f"first mismatch: {sb.mismatches[0]}"


@cocotb.test()
async def fast_stream(dut):
    """Fast path: the generated wrapper drives and logs; Python only clocks, resets and waits."""
    job = _job()
    if not job.get("hdl_clock"):
        tb = TB(dut, clock="clk", reset="rst", reset_active="high", count_cycles=False)
        await tb.reset()
    t0, c0 = time.perf_counter(), time.process_time()
    await RisingEdge(dut.done)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    _write(job["result"], {"cycles": int(dut.cycle.value.to_unsigned()), "wall_s": wall,
                           "cpu_s": cpu, "timed_out": int(dut.timed_out.value)})
