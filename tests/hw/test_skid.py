import random

import pytest
from amaranth.hdl import unsigned

from hw.sim import CycleCounter, simulate, stream_sink, stream_source
from hw.skid import SkidBuffer
from hw.stream import TokenShape


@pytest.mark.parametrize("idle,stall", [(0.0, 0.0), (0.3, 0.3), (0.0, 0.7), (0.6, 0.1)])
def test_skid_passes_every_beat_in_order(idle, stall):
    shape = TokenShape(height=3, width=5, channels=4, lanes=2)
    dut = SkidBuffer(layout=shape.layout())
    rng = random.Random(7)
    beats = [{"y": rng.randrange(3), "x": rng.randrange(5),
              "data": [rng.randint(-128, 127) for _ in range(2)], "eof": int(i == 79)}
             for i in range(80)]

    async def src(ctx):
        await stream_source(ctx, dut.i, beats, rng=3, idle=idle)

    async def sink(ctx):
        got = await stream_sink(ctx, dut.o, until=lambda p: p["eof"], rng=4, stall=stall)
        assert got == beats

    simulate(dut, src, sink)


def test_skid_adds_no_latency_and_runs_at_full_rate():
    dut = SkidBuffer(layout=TokenShape(height=1, width=1, channels=1, lanes=1).layout())
    beats = [{"y": 0, "x": 0, "data": [i - 50], "eof": int(i == 99)} for i in range(100)]
    counter = CycleCounter()

    async def src(ctx):
        await stream_source(ctx, dut.i, beats)

    async def sink(ctx):
        assert await stream_sink(ctx, dut.o, until=lambda p: p["eof"]) == beats

    simulate(dut, src, sink, counter=counter)
    assert counter.now == 100  # a beat per cycle, each out in the cycle it came in


def test_skid_ready_is_a_register():
    """``i.ready`` does not follow ``o.ready`` in the same cycle: it falls one cycle after a beat
    is refused (the buffer took it), and rises one cycle after the buffered beat left."""
    dut = SkidBuffer(layout=unsigned(8))
    seen = []

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, 11)
        ctx.set(dut.o.ready, 0)
        seen.append(("refused, same cycle", ctx.get(dut.i.ready), ctx.get(dut.o.valid)))
        await ctx.tick()
        ctx.set(dut.i.payload, 22)
        seen.append(("buffered", ctx.get(dut.i.ready), ctx.get(dut.o.payload)))
        ctx.set(dut.o.ready, 1)
        seen.append(("drained, same cycle", ctx.get(dut.i.ready), ctx.get(dut.o.payload)))
        await ctx.tick()
        seen.append(("empty again", ctx.get(dut.i.ready), ctx.get(dut.o.payload)))

    simulate(dut, bench)
    assert seen == [("refused, same cycle", 1, 1), ("buffered", 0, 11),
                    ("drained, same cycle", 0, 11), ("empty again", 1, 22)]
