import gc
import json
import random
import warnings

import pytest
import torch
import torch.nn.functional as F
from amaranth.hdl import UnusedElaboratable

from cosim.layer import write_block_build
from hw.maxpool import LATENCY, MaxPool2x2, cycles_per_frame
from hw.sim import random_frame, run_frames, run_stream, simulate, stream_put
from hw.stream import TokenShape
from hw.width import frame_beats


def maxpool2x2_reference(coords, feats, height, width):
    """Sparse 2x2 / stride 2 max pool: ``(out_coords, out_feats)`` in raster order.

    An output site is active iff an active input site of its window is (rows and columns past
    ``2 * (size // 2)`` dropped); each channel is the max over the window's active sites only.
    """
    ho, wo = height // 2, width // 2
    best = {}
    for (y, x), f in zip(coords, feats, strict=True):
        if y >= 2 * ho or x >= 2 * wo:
            continue
        key = (y // 2, x // 2)
        f = [int(v) for v in f]
        best[key] = [max(a, b) for a, b in zip(best[key], f, strict=True)] if key in best else f
    out = sorted(best)
    return out, [best[k] for k in out]


# (channels, lanes, height, width, signed, data_width)
CONFIGS = [
    (4, 1, 5, 7, True, 8),     # odd H and W, one lane
    (8, 8, 4, 6, False, 8),    # lanes == channels, unsigned
    (6, 2, 6, 5, True, 4),     # odd W, narrow values
    (4, 4, 3, 3, True, 8),     # 1 x 1 output, lanes == channels
    (8, 4, 2, 2, False, 5),    # smallest map
    (6, 3, 7, 4, True, 16),    # odd H, wide values
]
STALLS = [0.0, 0.3, 0.7]


def _shape(c, lanes, h, w, sgn, dw):
    return TokenShape(height=h, width=w, channels=c, lanes=lanes, data_width=dw, signed=sgn)


def _range(sgn, dw):
    return (-(1 << (dw - 1)) + 1, (1 << (dw - 1)) - 1) if sgn else (0, (1 << dw) - 1)


def _uniform(rng, coords, c, lo, hi):
    return coords, [[rng.randint(lo, hi) for _ in range(c)] for _ in coords]


def _pick(rng, coords, c, values):
    return coords, [[rng.choice(values) for _ in range(c)] for _ in coords]


def _frames(rng, c, h, w, sgn, dw):
    lo, hi = _range(sgn, dw)
    sites = [(y, x) for y in range(h) for x in range(w)]
    border = [(y, x) for y, x in sites if y in (0, h - 1) or x in (0, w - 1)]
    frames = [
        random_frame(rng, height=h, width=w, channels=c, density=0.3, lo=lo, hi=hi),
        ([], []),
        random_frame(rng, height=h, width=w, channels=c, density=1.0, lo=lo, hi=hi),
        _uniform(rng, [(1, 1)], c, lo, hi),
        _uniform(rng, [(h - 1, w - 1)], c, lo, hi),   # dropped if h or w is odd
        _uniform(rng, [(h - 1, 0)], c, lo, hi),       # dropped if h is odd
        _uniform(rng, [(0, w - 1)], c, lo, hi),       # dropped if w is odd
        _uniform(rng, border, c, lo, hi),
        _pick(rng, sites, c, (lo, hi)),               # only the extremes, dense
        _pick(rng, sites[::3], c, (lo,)),             # an absent site must not count as 0
        _pick(rng, sites[1::2], c, (hi,)),
        ([], []),
    ]
    frames += [random_frame(rng, height=h, width=w, channels=c, density=d, lo=lo, hi=hi)
               for d in (0.05, 0.15, 0.5, 0.7, 0.9)]
    return frames


@pytest.mark.parametrize("stall", STALLS)
@pytest.mark.parametrize("c,lanes,h,w,sgn,dw", CONFIGS)
def test_maxpool_exact(c, lanes, h, w, sgn, dw, stall):
    rng = random.Random(1000 * c + 100 * h + 10 * w + dw)
    dut = MaxPool2x2(shape=_shape(c, lanes, h, w, sgn, dw))
    frames = _frames(rng, c, h, w, sgn, dw)
    got, _ = run_stream(dut, frames, idle=stall, stall=stall, seed=int(stall * 10) + c)
    assert len(got) == len(frames)
    for (coords, feats), out in zip(frames, got, strict=True):
        assert out == maxpool2x2_reference(coords, feats, h, w)


def test_reference_is_torch_max_pool():
    rng = random.Random(5)
    for h, w, density in [(5, 7, 1.0), (4, 6, 1.0), (6, 5, 0.4), (7, 4, 0.2)]:
        coords, feats = random_frame(rng, height=h, width=w, channels=3, density=density)
        dense = torch.full((1, 3, h, w), float("-inf"), dtype=torch.float64)
        for (y, x), f in zip(coords, feats, strict=True):
            dense[0, :, y, x] = torch.tensor(f, dtype=torch.float64)
        pooled = F.max_pool2d(dense, 2)[0]
        out_coords, out_feats = maxpool2x2_reference(coords, feats, h, w)
        active = [(yo, xo) for yo in range(h // 2) for xo in range(w // 2)
                  if pooled[0, yo, xo] > float("-inf")]
        assert out_coords == active
        assert out_feats == [pooled[:, yo, xo].long().tolist() for yo, xo in active]


@pytest.mark.parametrize("c,lanes,h,w,sgn,dw", CONFIGS[:4] + [(8, 2, 16, 15, True, 8)])
def test_maxpool_cycles(c, lanes, h, w, sgn, dw):
    rng = random.Random(c * h + w)
    dut = MaxPool2x2(shape=_shape(c, lanes, h, w, sgn, dw))
    frames = _frames(rng, c, h, w, sgn, dw)
    lo, hi = _range(sgn, dw)
    frames += [random_frame(rng, height=h, width=w, channels=c, density=d, lo=lo, hi=hi)
               for d in (0.1, 0.5)]
    got, eof = run_frames(dut, frames, lanes=lanes)
    for (coords, feats), out in zip(frames, got, strict=True):
        assert out == maxpool2x2_reference(coords, feats, h, w)
    for k in range(1, len(frames)):
        coords, feats = frames[k]
        n_out = len(maxpool2x2_reference(coords, feats, h, w)[0])
        assert eof[k] - eof[k - 1] == cycles_per_frame(
            active_in=len(coords), active_out=n_out, channels=c, lanes=lanes)


@pytest.mark.parametrize("sites", [[(0, 0), (2, 3)], [(1, 1)], []])
def test_maxpool_latency(sites):
    c, lanes = 4, 2
    dut = MaxPool2x2(shape=_shape(c, lanes, 4, 6, True, 8))
    beats = frame_beats(sites, [[7] * c for _ in sites], lanes)
    waited = []

    # the first output row's beats, then the beat that completes it (next row's first, or eof)
    head = [b for b in beats if not b["eof"] and b["y"] // 2 == sites[0][0] // 2]
    trigger = beats[len(head)]

    async def tb(ctx):
        for b in head:
            await stream_put(ctx, dut.i, b)
        ctx.set(dut.i.payload, trigger)
        ctx.set(dut.i.valid, 1)
        n = 0
        while not ctx.get(dut.o.valid):
            await ctx.tick()
            n += 1
        waited.append(n)
        ctx.set(dut.i.valid, 0)

    simulate(dut, tb, max_cycles=200)
    assert waited == [LATENCY]


def test_maxpool_lone_frame_cycles():
    # the frame's cycles are 0 .. want - 1 (its eof goes in at want - 1); the output eof is
    # accepted LATENCY cycles later
    c, lanes, h, w = 6, 2, 6, 5
    rng = random.Random(9)
    dut = MaxPool2x2(shape=_shape(c, lanes, h, w, True, 8))
    frame = random_frame(rng, height=h, width=w, channels=c, density=0.5)
    _, eof = run_frames(dut, [frame], lanes=lanes)
    n_out = len(maxpool2x2_reference(*frame, h, w)[0])
    want = cycles_per_frame(active_in=len(frame[0]), active_out=n_out, channels=c, lanes=lanes)
    assert eof == [want - 1 + LATENCY]


@pytest.mark.parametrize("c,lanes,h,w,sgn,dw", [(6, 3, 7, 5, False, 12), (4, 4, 3, 3, True, 8)])
def test_maxpool_block_build(tmp_path, c, lanes, h, w, sgn, dw):
    dut = MaxPool2x2(shape=_shape(c, lanes, h, w, sgn, dw))
    assert dut.i_shape is dut.shape
    assert dut.o_shape == _shape(c, lanes, h // 2, w // 2, sgn, dw)
    assert dut.i_layout == dut.i_shape.layout() and dut.o_layout == dut.o_shape.layout()
    write_block_build(dut, tmp_path, top="maxpool")
    ports = json.loads((tmp_path / "manifest.json").read_text())["ports"]
    assert (ports["input"]["height"], ports["input"]["width"]) == (h, w)
    assert (ports["output"]["height"], ports["output"]["width"]) == (h // 2, w // 2)
    assert ports["output"]["fields"][2]["signed"] == sgn


def _rejects(exc, match, **kw):
    # the half-built component would warn "created but never used" when collected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(exc, match=match) as info:
            MaxPool2x2(**kw)
        del info
        gc.collect()


def test_maxpool_rejects_bad_arguments():
    _rejects(TypeError, "shape must be a TokenShape, not 3", shape=3)
    _rejects(ValueError, "height must be at least 2, not 1", shape=_shape(4, 2, 1, 4, True, 8))
    _rejects(ValueError, "width must be at least 2, not 1", shape=_shape(4, 2, 4, 1, True, 8))
    with pytest.raises(ValueError, match=r"active_out \(7\) cannot exceed"):
        cycles_per_frame(active_in=6, active_out=7, channels=4, lanes=2)
    with pytest.raises(ValueError, match="active_in must be .* not -1"):
        cycles_per_frame(active_in=-1, active_out=0, channels=4, lanes=2)
    with pytest.raises(ValueError, match="lanes"):
        cycles_per_frame(active_in=6, active_out=2, channels=4, lanes=3)
