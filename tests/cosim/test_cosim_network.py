"""Whole-network co-simulation: designs composed by hw/ against QGraph.run_frame."""

import random
from pathlib import Path

import pytest

from common.errors import CodesignError
from cosim.cycles import compare_cycles, predicted_frame_cycles
from cosim.manifest import load_manifest
from cosim.session import simulate

pytestmark = pytest.mark.rtl

INT8 = ["int8"] * 6
MIXED = ["int8", "dybit4", "int4", "dybit8", "int4", "int8"]


def _frames(qgraph, kit, seed, n=20):
    c, h, w = qgraph.input.in_shape
    return kit.frame_set(seed=seed, n=n, height=h, width=w, channels=c)


@pytest.mark.parametrize("head", ["map", "classifier"])
def test_tiny_network_fast_and_python_paths(tiny_net, kit, sim_cache, head):
    # map output: stride-2 sparse sites and a residual, no pool; classifier: + gap and fc
    sim = kit.any_sim()
    kit.need(sim)
    d, golden, g = tiny_net(MIXED, lanes=2, pe=2, head=head)
    m = load_manifest(d)
    assert m.model == "tiny" and m.output.channels == (5 if head == "classifier" else 8)
    frames = _frames(g, kit, seed=21)
    r = simulate(d, frames, golden, sim=sim, stall_in=0.3, stall_out=0.3, seed=3,
                 cache_dir=sim_cache)
    assert r.ok and r.frames >= 20, (r.mismatches[:3], r.stopped)
    few = frames[:6]
    p = simulate(d, few, golden, sim=sim, path="python", stall_in=0.7, stall_out=0.7, seed=4,
                 cache_dir=sim_cache)
    assert p.ok, (p.mismatches[:3], p.stopped)
    # no stalls: each frame's period against the slowest layer's hw.perf formula
    r0 = simulate(d, frames, golden, sim=sim, cache_dir=sim_cache)
    cmp = compare_cycles(r0.cycles_per_frame, predicted_frame_cycles(g, m.point, frames))
    assert cmp["frames"] >= 20 and 0.95 <= cmp["ratio_mean"] <= 1.25, cmp


@pytest.mark.slow
@pytest.mark.parametrize("formats", [INT8, MIXED], ids=["int8", "mixed"])
@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
def test_tiny_network_sweep_verilator(tiny_net, kit, sim_cache, formats, stall):
    kit.need("verilator")
    d, golden, g = tiny_net(formats)
    r = simulate(d, _frames(g, kit, seed=22), golden, sim="verilator", stall_in=stall,
                 stall_out=stall, seed=5, cache_dir=sim_cache)
    assert r.ok, (r.mismatches[:3], r.stopped)


@pytest.mark.slow
def test_tiny_network_icarus_matches_verilator(tiny_net, kit, sim_cache):
    kit.need("verilator")
    kit.need("icarus")
    d, golden, g = tiny_net(INT8)
    frames = _frames(g, kit, seed=23, n=8)
    runs = [simulate(d, frames, golden, sim=s, stall_in=0.3, stall_out=0.3, seed=6,
                     cache_dir=sim_cache) for s in ("verilator", "icarus")]
    assert all(r.ok for r in runs)
    assert runs[0].cycles_per_frame == runs[1].cycles_per_frame
    assert runs[0].total_cycles == runs[1].total_cycles


def test_empty_frame_golden_is_the_bias_for_a_classifier(tiny_net):
    import numpy as np
    d, golden, g = tiny_net(INT8)
    coords, feats = golden([], [])
    assert coords.tolist() == [[0, 0]]
    assert feats.tolist() == [np.asarray(g.output.bias).tolist()]
    rng = random.Random(0)
    c, h, w = g.input.in_shape
    site = [(h - 1, 0)]
    out = golden(site, [[rng.randint(-127, 127) for _ in range(c)]])
    assert out[0].tolist() == [[0, 0]] and out[1].shape == (1, 5)


def test_narrow_streams_network_verilator(tmp_path, kit, sim_cache, tiny_graph):
    """Narrow streams in Verilator: 4-bit unsigned, 6-bit unsigned and 3-bit signed tensors in
    5-, 6- and 3-bit lanes, a residual add that sign-extends both inputs, under stalls 0.3
    and 0.7."""
    import dataclasses

    from contract.point import DesignPoint
    from cosim.golden import qgraph_golden
    from hw.build import build

    kit.need("verilator")
    g = tiny_graph(MIXED, seed=4)
    narrow = {"stem": (0, 15), "dw": (0, 31), "pw2": (-3, 3)}
    g = dataclasses.replace(g, nodes=tuple(
        dataclasses.replace(n, lo=narrow[n.name][0], hi=narrow[n.name][1])
        if n.name in narrow else n for n in g.nodes))
    assert [g.stream_bits()[k] for k in ("stem", "dw", "pw1", "pw2", "add")] == [5, 6, 8, 3, 8]
    d = tmp_path / "narrow"
    build(g, DesignPoint.default(g, model="tiny", lanes=2, pe=2), d, model="tiny")
    frames = _frames(g, kit, seed=24, n=12)
    for stall, seed in ((0.3, 7), (0.7, 8)):
        r = simulate(d, frames, qgraph_golden(g), sim="verilator", stall_in=stall,
                     stall_out=stall, seed=seed, cache_dir=sim_cache)
        assert r.ok and r.frames == len(frames), (r.mismatches[:3], r.stopped)


def test_probes_time_each_stage_inside_the_network(tiny_net, kit, sim_cache):
    """The fast path's probes (hierarchical, the stages' requantizer outputs) count every beat of
    each stage, a site's C / 2 beats and a frame's end-of-frame token, and see a frame's stages
    begin and end in their order in the chain, the network output after the last."""
    from cosim.wrapper import read_trace

    sim = kit.any_sim()
    kit.need(sim)
    d, golden, g = tiny_net(MIXED, lanes=2, pe=2, head="map")
    names = ["stem", "dw", "pw1", "pw2", "pw3"]
    probes = [(f"{n}_requant.o__valid", f"{n}_requant.o__ready") for n in names]
    frames = _frames(g, kit, seed=25, n=8)[:6]
    r = simulate(d, frames, golden, sim=sim, stall_in=0.3, stall_out=0.3, seed=9,
                 cache_dir=sim_cache, probes=probes)
    assert r.ok, (r.mismatches[:3], r.stopped)
    env = [g.run_frame_all(c, f) for c, f in frames]
    want = [sum(len(e[n][0]) * g.node(n).out_shape[0] // 2 + 1 for e in env) for n in names]
    got = r.extra["probes"]
    assert [b for _, _, b in got] == want
    for (f0, l0, _), (f1, l1, _) in zip(got, got[1:], strict=False):
        assert f0 < f1 and l0 < l1
    trace = read_trace(Path(r.extra["work_dir"]) / "trace.txt")
    assert got[-1][1] <= trace.out[-1][0]  # the last stage drives the output port
    assert got[0][0] > trace.frames_in[0][0]
    # one frame alone: the last stage's last beat at most a few cycles before the network's
    one = simulate(d, frames[1:2], golden, sim=sim, cache_dir=sim_cache, probes=probes)
    start = read_trace(Path(one.extra["work_dir"]) / "trace.txt").frames_in[0][0]
    assert 0 <= one.latency[0] - (one.extra["probes"][-1][1] - start) < 16
    with pytest.raises(CodesignError, match="fast path"):
        simulate(d, frames[:1], golden, sim=sim, path="python", probes=probes,
                 cache_dir=sim_cache)
