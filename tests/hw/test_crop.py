"""The crop block (the border a zero-padded conv drops): bit-exact against the op's golden model
under stalls on empty, full, single-site and border frames; cycles exactly the formula."""

import random

import pytest
import torch

from hw.crop import Crop, cycles_per_frame
from hw.sim import random_frame, run_stream
from hw.stream import TokenShape
from models.ops.crop import crop

CONFIGS = [(4, 1, 6, 7, 3), (8, 4, 9, 9, 5), (3, 3, 10, 8, 7), (2, 2, 3, 3, 3)]


def _frames(rng, c, h, w):
    sites = [(y, x) for y in range(h) for x in range(w)]
    border = [(y, x) for y, x in sites if y in (0, h - 1) or x in (0, w - 1)]

    def vals(n):
        return [[rng.randint(-127, 127) for _ in range(c)] for _ in range(n)]
    return [random_frame(rng, height=h, width=w, channels=c, density=1.0), ([], []),
            ([sites[len(sites) // 2]], vals(1)), ([sites[0]], vals(1)),
            (border, vals(len(border))),
            random_frame(rng, height=h, width=w, channels=c, density=0.3)]


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("c,lanes,h,w,k", CONFIGS)
def test_crop_exact(c, lanes, h, w, k, stall):
    rng = random.Random(c * 100 + h * 10 + w + k)
    dut = Crop(shape=TokenShape(height=h, width=w, channels=c, lanes=lanes), kernel=k)
    frames = _frames(rng, c, h, w)
    got, _ = run_stream(dut, frames, idle=stall, stall=stall, seed=k, sync_domain=True)
    for (coords, feats), out in zip(frames, got, strict=True):
        oc, of = crop(torch.tensor(coords).reshape(-1, 2),
                      torch.tensor(feats, dtype=torch.int64).reshape(len(coords), c),
                      margin=k // 2, height=h, width=w)
        assert out == ([tuple(v) for v in oc.tolist()], of.tolist())


def test_crop_cycles():
    """Frames back to back, never stalled: the whole run is the sum of the formula's cycles."""
    rng = random.Random(2)
    c, lanes, h, w, k = 4, 2, 7, 6, 3
    dut = Crop(shape=TokenShape(height=h, width=w, channels=c, lanes=lanes), kernel=k)
    frames = _frames(rng, c, h, w)
    _, total = run_stream(dut, frames, sync_domain=True)
    want = sum(cycles_per_frame(active_in=len(f[0]), channels=c, lanes=lanes) for f in frames)
    assert total == want
