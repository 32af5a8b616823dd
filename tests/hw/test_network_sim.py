"""Whole-network amaranth.sim of the trained zoo networks, bit-exact against QGraph.run_frame.

Real weights and real frames of the model's test split, for the all-int8 point and the mixed
dybit4/int4/int8 point (:func:`cosim.matrix.point_formats`), under random input idles and output
backpressure. amaranth.sim runs these networks at a few hundred cycles per second, so each case
takes two real frames plus an empty one (event networks; a dense network's frames are
never empty) and is marked slow; a model missing from the checkpoint
cache is skipped, not trained. Measured on the shared 2-core machine (2026-11-21, nice 5): digits
18-22 s per case, eventdigits 117-124 s, eye (92,728 cycles) 173-401 s int8 and 194-441 s mixed,
depending on the load.
The RTL of the same designs is checked on many more frames by tests/cosim/test_cosim_zoo.py and
benchmarks/cosim_matrix.py.
"""

import time

import pytest

from contract.point import DesignPoint
from cosim.matrix import point_formats
from hw.compose import Network
from hw.sim import run_stream

pytestmark = pytest.mark.slow


def _bundle(model):
    from models import zoo
    try:
        return zoo.load(model, train_if_missing=False, progress=False)
    except zoo.ModelError as exc:
        pytest.skip(f"model {model} is not trained here ({exc})")


def _golden(g, frames):
    out = []
    for coords, feats in frames:
        oc, of = g.run_frame(coords, feats)
        out.append(([tuple(v) for v in oc.tolist()], of.tolist()))
    return out


@pytest.mark.parametrize("point", ["int8", "mixed"])
@pytest.mark.parametrize("model", ["digits", "eventdigits", "eye"])
def test_zoo_network_bit_exact_in_amaranth_sim(model, point):
    bundle = _bundle(model)
    formats = point_formats(bundle.layer_names(), point)
    g = bundle.qgraph(formats)
    if point == "mixed":
        assert {n.wformat for n in g.compute_nodes()} == {"int8", "dybit4", "int4"}
    net = Network(g, DesignPoint.default(g, model=bundle.name))
    # an empty frame only where it is a valid input: a dense network's frames hold every site
    # (its dense line buffer counts H * W beats a frame, docs/CONTRACT.md)
    frames = list(bundle.frames(2, seed=1)) + ([] if g.dense else [([], [])])
    assert all(len(c) for c, _ in frames[:2])
    t0 = time.perf_counter()
    out, cycles = run_stream(net, frames, idle=0.1, stall=0.1, seed=7, max_cycles=3_000_000)
    wall = time.perf_counter() - t0
    print(f"{model}-{point}: {cycles} cycles in {wall:.0f} s ({cycles / wall:.0f} cycles/s)")
    assert out == _golden(g, frames)
    assert cycles > 0
