"""A table activation on a token stream: every lane value replaced by its entry in one table.

One ROM per lane holds the table (``2^bits`` words of ``out_bits``, entry ``v & (2^bits - 1)`` for
input ``v``: the lane's bits address it as they are), read through its register: a beat leaves one
cycle after it is taken, at one beat a cycle (``ACT_LATENCY``). Coordinates and the end-of-frame
flag travel in registers beside the read; the end-of-frame beat's lanes are don't-care. Synthesis
maps each ROM to logic or block RAM by the family's rule (``models.ops._price.memory``).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib.memory import Memory

from contract.constants import ACT_LATENCY

from .stream import TokenBlock, TokenShape

__all__ = ["ActTable", "ACT_LATENCY"]


class ActTable(TokenBlock):
    """Replace each lane value ``v`` by ``table[v & (2^bits - 1)]``.

    Parameters
    ----------
    shape : TokenShape
        Input stream; its ``data_width`` is the table's input bits (``len(table) = 2^bits``).
    table : list of int
        The outputs, in two's-complement order of the inputs.
    out_bits : int
        Signed bits of the output lanes (every entry must fit).
    """

    def __init__(self, *, shape, table, out_bits):
        if not isinstance(shape, TokenShape) or not shape.signed:
            raise TypeError(f"shape must be a signed TokenShape, not {shape!r}")
        table = [int(v) for v in table]
        if len(table) != 1 << shape.data_width:
            raise ValueError(f"a {shape.data_width}-bit stream needs a table of "
                             f"{1 << shape.data_width} entries, not {len(table)}")
        if not isinstance(out_bits, int) or out_bits < 2:
            raise ValueError(f"out_bits must be an integer >= 2, not {out_bits!r}")
        lo, hi = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
        if min(table) < lo or max(table) > hi:
            raise ValueError(f"table values [{min(table)}, {max(table)}] do not fit "
                             f"{out_bits} signed bits")
        self.table, self.out_bits = table, out_bits
        o_shape = TokenShape(height=shape.height, width=shape.width, channels=shape.channels,
                             lanes=shape.lanes, data_width=out_bits, signed=True)
        super().__init__(shape, o_shape)

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        valid = Signal()
        take = Signal()
        m.d.comb += [
            i.ready.eq(~valid | o.ready),
            take.eq(i.valid & i.ready),
            o.valid.eq(valid),
        ]
        with m.If(take):
            m.d.sync += [valid.eq(1), o.payload.y.eq(i.payload.y), o.payload.x.eq(i.payload.x),
                         o.payload.eof.eq(i.payload.eof)]
        with m.Elif(o.ready):
            m.d.sync += valid.eq(0)
        for k in range(self.i_shape.lanes):
            m.submodules[f"rom{k}"] = rom = Memory(shape=signed(self.out_bits),
                                                   depth=len(self.table), init=self.table)
            rd = rom.read_port(domain="sync")
            m.d.comb += [rd.addr.eq(i.payload.data[k].as_unsigned()), rd.en.eq(take),
                         o.payload.data[k].eq(rd.data)]
        return m

