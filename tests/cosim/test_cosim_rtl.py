"""RTL co-simulation of the toy DUT: both paths, both simulators, stalls, faults, cycle counts."""

import json
import re

import pytest

from codesign.cli import main
from cosim.manifest import load_manifest
from cosim.runner import cached_build
from cosim.session import simulate

pytestmark = pytest.mark.rtl

TOY = {"ii": 2, "channels": 4, "lanes": 2}


def _formula_cycles(frame, *, ii, channels, lanes):
    """Toy block's cycle model: every beat (tokens x C/lanes, plus end-of-frame) costs ii."""
    return (len(frame[0]) * (channels // lanes) + 1) * ii


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
def test_fast_path_verilator_zero_mismatches(toy, kit, sim_cache, stall):
    kit.need("verilator")
    d, golden = toy(**TOY)
    frames = kit.frame_set(seed=3)
    r = simulate(d, frames, golden, sim="verilator", stall_in=stall, stall_out=stall, seed=7,
                 cache_dir=sim_cache)
    assert r.ok, (r.mismatches[:3], r.stopped)
    assert len(r.cycles_per_frame) == len(frames) == r.frames >= 20
    if stall == 0.0:
        # Steady state: the frame period equals the block's cycle formula, exactly.
        want = [_formula_cycles(f, **TOY) for f in frames]
        assert r.cycles_per_frame[1:] == want[1:]
        # the summary's interval is those frames' (the II's measure), the first frame apart
        s = r.summary()
        assert s["interval_cycles"]["mean"] == round(sum(want[1:]) / len(want[1:]), 2)
        assert s["interval_cycles"]["max"] == max(want[1:])
        assert s["first_frame_cycles"] == r.cycles_per_frame[0] == r.latency[0]
    else:
        assert r.summary()["cycles_per_frame"]["mean"] > sum(
            _formula_cycles(f, **TOY) for f in frames) / len(frames)


@pytest.mark.parametrize("sim", ["any", pytest.param("verilator", marks=pytest.mark.slow)])
def test_python_path_matches_fast_path_cycles(toy, kit, sim_cache, sim):
    sim = kit.any_sim() if sim == "any" else sim
    kit.need(sim)
    d, golden = toy(**TOY)
    frames = kit.frame_set(seed=4)
    py = simulate(d, frames, golden, sim=sim, path="python", cache_dir=sim_cache)
    fast = simulate(d, frames, golden, sim=sim, path="fast", cache_dir=sim_cache)
    assert py.ok and fast.ok
    assert py.cycles_per_frame == fast.cycles_per_frame
    assert py.latency == fast.latency
    stalled = simulate(d, frames, golden, sim=sim, path="python", stall_in=0.3,
                       stall_out=0.7, seed=2, cache_dir=sim_cache)
    assert stalled.ok, (stalled.mismatches[:3], stalled.stopped)
    assert sum(stalled.cycles_per_frame) > sum(py.cycles_per_frame)


def test_icarus_and_verilator_agree(toy, kit, sim_cache):
    kit.need("verilator")
    kit.need("icarus")
    d, golden = toy(**TOY)
    frames = kit.frame_set(seed=5)
    runs = {sim: simulate(d, frames, golden, sim=sim, stall_in=0.3, stall_out=0.3, seed=11,
                          cache_dir=sim_cache) for sim in ("verilator", "icarus")}
    v, i = runs["verilator"], runs["icarus"]
    assert v.ok and i.ok
    assert v.cycles_per_frame == i.cycles_per_frame and v.latency == i.latency
    assert v.total_cycles == i.total_cycles
    traces = [(run.extra["work_dir"] + "/trace.txt") for run in (v, i)]
    assert open(traces[0]).read() == open(traces[1]).read()


@pytest.mark.parametrize("path", ["fast", "python"])
def test_wrong_channel_is_named(toy, kit, sim_cache, path):
    sim = kit.any_sim()
    kit.need(sim)
    d, golden = toy(bug="channel", **TOY)
    frames = kit.frame_set(seed=6, n=4)
    r = simulate(d, frames, golden, sim=sim, path=path, cache_dir=sim_cache, stall_in=0.3)
    assert r.stopped is None and r.mismatches
    first = r.mismatches[0]
    assert first.channel == 3 and first.kind == "wrong value"
    # frame 0 is empty, frame 1 is full: the first wrong value is in frame 1
    assert first.frame == 1 and first.site in {tuple(s) for s in frames[1][0]}


@pytest.mark.parametrize("path", ["fast", "python"])
@pytest.mark.parametrize("bug, stream", [("stall", "input stream (i__valid/i__ready)"),
                                         ("drop_eof", "output stream (o__valid/o__ready)")])
def test_deadlock_names_the_stream(toy, kit, sim_cache, bug, stream, path):
    sim = kit.any_sim()
    kit.need(sim)
    d, golden = toy(bug=bug, **TOY)
    frames = kit.frame_set(seed=6, n=4)
    r = simulate(d, frames, golden, sim=sim, path=path, cache_dir=sim_cache, timeout=500)
    assert r.stopped is not None and r.stopped.startswith(stream), r.stopped


def test_build_is_reused_until_the_verilog_changes(toy, kit, tmp_path):
    sim = kit.any_sim()
    kit.need(sim)
    d, _ = toy(**TOY)
    m = load_manifest(d)
    first, reused = cached_build(sim, [m.verilog], m.top, tmp_path)
    again, reused2 = cached_build(sim, [m.verilog], m.top, tmp_path)
    assert (again, reused, reused2) == (first, False, True)
    changed = tmp_path / "toy.v"
    changed.write_text(m.verilog.read_text() + "\n// changed\n")
    other, reused3 = cached_build(sim, [changed], m.top, tmp_path)
    assert other != first and not reused3


class _Bundle:
    def __init__(self, kit):
        self.kit = kit

    def frames(self, n, seed=0, split="test"):
        return self.kit.frame_set(seed=seed, n=n)[:n]


def _cli(monkeypatch, capsys, d, golden, kit, *args):
    import cosim.golden
    monkeypatch.setattr(cosim.golden, "network_golden",
                        lambda manifest, **kw: (_Bundle(kit), None, golden))
    code = main(["sim", "--build", str(d), "--sim", kit.any_sim(), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_sim_summary_and_exit_codes(toy, kit, monkeypatch, capsys, tmp_path):
    kit.need(kit.any_sim())
    d, golden = toy(**TOY)
    code, out, err = _cli(monkeypatch, capsys, d, golden, kit, "--frames", "20", "--stall",
                          "0.3", "--seed", "2")
    assert code == 0, err
    line = json.loads(out.strip().splitlines()[-1])
    assert line["frames"] == 20 and line["mismatches"] == 0 and line["sim"] == kit.any_sim()
    assert set(line["cycles_per_frame"]) == {"mean", "max"} and line["sim_cycles_per_s"] > 0
    assert json.loads((d / "sim_summary.json").read_text()) == line
    assert "frames out" in err

    d, golden = toy(bug="channel", **TOY)
    code, out, err = _cli(monkeypatch, capsys, d, golden, kit, "--frames", "4")
    assert code == 1 and re.search(r"first: frame 1 site \(y=\d, x=\d\) channel 3", err), err
    assert json.loads(out.strip().splitlines()[-1])["mismatches"] >= 1

    d, golden = toy(bug="stall", **TOY)
    code, out, err = _cli(monkeypatch, capsys, d, golden, kit, "--frames", "4", "--timeout",
                          "300")
    assert code == 2 and "input stream (i__valid/i__ready) stopped moving" in err
    # a --timeout under the default is said to be one (a slow design reads as a stuck one)
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: deadlock")
    assert "--timeout 300 is below the default 200,000" in last

    code, out, err = _cli(monkeypatch, capsys, d, golden, kit, "--stall", "1.5")
    assert code == 2 and "--stall" in err
    code, out, err = _cli(monkeypatch, capsys, tmp_path, golden, kit)
    assert code == 2 and "codesign build" in err


@pytest.mark.parametrize("sim", ["any", pytest.param("verilator", marks=pytest.mark.slow)])
def test_wide_payloads_over_64_bits(toy, kit, sim_cache, sim):
    sim = kit.any_sim() if sim == "any" else sim
    kit.need(sim)
    d, golden = toy(channels=32, lanes=16, height=16, width=16)
    assert load_manifest(d).input.payload_width > 128
    frames = kit.frame_set(seed=12, n=4, height=16, width=16, channels=32)
    r = simulate(d, frames, golden, sim=sim, stall_in=0.3, stall_out=0.3, cache_dir=sim_cache)
    assert r.ok, (r.mismatches[:3], r.stopped)


def test_python_path_from_a_relative_build_dir(toy, kit, sim_cache, monkeypatch):
    # the simulator runs in its own directory, so the job must not carry a relative manifest path
    sim = kit.any_sim()
    kit.need(sim)
    d, golden = toy(**TOY)
    monkeypatch.chdir(d.parent)
    r = simulate(d.name, kit.frame_set(seed=8, n=4), golden, sim=sim, path="python",
                 cache_dir=sim_cache)
    assert r.ok, (r.mismatches[:3], r.stopped)


@pytest.mark.parametrize("stall", [0.99999, 0.999995])
def test_stall_close_to_one_simulates_at_its_probability(toy, kit, sim_cache, stall):
    """The 32-bit pause threshold keeps probabilities near 1 (a 16-bit one wrapped 0.999995 to
    "never stall" and took 0.99999's long pauses for a deadlock): still 0 mismatches, and a frame
    takes about ``beats / (1 - stall)`` cycles, the sink's wait for ``ready`` on every beat."""
    kit.need("verilator")
    d, golden = toy(ii=1, channels=1, lanes=1, height=2, width=2)
    frames = [([(0, 0), (1, 1)], [[3], [-5]]), ([(0, 1)], [[7]]), ([(1, 0), (1, 1)], [[1], [2]])]
    r = simulate(d, frames, golden, sim="verilator", stall_in=stall, stall_out=stall, seed=5,
                 cache_dir=sim_cache)
    assert r.ok, (r.mismatches[:3], r.stopped)
    beats = sum(len(c) + 1 for c, _ in frames)
    ratio = r.total_cycles / (beats / (1 - stall))
    assert 0.5 < ratio < 3.0, ratio


def test_killed_sim_takes_verilator_along(kit, tmp_path):
    """SIGKILL of `codesign sim` while Verilator compiles: make and the compiler die with it (a
    watchdog, common.procs), nothing goes on writing into the build directory."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import numpy as np
    from helpers import tiny_qgraph

    from common.procs import descendants
    from contract.point import DesignPoint
    from hw.build import build

    kit.need("verilator")
    g = tiny_qgraph(0)
    d = tmp_path / "b"
    build(g, DesignPoint.default(g, model="tiny"), d, model="tiny")
    c, h, w = g.input.in_shape
    np.savez(tmp_path / "x.npz", x=np.ones((1, c, h, w), dtype=np.int64))
    p = subprocess.Popen([sys.executable, "-m", "codesign", "sim", "--build", str(d),
                          "--inputs", str(tmp_path / "x.npz"), "--frames", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, seen = time.time() + 120, set()
    while time.time() < deadline and p.poll() is None:
        kids = descendants({p.pid})
        names = set()
        for k in kids:
            try:
                with open(f"/proc/{k}/comm") as f:
                    names.add(f.read().strip())
            except OSError:
                pass
        if "cc1plus" in names:  # compiling (writes no output a closed pipe could stop)
            seen = kids
            break
        time.sleep(0.1)
    if not seen:
        pytest.skip("the Verilator build finished before it could be caught")
    time.sleep(0.8)  # the watchdog takes its snapshot twice a second
    seen |= descendants({p.pid})
    os.kill(p.pid, signal.SIGKILL)
    p.wait()

    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False
    deadline = time.time() + 15
    while time.time() < deadline and any(alive(k) for k in seen):
        time.sleep(0.2)
    assert not [k for k in seen if alive(k)]
