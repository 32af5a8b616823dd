from amaranth.hdl import unsigned

from hw.sim import simulate
from hw.skid import SkidBuffer


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
