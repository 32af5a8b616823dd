import random

import pytest

from contract.constants import FIFO_SLICE_BEATS
from hw.fifo import LATENCY, StreamFIFO, cycles_per_frame
from hw.sim import CycleCounter, simulate, stream_sink, stream_source
from hw.stream import TokenShape


@pytest.mark.parametrize("depth,idle,stall", [(1, 0.3, 0.3), (4, 0.5, 0.2), (16, 0.1, 0.6)])
def test_fifo_in_order_under_stalls(depth, idle, stall):
    shape = TokenShape(height=3, width=9, channels=4, lanes=2)
    dut = StreamFIFO(layout=shape.layout(), depth=depth)
    rng = random.Random(depth)
    beats = [{"y": rng.randrange(3), "x": rng.randrange(9),
              "data": [rng.randint(-128, 127) for _ in range(2)], "eof": i % 5 == 4}
             for i in range(60)]
    beats[-1]["eof"] = 1
    got = []

    async def src(ctx):
        await stream_source(ctx, dut.i, beats, rng=1, idle=idle)

    async def sink(ctx):
        n = 0

        def until(p):
            nonlocal n
            n += 1
            return n == len(beats)
        got.extend(await stream_sink(ctx, dut.o, until=until, rng=2, stall=stall))

    simulate(dut, src, sink)
    assert got == beats


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_fifo_full_rate(depth):
    shape = TokenShape(height=2, width=2, channels=1, lanes=1)
    dut = StreamFIFO(layout=shape.layout(), depth=depth)
    beats = [{"y": 0, "x": 0, "data": [i - 50], "eof": int(i == 99)} for i in range(100)]
    counter = CycleCounter()

    async def src(ctx):
        await stream_source(ctx, dut.i, beats)

    async def sink(ctx):
        got = await stream_sink(ctx, dut.o, until=lambda p: p["eof"])
        assert got == beats

    simulate(dut, src, sink, counter=counter)
    assert counter.now == 100 + LATENCY
    assert cycles_per_frame(active_sites=99, channels=1, lanes=1) == 100


def test_fifo_rejects_bad_depth():
    with pytest.raises(TypeError, match="depth"):
        StreamFIFO(layout=TokenShape(height=2, width=2, channels=1, lanes=1).layout(), depth=0)


def test_fifo_absorbs_depth_beats_while_stalled():
    shape = TokenShape(height=2, width=2, channels=1, lanes=1)
    dut = StreamFIFO(layout=shape.layout(), depth=5)
    accepted = []

    async def src(ctx):
        ctx.set(dut.i.valid, 1)
        for _ in range(20):
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            accepted.append(ready)

    simulate(dut, src)
    assert sum(accepted) == 5 + FIFO_SLICE_BEATS  # the output register slice holds two more


@pytest.mark.parametrize("depth,idle,stall", [(3, 0.3, 0.5), (4, 0.6, 0.1), (6, 0.1, 0.7)])
def test_fifo_storage_never_reads_the_entry_it_writes(depth, idle, stall):
    """The storage carries Yosys' ``no_rw_check`` (no read-during-write logic after a block
    RAM): that is only right if no cycle reads the entry it writes. Random traffic, full and
    empty included; every cycle both ports' enables and addresses are checked."""
    shape = TokenShape(height=2, width=2, channels=1, lanes=1)
    dut = StreamFIFO(layout=shape.layout(), depth=depth)
    rng = random.Random(depth)
    beats = [{"y": 0, "x": 0, "data": [rng.randint(-128, 127)], "eof": int(i == 199)}
             for i in range(200)]
    both, done = [], []

    async def src(ctx):
        await stream_source(ctx, dut.i, beats, rng=3, idle=idle)

    async def sink(ctx):
        got = await stream_sink(ctx, dut.o, until=lambda p: p["eof"], rng=4, stall=stall)
        assert got == beats
        done.append(1)

    async def watch(ctx):
        wp, rp = dut.storage_ports  # the simulation's elaboration's
        while not done:
            _, _, we, re, wa, ra = await ctx.tick().sample(wp.en, rp.en, wp.addr, rp.addr)
            if we and re:
                both.append(wa == ra)

    simulate(dut, src, sink, watch)
    assert both and not any(both)  # reads and writes in one cycle happened, never of one entry
