"""hw.stream layouts and manifest fields; hw.sim stream drivers under random stalls."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.sim import CycleCounter, simulate, stream_get, stream_put, stream_sink, stream_source
from hw.stream import TokenShape, coord_bits, payload_fields, token_layout


def test_coord_bits():
    assert [coord_bits(n) for n in (1, 2, 3, 4, 5, 16, 17)] == [1, 1, 2, 2, 3, 4, 5]
    with pytest.raises(TypeError, match="n must be a positive integer"):
        coord_bits(0)


def test_layout_matches_contract_example():
    layout = token_layout(y_bits=4, x_bits=4, lanes=1, width=8)
    assert payload_fields(layout) == [
        {"name": "y", "offset": 0, "width": 4, "signed": False},
        {"name": "x", "offset": 4, "width": 4, "signed": False},
        {"name": "data", "offset": 8, "width": 8, "signed": True, "count": 1},
        {"name": "eof", "offset": 16, "width": 1, "signed": False},
    ]
    assert layout.size == 17


def test_token_shape():
    s = TokenShape(height=5, width=7, channels=12, lanes=4, data_width=32)
    assert s.beats_per_site == 3
    f = {d["name"]: d for d in payload_fields(s.layout())}
    assert f["y"]["width"] == 3 and f["x"]["width"] == 3
    assert f["data"] == {"name": "data", "offset": 6, "width": 32, "signed": True, "count": 4}
    assert f["eof"]["offset"] == 6 + 128
    with pytest.raises(ValueError, match="lanes \\(5\\) must divide channels \\(12\\)"):
        TokenShape(height=5, width=7, channels=12, lanes=5)
    with pytest.raises(TypeError, match="lanes must be a positive integer"):
        TokenShape(height=5, width=7, channels=12, lanes=0)


class _Passthrough(wiring.Component):
    def __init__(self, layout):
        self._layout = layout
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFO(width=self._layout.size, depth=2)
        m.d.comb += [
            fifo.w_data.eq(self.i.payload), fifo.w_en.eq(self.i.valid), self.i.ready.eq(fifo.w_rdy),
            self.o.payload.eq(fifo.r_data), self.o.valid.eq(fifo.r_rdy), fifo.r_en.eq(self.o.ready),
        ]
        return m


@pytest.mark.parametrize("idle,stall", [(0.0, 0.0), (0.5, 0.5)])
def test_source_sink_roundtrip(idle, stall):
    layout = TokenShape(height=4, width=4, channels=2, lanes=2).layout()
    dut = _Passthrough(layout)
    rng = random.Random(1)
    beats = [{"y": rng.randrange(4), "x": rng.randrange(4),
              "data": [rng.randrange(-128, 128) for _ in range(2)], "eof": 0} for _ in range(40)]
    beats.append({"y": 0, "x": 0, "data": [0, 0], "eof": 1})
    got = []
    counter = CycleCounter()

    async def src(ctx):
        await stream_source(ctx, dut.i, beats, rng=2, idle=idle)

    async def snk(ctx):
        got.extend(await stream_sink(ctx, dut.o, until=lambda p: p["eof"], rng=3, stall=stall))

    simulate(dut, src, snk, counter=counter)
    assert got == beats
    if idle == stall == 0:
        assert counter.now <= len(beats) + 3
    else:
        assert counter.now > len(beats) + 10


def test_put_get():
    layout = token_layout(y_bits=2, x_bits=2, lanes=1, width=8)
    dut = _Passthrough(layout)
    got = []

    async def tb(ctx):
        await stream_put(ctx, dut.i, {"y": 3, "x": 1, "data": [-5], "eof": 1})
        got.append(await stream_get(ctx, dut.o))

    simulate(dut, tb)
    assert got == [{"y": 3, "x": 1, "data": [-5], "eof": 1}]


def test_watchdog():
    layout = token_layout(y_bits=2, x_bits=2, lanes=1, width=8)
    dut = _Passthrough(layout)

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        while not ctx.get(dut.o.valid):  # nothing is ever sent
            await ctx.tick()

    with pytest.raises(TimeoutError, match="within 50 cycles"):
        simulate(dut, tb, max_cycles=50)
