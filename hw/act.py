"""A table activation on a token stream: every lane value replaced by its entry in a table.

One ROM per lane holds the table (``2^bits`` words of ``out_bits``, entry ``v & (2^bits - 1)`` for
input ``v``: the lane's bits address it as they are), read through its register: a beat leaves one
cycle after it is taken, at one beat a cycle (``ACT_LATENCY``). With a table per channel (a
PReLU's), lane ``k``'s ROM holds the tables of its channels ``b * lanes + k``, one per beat ``b``
of a site, and a beat counter selects among them (address ``{b, v}``). Coordinates and the
end-of-frame flag travel in registers beside the read; the end-of-frame beat's lanes are
don't-care. Synthesis maps each ROM to logic or block RAM by the family's rule
(``models.ops._price.memory``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib.memory import Memory

from contract.constants import ACT_LATENCY

from .stream import TokenBlock, TokenShape

__all__ = ["ActTable", "ACT_LATENCY"]


class ActTable(TokenBlock):
    """Replace each lane value ``v`` of channel ``c`` by ``table[v & (2^bits - 1)]`` (one table)
    or ``table[c][v & (2^bits - 1)]`` (a table per channel).

    Parameters
    ----------
    shape : TokenShape
        Input stream; its ``data_width`` is the tables' input bits (``2^bits`` entries each).
    table : list of int, or list of lists of int
        The outputs in two's-complement order of the inputs: one table, or one per channel.
    out_bits : int
        Signed bits of the output lanes (every entry must fit).
    """

    def __init__(self, *, shape, table, out_bits):
        if not isinstance(shape, TokenShape) or not shape.signed:
            raise TypeError(f"shape must be a signed TokenShape, not {shape!r}")
        rows = [list(r) for r in table] if table and isinstance(table[0], (list, tuple)) \
            else [list(table)]
        if len(rows) not in (1, shape.channels):
            raise ValueError(f"one table or one per channel ({shape.channels}), not {len(rows)}")
        n = 1 << shape.data_width
        if any(len(r) != n for r in rows):
            raise ValueError(f"a {shape.data_width}-bit stream needs tables of {n} entries, "
                             f"not {sorted({len(r) for r in rows})}")
        if not isinstance(out_bits, int) or out_bits < 2:
            raise ValueError(f"out_bits must be an integer >= 2, not {out_bits!r}")
        lo, hi = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
        flat = [int(v) for r in rows for v in r]
        if min(flat) < lo or max(flat) > hi:
            raise ValueError(f"table values [{min(flat)}, {max(flat)}] do not fit "
                             f"{out_bits} signed bits")
        self.rows, self.out_bits = [[int(v) for v in r] for r in rows], out_bits
        o_shape = TokenShape(height=shape.height, width=shape.width, channels=shape.channels,
                             lanes=shape.lanes, data_width=out_bits, signed=True)
        super().__init__(shape, o_shape)

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        s = self.i_shape
        beats = s.beats_per_site if len(self.rows) > 1 else 1
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
        beat = Signal(range(max(beats, 2)))
        if beats > 1:  # the beat of the site being taken: which channels the lanes hold
            with m.If(take):
                with m.If(i.payload.eof | (beat == beats - 1)):
                    m.d.sync += beat.eq(0)
                with m.Else():
                    m.d.sync += beat.eq(beat + 1)
        for k in range(s.lanes):
            init = [v for b in range(beats)
                    for v in self.rows[b * s.lanes + k if len(self.rows) > 1 else 0]]
            m.submodules[f"rom{k}"] = rom = Memory(shape=signed(self.out_bits),
                                                   depth=len(init), init=init)
            rd = rom.read_port(domain="sync")
            addr = i.payload.data[k].as_unsigned()
            m.d.comb += [rd.addr.eq(Cat(addr, beat) if beats > 1 else addr), rd.en.eq(take),
                         o.payload.data[k].eq(rd.data)]
        return m
