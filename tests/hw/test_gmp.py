"""The global max pool block: bit-exact against the op's golden model under stalls on empty,
full, single-site, border and sparse frames, over (channels, lanes, width) settings; cycles the
formula exactly."""

import random

import pytest
import torch

from hw.gmp import GlobalMaxPool, cycles_per_frame
from hw.sim import random_frame, run_stream
from hw.stream import TokenShape
from models.ops.gmp import global_max

CONFIGS = [(4, 1, 5, 6, 8), (8, 4, 4, 4, 8), (6, 6, 3, 7, 5), (16, 8, 6, 6, 9)]


def _frames(rng, c, h, w, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    sites = [(y, x) for y in range(h) for x in range(w)]
    border = [(y, x) for y, x in sites if y in (0, h - 1) or x in (0, w - 1)]

    def vals(n, low=lo, top=hi):
        return [[rng.randint(low, top) for _ in range(c)] for _ in range(n)]
    sparse = random_frame(rng, height=h, width=w, channels=c, density=0.3)
    return [(sites, vals(len(sites))), ([], []), ([sites[0]], vals(1)), ([sites[-1]], vals(1)),
            (border, vals(len(border))), (sparse[0], vals(len(sparse[0]))),
            (sites, vals(len(sites), lo, -1)),       # every value negative: the max is < 0
            ([], []), (sites, vals(len(sites)))]


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("c,lanes,h,w,bits", CONFIGS)
def test_gmp_exact(c, lanes, h, w, bits, stall):
    rng = random.Random(c * 100 + lanes * 10 + bits)
    dut = GlobalMaxPool(shape=TokenShape(height=h, width=w, channels=c, lanes=lanes,
                                         data_width=bits))
    frames = _frames(rng, c, h, w, bits)
    got, _ = run_stream(dut, frames, idle=stall, stall=stall, seed=c, sync_domain=True)
    for (coords, feats), out in zip(frames, got, strict=True):
        want = global_max(torch.tensor(feats, dtype=torch.int64).reshape(len(coords), c), c)
        assert out == ([(0, 0)], want.tolist())


def test_gmp_cycles():
    """Frames back to back, never stalled: ``sites * B + B + 2`` cycles each."""
    rng = random.Random(1)
    c, lanes, h, w = 8, 2, 4, 5
    dut = GlobalMaxPool(shape=TokenShape(height=h, width=w, channels=c, lanes=lanes))
    frames = _frames(rng, c, h, w, 8)
    _, total = run_stream(dut, frames, sync_domain=True)
    assert total == sum(cycles_per_frame(active_sites=len(f[0]), channels=c, lanes=lanes)
                        for f in frames)
