"""Crop a token stream's border: the sites a zero-padded ("valid") k x k conv does not produce.

Input sites ``p = k // 2`` or more away from every border leave with coordinates ``(y - p,
x - p)``; the others are taken and dropped, one cycle per beat; ``eof`` passes. Combinational:
``active_in * C / lanes + 1`` cycles per frame (:func:`cycles_per_frame`).
"""

from __future__ import annotations

from amaranth.hdl import Module

from contract.cycles import crop_cycles as cycles_per_frame

from .stream import TokenBlock, TokenShape

__all__ = ["Crop", "cycles_per_frame"]


class Crop(TokenBlock):
    """Drop the outer ``kernel // 2`` rows and columns of a token stream.

    Parameters
    ----------
    shape : TokenShape
        Input stream, larger than ``2 * (kernel // 2)`` each way.
    kernel : int
        The zero-padded conv's kernel (odd, >= 3).
    """

    def __init__(self, *, shape, kernel):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        p = kernel // 2
        if kernel < 3 or kernel % 2 == 0 or shape.height <= 2 * p or shape.width <= 2 * p:
            raise ValueError(f"cannot crop a {shape.height}x{shape.width} map for a "
                             f"{kernel}x{kernel} conv")
        self.kernel = kernel
        self.o_shape = TokenShape(height=shape.height - 2 * p, width=shape.width - 2 * p,
                                  channels=shape.channels, lanes=shape.lanes,
                                  data_width=shape.data_width, signed=shape.signed)
        super().__init__(shape, self.o_shape)

    def elaborate(self, platform):
        m = Module()
        p = self.kernel // 2
        s = self.i_shape
        ip, op = self.i.payload, self.o.payload
        inside = (ip.y >= p) & (ip.y < s.height - p) & (ip.x >= p) & (ip.x < s.width - p)
        keep = ip.eof | inside
        m.d.comb += [
            self.o.valid.eq(self.i.valid & keep),
            self.i.ready.eq(self.o.ready | ~keep),
            op.data.eq(ip.data),
            op.eof.eq(ip.eof),
        ]
        with m.If(~ip.eof):
            m.d.comb += [op.y.eq(ip.y - p), op.x.eq(ip.x - p)]
        return m
