"""Networks with 2x2 max pools, composed by hw/ and simulated in amaranth.sim against the golden
model, on dense and sparse frames, under idles and stalls."""

import random

import pytest
from helpers import golden_frames, maxpool_qgraph

from contract.point import DesignPoint
from hw.compose import Network
from hw.sim import run_stream


def _frames(g, rng, densities):
    c, h, w = g.input.in_shape
    full = [(y, x) for y in range(h) for x in range(w)]
    border = [(y, x) for y, x in full if y in (0, h - 1) or x in (0, w - 1)]
    sites = [[], full, [(0, 0)], [(h - 1, w - 1)], border]
    sites += [[s for s in full if rng.random() < d] for d in densities]
    return [(s, [[rng.choice([0, 127, rng.randint(0, 127)]) for _ in range(c)] for _ in s])
            for s in sites]


@pytest.mark.parametrize("head,pool_first,h,w,lanes,pe", [
    ("classifier", False, 8, 8, 2, 4),
    ("map", False, 8, 10, 1, 2),
    ("map", True, 9, 12, 2, 2),   # odd height: the last row is dropped
])
def test_maxpool_network_bit_exact(head, pool_first, h, w, lanes, pe):
    g = maxpool_qgraph(3, h=h, w=w, head=head, pool_first=pool_first)
    point = DesignPoint.default(g, model="mp", lanes=lanes, pe=pe)
    frames = _frames(g, random.Random(h * w), [0.2, 0.6, 1.0])
    got = run_stream(Network(g, point), frames, idle=0.3, stall=0.3, seed=1,
                     max_cycles=200_000)[0]
    assert got == golden_frames(g, frames)
