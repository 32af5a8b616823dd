"""The 2x nearest upsample block: bit-exact against the op's golden model under stalls on full,
empty, single-site, border and sparse frames, over (channels, lanes, size) settings; cycles the
formula exactly."""

import random

import pytest
import torch

from hw.sim import random_frame, run_stream
from hw.stream import TokenShape
from hw.upsample import Upsample2x, cycles_per_frame
from models.ops.upsample import upsample2

CONFIGS = [(4, 1, 3, 4), (8, 4, 4, 3), (6, 6, 2, 5), (4, 2, 1, 1), (2, 1, 5, 1)]


def _frames(rng, c, h, w):
    sites = [(y, x) for y in range(h) for x in range(w)]
    border = [(y, x) for y, x in sites if y in (0, h - 1) or x in (0, w - 1)]

    def vals(n):
        return [[rng.randint(-127, 127) for _ in range(c)] for _ in range(n)]
    sparse = random_frame(rng, height=h, width=w, channels=c, density=0.4)
    return [(sites, vals(len(sites))), ([], []), ([sites[0]], vals(1)), ([sites[-1]], vals(1)),
            (border, vals(len(border))), sparse, (sites, vals(len(sites)))]


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("c,lanes,h,w", CONFIGS)
def test_upsample_exact(c, lanes, h, w, stall):
    rng = random.Random(c * 100 + lanes * 10 + h + w)
    dut = Upsample2x(shape=TokenShape(height=h, width=w, channels=c, lanes=lanes))
    frames = _frames(rng, c, h, w)
    got, _ = run_stream(dut, frames, idle=stall, stall=stall, seed=c + h, sync_domain=True)
    for (coords, feats), out in zip(frames, got, strict=True):
        oc, of = upsample2(torch.tensor(coords, dtype=torch.int64).reshape(-1, 2),
                           torch.tensor(feats, dtype=torch.int64).reshape(len(coords), c),
                           channels=c)
        assert out == ([tuple(v) for v in oc.tolist()], of.tolist())


def test_upsample_cycles():
    """Frames back to back, never stalled: ``4 * sites * B + rows + 1`` cycles each (rows: the
    input rows with sites), and the last beat out one cycle after it is formed."""
    rng = random.Random(2)
    c, lanes, h, w = 4, 2, 4, 5
    dut = Upsample2x(shape=TokenShape(height=h, width=w, channels=c, lanes=lanes))
    frames = _frames(rng, c, h, w)
    _, total = run_stream(dut, frames, sync_domain=True)
    want = sum(cycles_per_frame(active_in=len(f[0]), channels=c, lanes=lanes,
                                rows=len({y for y, _ in f[0]})) for f in frames)
    assert total == want + 1
