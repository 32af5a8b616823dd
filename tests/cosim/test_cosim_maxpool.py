"""Networks with 2x2 max pools (a dense LeNet-like classifier and a sparse map network) built by
hw.build and co-simulated in Verilator against QGraph.run_frame, under stalls 0 / 0.3 / 0.7, on
the empty, full, single-site and border frames plus random sparse ones; measured cycles per frame
against the DSE's cycle model (dse.cost.cycles with the max-pool stage)."""

import random

import pytest
from helpers import maxpool_qgraph

from contract.point import DesignPoint
from cosim.cycles import compare_cycles, predicted_frame_cycles
from cosim.golden import qgraph_golden
from cosim.manifest import load_manifest
from cosim.session import simulate
from hw.build import build

pytestmark = pytest.mark.rtl

NETS = {
    # name: (graph kwargs, lanes, pe)
    "dense_classifier": (dict(h=16, w=16, head="classifier"), 2, 4),
    "sparse_map": (dict(h=12, w=14, head="map", pool_first=True), 1, 2),
}


@pytest.fixture(scope="module")
def maxpool_net(tmp_path_factory):
    made = {}

    def make(name):
        if name not in made:
            kw, lanes, pe = NETS[name]
            g = maxpool_qgraph(5, **kw)
            d = tmp_path_factory.mktemp(name)
            build(g, DesignPoint.default(g, model="mp", lanes=lanes, pe=pe), d, model="mp")
            made[name] = (d, g)
        return made[name]
    return make


def _frames(kit, g, n=20, densities=(0.1, 0.3, 0.6, 1.0)):
    """``(frames, n_special)``: the special frames, then ``n`` random ones (post-ReLU values)."""
    c, h, w = g.input.in_shape
    special = kit.special_frames(random.Random(7), height=h, width=w, channels=c)
    special = [(s, [[abs(v) for v in f] for f in fs]) for s, fs in special]
    data = [kit.random_frame(random.Random(k), height=h, width=w, channels=c, density=d)
            for k, d in enumerate(list(densities) * (n // len(densities)))]
    return special + [(s, [[abs(v) for v in f] for f in fs]) for s, fs in data], len(special)


def _check(maxpool_net, kit, sim_cache, name, stall, frames):
    kit.need("verilator")
    d, g = maxpool_net(name)
    r = simulate(d, frames, qgraph_golden(g), sim="verilator", stall_in=stall, stall_out=stall,
                 seed=11, cache_dir=sim_cache)
    assert r.ok and r.frames == len(frames), (r.mismatches[:3], r.stopped)
    return r, g, load_manifest(d)


@pytest.mark.parametrize("name", sorted(NETS))
def test_maxpool_network_bit_exact_and_cycles(maxpool_net, kit, sim_cache, name):
    _, g = maxpool_net(name)
    frames, n_special = _frames(kit, g)
    _check(maxpool_net, kit, sim_cache, name, 0.3, frames)
    r, g, m = _check(maxpool_net, kit, sim_cache, name, 0.0, frames)
    # frames of mixed density overlap in the pipeline, so one frame's eof-to-eof period is not
    # its own bottleneck: the model is held to the mean over the data frames ...
    pred = predicted_frame_cycles(g, m.point, frames)
    cmp = compare_cycles(r.cycles_per_frame[n_special:], pred[n_special:])
    assert cmp["frames"] >= 15, cmp
    assert 0.9 <= cmp["measured_mean"] / cmp["predicted_mean"] <= 1.1, cmp
    # ... and, frame by frame, to dense frames back to back (steady state)
    dense, _ = _frames(kit, g, n=6, densities=(1.0,))
    r, _, _ = _check(maxpool_net, kit, sim_cache, name, 0.0, dense[n_special:])
    cmp = compare_cycles(r.cycles_per_frame, predicted_frame_cycles(g, m.point,
                                                                    dense[n_special:]))
    assert 0.9 <= cmp["ratio_min"] and cmp["ratio_max"] <= 1.1, cmp


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NETS))
def test_maxpool_network_heavy_stalls(maxpool_net, kit, sim_cache, name):
    _, g = maxpool_net(name)
    _check(maxpool_net, kit, sim_cache, name, 0.7, _frames(kit, g)[0])
