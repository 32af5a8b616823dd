import random

import pytest
from amaranth.hdl import unsigned

from hw.sim import CycleCounter, simulate, stream_sink, stream_source
from hw.slice import LATENCY, RegisterSlice
from hw.stream import TokenShape


@pytest.mark.parametrize("idle,stall", [(0.0, 0.0), (0.3, 0.3), (0.0, 0.7), (0.6, 0.1)])
def test_slice_passes_every_beat_in_order(idle, stall):
    shape = TokenShape(height=3, width=5, channels=4, lanes=2)
    dut = RegisterSlice(layout=shape.layout())
    rng = random.Random(11)
    beats = [{"y": rng.randrange(3), "x": rng.randrange(5),
              "data": [rng.randint(-128, 127) for _ in range(2)], "eof": int(i == 79)}
             for i in range(80)]

    async def src(ctx):
        await stream_source(ctx, dut.i, beats, rng=3, idle=idle)

    async def sink(ctx):
        got = await stream_sink(ctx, dut.o, until=lambda p: p["eof"], rng=4, stall=stall)
        assert got == beats

    simulate(dut, src, sink)


def test_slice_runs_at_full_rate_one_cycle_late():
    dut = RegisterSlice(layout=TokenShape(height=1, width=1, channels=1, lanes=1).layout())
    beats = [{"y": 0, "x": 0, "data": [i - 50], "eof": int(i == 99)} for i in range(100)]
    counter = CycleCounter()

    async def src(ctx):
        await stream_source(ctx, dut.i, beats)

    async def sink(ctx):
        assert await stream_sink(ctx, dut.o, until=lambda p: p["eof"]) == beats

    simulate(dut, src, sink, counter=counter)
    assert LATENCY == 1 and counter.now == 100 + LATENCY


def test_slice_outputs_and_ready_are_registers():
    """Nothing the slice drives follows an input in the same cycle: ``o`` shows a beat the
    cycle after it was taken, ``i.ready`` falls the cycle after a second beat waits, and rises
    the cycle after it moved on; it holds two beats."""
    dut = RegisterSlice(layout=unsigned(8))
    seen = []

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, 11)
        ctx.set(dut.o.ready, 0)
        seen.append(("offered", ctx.get(dut.i.ready), ctx.get(dut.o.valid), ctx.get(dut.count)))
        await ctx.tick()
        ctx.set(dut.i.payload, 22)
        seen.append(("in main", ctx.get(dut.i.ready), ctx.get(dut.o.payload),
                     ctx.get(dut.count)))
        await ctx.tick()
        ctx.set(dut.i.payload, 33)
        seen.append(("both held", ctx.get(dut.i.ready), ctx.get(dut.o.payload),
                     ctx.get(dut.count)))
        ctx.set(dut.o.ready, 1)
        seen.append(("drained, same cycle", ctx.get(dut.i.ready), ctx.get(dut.o.payload),
                     ctx.get(dut.count)))
        await ctx.tick()
        seen.append(("spare moved on", ctx.get(dut.i.ready), ctx.get(dut.o.payload),
                     ctx.get(dut.count)))
        await ctx.tick()
        seen.append(("next", ctx.get(dut.i.ready), ctx.get(dut.o.payload), ctx.get(dut.count)))

    simulate(dut, bench)
    assert seen == [("offered", 1, 0, 0), ("in main", 1, 11, 1), ("both held", 0, 11, 2),
                    ("drained, same cycle", 0, 11, 2), ("spare moved on", 1, 22, 1),
                    ("next", 1, 33, 1)]
