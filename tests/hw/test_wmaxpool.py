"""The k x k "same" window max pool: bit-exact against the op's golden model under stalls, dense
(the ImageNet stem's 3x3/2, an SPP block's 5x5/1, 7x7/2) and sparse (empty, single-site, border
and random frames), over (channels, lanes, size) settings; cycles the window formula."""

import random

import pytest
import torch

from hw.sim import random_frame, run_stream
from hw.stream import TokenShape
from hw.wmaxpool import WindowMaxPool
from models.ops.wmaxpool import window_max

DENSE = [(3, 2, 4, 2, 7, 6), (5, 1, 2, 1, 6, 5), (7, 2, 3, 3, 5, 8), (3, 1, 8, 4, 4, 4)]
SPARSE = [(3, 2, 4, 2, 7, 6), (3, 1, 2, 1, 5, 5)]


def _vals(rng, n, c):
    return [[rng.choice([-128, -127, 127, rng.randint(-128, 127)]) for _ in range(c)]
            for _ in range(n)]


def _check(dut, frames, c, h, w, k, s, stall):
    got, _ = run_stream(dut, frames, idle=stall, stall=stall, seed=k + s, sync_domain=True,
                        max_cycles=200_000)
    for (coords, feats), out in zip(frames, got, strict=True):
        oc, of = window_max(torch.tensor(coords, dtype=torch.int64).reshape(-1, 2),
                            torch.tensor(feats, dtype=torch.int64).reshape(len(coords), c),
                            height=h, width=w, kernel=k, stride=s, channels=c)
        assert out == ([tuple(v) for v in oc.tolist()], of.tolist())


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("k,s,c,lanes,h,w", DENSE)
def test_window_max_pool_dense_exact(k, s, c, lanes, h, w, stall):
    rng = random.Random(k * 100 + s * 10 + c)
    sites = [(y, x) for y in range(h) for x in range(w)]
    frames = [(sites, _vals(rng, len(sites), c)) for _ in range(3)]
    dut = WindowMaxPool(shape=TokenShape(height=h, width=w, channels=c, lanes=lanes), kernel=k,
                        stride=s, dense=True)
    _check(dut, frames, c, h, w, k, s, stall)


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("k,s,c,lanes,h,w", SPARSE)
def test_window_max_pool_sparse_exact(k, s, c, lanes, h, w, stall):
    rng = random.Random(k * 100 + s * 10 + c + 1)
    sites = [(y, x) for y in range(h) for x in range(w)]
    border = [(y, x) for y, x in sites if y in (0, h - 1) or x in (0, w - 1)]
    sparse = random_frame(rng, height=h, width=w, channels=c, density=0.3)
    frames = [([], []), ([sites[0]], _vals(rng, 1, c)), ([sites[-1]], _vals(rng, 1, c)),
              (border, _vals(rng, len(border), c)), (sparse[0], _vals(rng, len(sparse[0]), c)),
              (sites, _vals(rng, len(sites), c))]
    dut = WindowMaxPool(shape=TokenShape(height=h, width=w, channels=c, lanes=lanes), kernel=k,
                        stride=s, dense=False)
    _check(dut, frames, c, h, w, k, s, stall)
