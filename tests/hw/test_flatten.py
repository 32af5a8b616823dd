"""The flatten block (a dense head's input): bit-exact against the op's golden model under
stalls, on empty, full, single-site and border frames, and its cycles per frame exactly the
contract's formula."""

import random

import pytest
import torch

from hw.flatten import Flatten, cycles_per_frame
from hw.sim import random_frame, run_frames, run_stream
from hw.stream import TokenShape
from models.ops.flatten import Flatten as FlattenOp
from models.qgraph import QNode

# (channels, lanes, height, width)
CONFIGS = [(4, 1, 3, 5), (8, 8, 2, 2), (6, 2, 4, 3), (16, 4, 5, 5), (3, 3, 1, 7)]
STALLS = [0.0, 0.3, 0.7]


def _golden(coords, feats, c, h, w):
    node = QNode(name="f", op="flatten", inputs=("x",), in_shape=(c, h, w),
                 out_shape=(c * h * w, 1, 1), requant=False)
    xc = torch.tensor(coords, dtype=torch.int64).reshape(-1, 2)
    xf = torch.tensor(feats, dtype=torch.int64).reshape(len(coords), c)
    oc, of = FlattenOp().golden(node, [(xc, xf)])
    return [tuple(v) for v in oc.tolist()], of.tolist()


def _frames(rng, c, h, w):
    sites = [(y, x) for y in range(h) for x in range(w)]
    border = [(y, x) for y, x in sites if y in (0, h - 1) or x in (0, w - 1)]

    def vals(n):
        return [[rng.randint(-127, 127) for _ in range(c)] for _ in range(n)]
    frames = [
        random_frame(rng, height=h, width=w, channels=c, density=1.0),
        ([], []),
        ([sites[0]], vals(1)),
        ([sites[-1]], vals(1)),
        (border, vals(len(border))),
        random_frame(rng, height=h, width=w, channels=c, density=0.4),
        ([], []),
        random_frame(rng, height=h, width=w, channels=c, density=1.0),
    ]
    return frames


@pytest.mark.parametrize("stall", STALLS)
@pytest.mark.parametrize("c,lanes,h,w", CONFIGS)
def test_flatten_exact(c, lanes, h, w, stall):
    rng = random.Random(100 * c + 10 * h + w)
    dut = Flatten(shape=TokenShape(height=h, width=w, channels=c, lanes=lanes))
    assert dut.o_shape == TokenShape(height=1, width=1, channels=c * h * w, lanes=lanes)
    frames = _frames(rng, c, h, w)
    got, _ = run_stream(dut, frames, idle=stall, stall=stall, seed=int(stall * 10) + c,
                        sync_domain=True)
    assert len(got) == len(frames)
    for (coords, feats), out in zip(frames, got, strict=True):
        want = _golden(coords, feats, c, h, w)
        assert (out[0], out[1]) == (want[0], want[1])


@pytest.mark.parametrize("c,lanes,h,w", CONFIGS[:3])
def test_flatten_cycles(c, lanes, h, w):
    rng = random.Random(c + h + w)
    dut = Flatten(shape=TokenShape(height=h, width=w, channels=c, lanes=lanes))
    frames = _frames(rng, c, h, w)
    _, eof = run_frames(dut, frames, lanes=lanes)
    for k in range(1, len(frames)):
        assert eof[k] - eof[k - 1] == cycles_per_frame(height=h, width=w, channels=c,
                                                       lanes=lanes)
