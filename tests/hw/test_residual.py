import random

import pytest
import torch

from hw.residual import LATENCY, ResidualAdd, cycles_per_frame
from hw.sim import CycleCounter, simulate, stream_sink, stream_source
from hw.stream import TokenShape
from hw.width import beats_frames, frame_beats
from models.quant.requant import add_requant


def _frames(rng, c, sizes):
    out = []
    for n in sizes:
        sites = sorted(rng.sample([(y, x) for y in range(4) for x in range(6)], n))
        fa = [[rng.randint(-127, 127) for _ in range(c)] for _ in sites]
        fb = [[rng.randint(-127, 127) for _ in range(c)] for _ in sites]
        out.append((sites, fa, fb))
    return out


def _run(dut, frames, *, idle=0.0, stall=0.0, seed=0):
    lanes = dut.shape.lanes
    beats_a = [b for c, fa, _ in frames for b in frame_beats(c, fa, lanes)]
    beats_b = [b for c, _, fb in frames for b in frame_beats(c, fb, lanes)]
    got = []
    counter = CycleCounter()

    async def src_a(ctx):
        await stream_source(ctx, dut.a, beats_a, rng=seed, idle=idle)

    async def src_b(ctx):
        await stream_source(ctx, dut.b, beats_b, rng=seed + 1, idle=idle / 2)

    async def sink(ctx):
        n = 0

        def until(p):
            nonlocal n
            n += p["eof"]
            return n == len(frames)
        got.extend(await stream_sink(ctx, dut.o, until=until, rng=seed + 2, stall=stall))

    simulate(dut, src_a, src_b, sink, counter=counter)
    return beats_frames(got, dut.shape.channels), counter.now


@pytest.mark.parametrize("lanes,Ma,Mb,S,relu", [
    (1, 20000, 9000, 15, True), (4, 32767, 1, 14, False), (8, 3, 5, 1, False),
    (2, 0, 12345, 13, True),
])
def test_residual_exact_under_stalls(lanes, Ma, Mb, S, relu):
    rng = random.Random(lanes + S)
    c = 8
    lo, hi = (0, 127) if relu else (-127, 127)
    dut = ResidualAdd(shape=TokenShape(height=4, width=6, channels=c, lanes=lanes),
                      Ma=Ma, Mb=Mb, S=S, lo=lo, hi=hi)
    frames = _frames(rng, c, [5, 0, 1, 24])
    got, _ = _run(dut, frames, idle=0.3, stall=0.3, seed=lanes)
    assert len(got) == len(frames)
    for (coords, fa, fb), (gc, gf) in zip(frames, got, strict=True):
        assert gc == coords
        if coords:
            want = add_requant(torch.tensor(fa), torch.tensor(fb), Ma, Mb, S, lo, hi).tolist()
        else:
            want = []
        assert gf == want


def test_residual_cycles():
    dut = ResidualAdd(shape=TokenShape(height=4, width=6, channels=8, lanes=2),
                      Ma=1, Mb=1, S=1, lo=-127, hi=127)
    frames = _frames(random.Random(0), 8, [12])
    _, cycles = _run(dut, frames)
    assert cycles == cycles_per_frame(active_sites=12, channels=8, lanes=2) + LATENCY


def test_residual_rejects_bad_params():
    shape = TokenShape(height=4, width=6, channels=8, lanes=2)
    with pytest.raises(ValueError, match="Ma"):
        ResidualAdd(shape=shape, Ma=1 << 15, Mb=1, S=3, lo=0, hi=127)
