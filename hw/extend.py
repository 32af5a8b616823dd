"""Sign extension of a token stream's lanes: the edge from a narrower stream into a join.

A join (residual add, concat) takes both inputs at one lane width, its widest input's
(:meth:`models.ops.base.Op.out_bits`); the composer puts this block on the narrower input's edge.
Wiring only: no register, no cycle, no handshake of its own.
"""

from __future__ import annotations

from amaranth.hdl import Module

from .stream import TokenBlock, TokenShape

__all__ = ["SignExtend"]


class SignExtend(TokenBlock):
    """Widen the signed lanes of ``shape`` to ``data_width`` bits (same values).

    Parameters
    ----------
    shape : TokenShape
        Input stream (signed lanes).
    data_width : int
        Output lane bits, at least ``shape.data_width``.
    """

    def __init__(self, *, shape, data_width):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        if not shape.signed:
            raise ValueError("SignExtend takes signed lanes")
        if not isinstance(data_width, int) or data_width < shape.data_width:
            raise ValueError(f"data_width must be an integer >= {shape.data_width}, "
                             f"not {data_width!r}")
        o_shape = TokenShape(height=shape.height, width=shape.width, channels=shape.channels,
                             lanes=shape.lanes, data_width=data_width, signed=True)
        super().__init__(shape, o_shape)

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        m.d.comb += [
            o.valid.eq(i.valid), i.ready.eq(o.ready),
            o.payload.y.eq(i.payload.y), o.payload.x.eq(i.payload.x),
            o.payload.eof.eq(i.payload.eof),
        ]
        for k in range(self.i_shape.lanes):
            m.d.comb += o.payload.data[k].eq(i.payload.data[k])  # signed: extends the sign
        return m
