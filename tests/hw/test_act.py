"""The table activation block: bit-exact against the op's golden model (the table lookup) under
stalls on every input value, empty, single-site and border frames, over several (bits, out bits,
lanes, channels) settings; cycles exactly the stream formula."""

import random

import pytest
import torch

from contract.constants import ACT_LATENCY
from contract.cycles import stream_cycles
from hw.act import ActTable
from hw.sim import random_frame, run_stream
from hw.stream import TokenShape
from models.ops.act import act_table, lookup

# (in bits, out bits, channels, lanes, h, w): int8 -> int8, a 4-bit unsigned input (5-bit lanes)
# -> int8, int8 -> 4-bit unsigned (5 bits), 2-bit signed -> 3 bits
CONFIGS = [(8, 8, 4, 1, 5, 6), (5, 8, 6, 3, 4, 4), (8, 5, 8, 8, 3, 7), (2, 3, 2, 2, 3, 3)]


def _table(bits, out_bits, seed):
    """A table that is no function a simpler block would compute: LeakyReLU, then a random
    permutation of half the entries."""
    lo, hi = -(1 << (out_bits - 1)) + 1, (1 << (out_bits - 1)) - 1
    t = act_table(lambda v: torch.nn.functional.leaky_relu(v, 0.1), in_lo=-(1 << (bits - 1)),
                  in_hi=(1 << (bits - 1)) - 1, in_scale=1.0, out_scale=(1 << bits) / (hi - lo),
                  lo=lo, hi=hi).tolist()
    rng = random.Random(seed)
    idx = rng.sample(range(len(t)), len(t) // 2)
    vals = [t[i] for i in idx]
    rng.shuffle(vals)
    for i, v in zip(idx, vals, strict=True):
        t[i] = v
    return t


def _frames(rng, bits, c, h, w):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    sites = [(y, x) for y in range(h) for x in range(w)]
    every = list(range(lo, hi + 1))
    # every input value on every lane: a dense frame per shift of the values over the lanes
    full = []
    for k in range(max(1, -(-len(every) // (len(sites) * c)))):
        vals = [[every[(k * len(sites) * c + s * c + j) % len(every)] for j in range(c)]
                for s in range(len(sites))]
        full.append((sites, vals))
    border = [(y, x) for y, x in sites if y in (0, h - 1) or x in (0, w - 1)]

    def rand(n):
        return [[rng.randint(lo, hi) for _ in range(c)] for _ in range(n)]
    sparse = random_frame(rng, height=h, width=w, channels=c, density=0.3)
    sparse = (sparse[0], rand(len(sparse[0])))
    return [*full, ([], []), ([sites[0]], rand(1)), ([sites[-1]], rand(1)),
            (border, rand(len(border))), sparse]


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("bits,out_bits,c,lanes,h,w", CONFIGS)
def test_act_table_exact(bits, out_bits, c, lanes, h, w, stall):
    rng = random.Random(bits * 1000 + c * 10 + lanes)
    table = _table(bits, out_bits, seed=bits + out_bits)
    dut = ActTable(shape=TokenShape(height=h, width=w, channels=c, lanes=lanes, data_width=bits),
                   table=table, out_bits=out_bits)
    frames = _frames(rng, bits, c, h, w)
    seen = {v for _, f in frames for row in f for v in row}
    assert seen == set(range(-(1 << (bits - 1)), 1 << (bits - 1)))  # every table entry read
    got, _ = run_stream(dut, frames, idle=stall, stall=stall, seed=bits, sync_domain=True)
    for (coords, feats), out in zip(frames, got, strict=True):
        want = lookup(torch.tensor(feats, dtype=torch.int64).reshape(len(coords), c), table)
        assert out == ([tuple(v) for v in coords], want.tolist())


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("bits,out_bits,c,lanes,h,w", [(8, 8, 6, 2, 4, 4), (5, 8, 4, 1, 3, 5),
                                                        (4, 4, 3, 3, 3, 3)])
def test_a_table_per_channel_is_exact(bits, out_bits, c, lanes, h, w, stall):
    """A PReLU's tables, one per channel: each lane's ROM holds its channels' and a beat counter
    picks the one of the beat in flight."""
    rng = random.Random(bits * 100 + c)
    tables = [_table(bits, out_bits, seed=ch) for ch in range(c)]
    dut = ActTable(shape=TokenShape(height=h, width=w, channels=c, lanes=lanes, data_width=bits),
                   table=tables, out_bits=out_bits)
    frames = _frames(rng, bits, c, h, w)
    got, _ = run_stream(dut, frames, idle=stall, stall=stall, seed=c, sync_domain=True)
    for (coords, feats), out in zip(frames, got, strict=True):
        want = lookup(torch.tensor(feats, dtype=torch.int64).reshape(len(coords), c), tables)
        assert out == ([tuple(v) for v in coords], want.tolist())


def test_act_table_cycles():
    """Frames back to back, never stalled: one beat a cycle, the stream formula exactly, and the
    last beat out ``ACT_LATENCY`` cycles after it went in."""
    rng = random.Random(3)
    bits, c, lanes, h, w = 8, 4, 2, 5, 4
    dut = ActTable(shape=TokenShape(height=h, width=w, channels=c, lanes=lanes), out_bits=8,
                   table=_table(bits, 8, seed=1))
    frames = _frames(rng, bits, c, h, w)
    _, total = run_stream(dut, frames, sync_domain=True)
    assert total == sum(stream_cycles(active_sites=len(f[0]), channels=c, lanes=lanes)
                        for f in frames) + ACT_LATENCY


@pytest.mark.parametrize("kw,match", [
    (dict(table=[0] * 128, out_bits=8), "tables of 256 entries"),
    (dict(table=[200] * 256, out_bits=8), "do not fit 8 signed bits"),
    (dict(table=[0] * 256, out_bits=1), "out_bits"),
    (dict(table=[[0] * 256] * 3, out_bits=8), "one per channel"),
])
def test_act_table_rejects_bad_tables(kw, match):
    with pytest.raises(ValueError, match=match):
        ActTable(shape=TokenShape(height=2, width=2, channels=2, lanes=1), **kw)


@pytest.mark.parametrize("lanes", [1, 2])
def test_tables_in_a_sparse_network_are_exact(lanes):
    """A sparse network (event frames: the sparse line buffer) with a table after the stem, a
    table per channel after the depthwise conv and a 4-bit unsigned table into the residual add:
    the composed hardware equals the golden model in amaranth.sim under stalls, empty and
    single-site frames included; tables apply to the active sites only."""
    import numpy as np
    from helpers import classifier_head, conv_node, golden_frames

    from contract.point import DesignPoint
    from hw.compose import Network
    from models.qgraph import QGraph, QNode

    rng = np.random.default_rng(5)
    h, w = 6, 7
    leaky = _table(8, 8, seed=1)
    prelu = np.array([_table(8, 8, seed=10 + c) for c in range(4)])
    u4 = act_table(torch.sigmoid, in_lo=-127, in_hi=127, in_scale=0.05, out_scale=1 / 15,
                   lo=0, hi=15)
    nodes = [QNode(name="input", op="input", inputs=(), in_shape=(2, h, w), out_shape=(2, h, w)),
             conv_node(rng, "stem", "input", 2, 4, (h, w), k=3, relu=False, S=10),
             QNode(name="a1", op="act", inputs=("stem",), in_shape=(4, h, w),
                   out_shape=(4, h, w), lo=-127, hi=127, table=np.array(leaky)),
             conv_node(rng, "dw", "a1", 4, 4, (h, w), k=3, groups=4, relu=False, S=11),
             QNode(name="a2", op="act", inputs=("dw",), in_shape=(4, h, w), out_shape=(4, h, w),
                   lo=-127, hi=127, table=prelu),
             QNode(name="a3", op="act", inputs=("a2",), in_shape=(4, h, w),
                   out_shape=(4, h, w), lo=0, hi=15, table=u4),
             QNode(name="add", op="add", inputs=("a1", "a3"), in_shape=(4, h, w),
                   out_shape=(4, h, w), Ma=1 << 13, Mb=3 << 12, S=14, lo=0, hi=127)]
    nodes += classifier_head(rng, "add", (4, h, w), 3)
    g = QGraph(name="acts", nodes=tuple(nodes))
    assert g.stream_bits()["a3"] == 5 and not g.dense
    net = Network(g, DesignPoint.default(g, model="acts", lanes=lanes, pe=2))
    r = random.Random(lanes)
    frames = [random_frame(r, height=h, width=w, channels=2, density=d) for d in (0.4, 0.0, 0.9)]
    frames.append(([(2, 3)], [[r.randint(0, 127) for _ in range(2)]]))
    got, _ = run_stream(net, frames, idle=0.3, stall=0.3, seed=lanes, max_cycles=200_000)
    # an empty frame: an all-zero pool, so the logits are the linear layer's bias
    want = [golden_frames(g, [f])[0] if f[0] else ([(0, 0)], [g.output.bias.tolist()])
            for f in frames]
    assert got == want
