"""What every one-edge stream buffer must do (hw/skid.py's SkidBuffer, hw/slice.py's
RegisterSlice): pass every beat in order under any idle and stall pattern, and run at one beat a
cycle with its own latency. Their register timing is tested in test_skid.py and test_slice.py."""

import random

import pytest

from hw import slice as register_slice
from hw.sim import CycleCounter, simulate, stream_sink, stream_source
from hw.skid import SkidBuffer
from hw.stream import TokenShape

#: (component, cycles from a beat's acceptance to its output, the beats' seed)
BUFFERS = [pytest.param(SkidBuffer, 0, 7, id="skid"),
           pytest.param(register_slice.RegisterSlice, register_slice.LATENCY, 11, id="slice")]


@pytest.mark.parametrize("cls,latency,seed", BUFFERS)
@pytest.mark.parametrize("idle,stall", [(0.0, 0.0), (0.3, 0.3), (0.0, 0.7), (0.6, 0.1)])
def test_passes_every_beat_in_order(cls, latency, seed, idle, stall):
    shape = TokenShape(height=3, width=5, channels=4, lanes=2)
    dut = cls(layout=shape.layout())
    rng = random.Random(seed)
    beats = [{"y": rng.randrange(3), "x": rng.randrange(5),
              "data": [rng.randint(-128, 127) for _ in range(2)], "eof": int(i == 79)}
             for i in range(80)]

    async def src(ctx):
        await stream_source(ctx, dut.i, beats, rng=3, idle=idle)

    async def sink(ctx):
        got = await stream_sink(ctx, dut.o, until=lambda p: p["eof"], rng=4, stall=stall)
        assert got == beats

    simulate(dut, src, sink)


@pytest.mark.parametrize("cls,latency,seed", BUFFERS)
def test_runs_at_full_rate_after_its_latency(cls, latency, seed):
    dut = cls(layout=TokenShape(height=1, width=1, channels=1, lanes=1).layout())
    beats = [{"y": 0, "x": 0, "data": [i - 50], "eof": int(i == 99)} for i in range(100)]
    counter = CycleCounter()

    async def src(ctx):
        await stream_source(ctx, dut.i, beats)

    async def sink(ctx):
        assert await stream_sink(ctx, dut.o, until=lambda p: p["eof"]) == beats

    simulate(dut, src, sink, counter=counter)
    assert counter.now == 100 + latency  # a beat per cycle, each out `latency` cycles later


def test_the_slice_takes_one_cycle():
    assert register_slice.LATENCY == 1
