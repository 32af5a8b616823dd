from amaranth.hdl import unsigned

from hw.sim import simulate
from hw.slice import RegisterSlice


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
