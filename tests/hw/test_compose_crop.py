"""Zero-padded window convs on dense maps: the crop after each conv is folded into its line
buffer (the border is never computed), bit-exact against the golden model under stalls, and the
network's frame interval against the DSE's stage cycles."""

import math
import random

import pytest
from helpers import golden_frames, valid_qgraph

from contract.point import DesignPoint, LayerChoice
from hw.build import dense_stage_cycles
from hw.compose import Network
from hw.sim import run_beats, run_stream
from models.ops.crop import folded_margin


def _dense_frames(g, rng, n):
    c, h, w = g.input.in_shape
    sites = [(y, x) for y in range(h) for x in range(w)]
    out = [(sites, [[v] * c for _ in sites]) for v in (0, 127, -127)]
    out += [(sites, [[rng.randint(-127, 127) for _ in range(c)] for _ in sites])
            for _ in range(n)]
    return out


def _graph(k, **kw):
    """The network of setting ``k``, its weights in the setting's formats."""
    fmts = tuple(SETTINGS[k].get(n, ("int8",))[0] for n in ("c1", "c2", "dw")) + ("int8",)
    return valid_qgraph(k, formats=fmts, **kw)


def _point(g, **over):
    p = DesignPoint.default(g, model="valid")
    layers = tuple(LayerChoice(*over[c.name], name=c.name) if c.name in over else c
                   for c in p.layers)
    return DesignPoint(model="valid", layers=layers, fifo_depth=p.fifo_depth)


def test_folded_margin_only_on_dense_stride1_convs_with_their_crop():
    g = valid_qgraph(0)
    assert {n.name: folded_margin(g, n) for n in g.compute_nodes()} == \
        {"c1": 1, "c2": 2, "dw": 1, "fc": 0}
    sparse = valid_qgraph(0, dense=False)
    assert all(folded_margin(sparse, n) == 0 for n in sparse.compute_nodes())
    net = Network(g, DesignPoint.default(g, model="valid"))
    subs = dict(net._subs)
    assert (subs["c1_conv"].margin, subs["c2_conv"].margin, subs["dw_conv"].margin) == (1, 2, 1)


# (format, lanes, pe[, datapath, kfold]) per conv: the c2 5x5 conv is the bottleneck in some
SETTINGS = [
    {},
    {"c1": ("int8", 2, 2), "c2": ("int4", 4, 3, "lut"), "dw": ("int8", 6, 2)},
    {"c1": ("dybit4", 1, 4), "c2": ("int8", 2, 6, "dsp", 5), "dw": ("int4", 3, 1)},
    {"c1": ("int8", 2, 2, "dsp2"), "c2": ("int4", 1, 2, "dsp2"), "dw": ("int8", 1, 1)},
]


@pytest.mark.parametrize("k,stall", [
    pytest.param(k, st, marks=[pytest.mark.slow] if k == 1 and st != 0.3 else [])
    for k in range(len(SETTINGS)) for st in (0.0, 0.3, 0.7)])
def test_valid_convs_bit_exact(k, stall):
    g = _graph(k)
    net = Network(g, _point(g, **SETTINGS[k]))
    frames = _dense_frames(g, random.Random(k), 2)
    got = run_stream(net, frames, idle=stall, stall=stall, seed=k, max_cycles=400_000)[0]
    assert got == golden_frames(g, frames)


def _interval(net, frames):
    """End-of-frame intervals of ``frames`` back to back, never stalled (the first left out)."""
    _, eofs = run_beats(net, frames, lanes=net.i_shape.lanes, max_cycles=400_000)
    return [b - a for a, b in zip(eofs[1:], eofs[2:], strict=False)]


@pytest.mark.parametrize("k", [0, 1, 2])
def test_valid_network_interval_within_the_models(k):
    """Frames back to back: the interval is the slowest stage's predicted cycles within 10 %, and
    the folded conv is faster than the same conv computing its whole map would be."""
    g = _graph(k)
    p = _point(g, **SETTINGS[k])
    net = Network(g, p)
    gaps = _interval(net, _dense_frames(g, random.Random(k), 3))
    stages = {s["name"]: s["cycles"] for s in dense_stage_cycles(g, p, net)}
    slowest = max(stages.values())
    assert all(abs(gp - slowest) <= 0.1 * slowest for gp in gaps), (gaps, stages)
    # without the fold, the 5x5 conv computes all 11 x 12 sites
    from models import ops

    c2 = g.node("c2")
    _, h, w = c2.in_shape
    full = math.ceil(ops.of(c2).cycles(c2, p["c2"], {"active_sites_mean": h * w,
                                                     "active_in_mean": h * w}, margin=0))
    assert stages["c2"] < full
