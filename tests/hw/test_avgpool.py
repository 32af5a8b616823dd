"""2x2 average pool (half to even, absent sites as zero): the block bit-exact against the op's
golden model under stalls on empty, full, single-site, border and extreme frames; the golden
model equals PyTorch's avg_pool2d of the zero-filled map, rounded; cycles as the max pool's."""

import random

import pytest
import torch
import torch.nn.functional as F

from hw.avgpool import AvgPool2x2, cycles_per_frame
from hw.sim import random_frame, run_frames, run_stream
from hw.stream import TokenShape
from models.ops.avgpool import avgpool2
from models.ops.maxpool import maxpool2

# channels, lanes, height, width, signed, data_width
CONFIGS = [(4, 1, 5, 7, True, 8), (8, 8, 4, 6, False, 8), (6, 2, 6, 5, True, 9),
           (4, 4, 2, 2, True, 8)]


def _frames(rng, c, h, w, sgn, dw):
    lo, hi = (-(1 << (dw - 1)) + 1, (1 << (dw - 1)) - 1) if sgn else (0, (1 << dw) - 1)
    sites = [(y, x) for y in range(h) for x in range(w)]
    border = [(y, x) for y, x in sites if y in (0, h - 1) or x in (0, w - 1)]

    def vals(n, choices=None):
        return [[rng.choice(choices) if choices else rng.randint(lo, hi) for _ in range(c)]
                for _ in range(n)]
    return [random_frame(rng, height=h, width=w, channels=c, density=1.0, lo=lo, hi=hi),
            ([], []), ([(1, 1)], vals(1)), (border, vals(len(border))),
            (sites, vals(len(sites), (lo, hi))), (sites, vals(len(sites), (1, 2, 3, -2))),
            random_frame(rng, height=h, width=w, channels=c, density=0.4, lo=lo, hi=hi)]


def _golden(coords, feats, c, h, w):
    oc, of = avgpool2(torch.tensor(coords).reshape(-1, 2),
                      torch.tensor(feats, dtype=torch.int64).reshape(len(coords), c),
                      height=h, width=w, channels=c)
    return [tuple(v) for v in oc.tolist()], of.tolist()


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("c,lanes,h,w,sgn,dw", CONFIGS)
def test_avgpool_exact(c, lanes, h, w, sgn, dw, stall):
    rng = random.Random(c * 1000 + h * 10 + w)
    dut = AvgPool2x2(shape=TokenShape(height=h, width=w, channels=c, lanes=lanes,
                                      data_width=dw, signed=sgn))
    frames = [(cs, fs) for cs, fs in _frames(rng, c, h, w, sgn, dw)
              if sgn or all(v >= 0 for f in fs for v in f)]
    got, _ = run_stream(dut, frames, idle=stall, stall=stall, seed=c + int(10 * stall))
    for (coords, feats), out in zip(frames, got, strict=True):
        assert out == _golden(coords, feats, c, h, w)


def test_golden_is_torch_avg_pool_rounded_half_even():
    rng = random.Random(3)
    c, h, w = 3, 7, 6
    coords, feats = random_frame(rng, height=h, width=w, channels=c, density=0.5)
    dense = torch.zeros(1, c, h, w, dtype=torch.float64)
    for (y, x), f in zip(coords, feats, strict=True):
        dense[0, :, y, x] = torch.tensor(f, dtype=torch.float64)
    want = torch.round(F.avg_pool2d(dense, 2))[0]
    oc, of = _golden(coords, feats, c, h, w)
    assert oc == [tuple(v) for v in maxpool2(coords, feats, height=h, width=w,
                                             channels=c)[0].tolist()]
    for (yo, xo), f in zip(oc, of, strict=True):
        assert f == want[:, yo, xo].long().tolist()
    # half to even: 2/4 -> 0, 6/4 -> 2, -2/4 -> 0, -6/4 -> -2
    c1 = [(0, 0), (0, 1), (1, 0), (1, 1)]
    for vals, q in (([1, 1, 0, 0], 0), ([3, 3, 0, 0], 2), ([-1, -1, 0, 0], 0),
                    ([-3, -3, 0, 0], -2), ([3, 3, 1, 0], 2)):
        assert _golden(c1, [[v] for v in vals], 1, 2, 2)[1] == [[q]]


def test_avgpool_cycles_are_the_max_pools():
    rng = random.Random(9)
    c, lanes, h, w = 4, 2, 6, 6
    dut = AvgPool2x2(shape=TokenShape(height=h, width=w, channels=c, lanes=lanes))
    frames = _frames(rng, c, h, w, True, 8)
    _, eof = run_frames(dut, frames, lanes=lanes)
    for k in range(1, len(frames)):
        coords = frames[k][0]
        n_out = len(_golden(coords, frames[k][1], c, h, w)[0])
        assert eof[k] - eof[k - 1] == cycles_per_frame(active_in=len(coords), active_out=n_out,
                                                       channels=c, lanes=lanes)
