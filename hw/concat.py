"""Channel concatenation of two token streams with identical sites.

Per site, the ``Ca / lanes`` beats of ``a`` leave first, then the ``Cb / lanes`` beats of ``b``,
as one site of ``Ca + Cb`` channels (channel order: ``a``'s, then ``b``'s, as ``torch.cat`` on
dim 1). Both inputs carry the same sites in the same order at the same lanes (the composer
converts widths where they differ); coordinates come from ``a``. At the end of frame both ``eof``
beats are taken and one leaves. Combinational: one beat per cycle, ``sites * (Ca + Cb) / lanes +
1`` cycles per frame (:func:`cycles_per_frame`). Both inputs are on one scale (the front ends
give the concatenated tensors a shared quantizer), so values pass unchanged.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from contract.cycles import concat_cycles as cycles_per_frame

from .stream import TokenShape

__all__ = ["Concat", "cycles_per_frame"]


class Concat(wiring.Component):
    """``torch.cat([a, b], 1)`` of two token streams.

    Parameters
    ----------
    shape : TokenShape
        Stream ``a`` (its channels ``Ca`` and ``lanes``).
    channels_b : int
        Channels of stream ``b`` (a multiple of ``lanes``); ``b`` otherwise has ``a``'s shape.

    Attributes
    ----------
    a, b : In(stream.Signature(...))
    o : Out(stream.Signature(o_shape.layout()))
        ``Ca + Cb`` channels at ``lanes``.
    """

    def __init__(self, *, shape, channels_b):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        if not isinstance(channels_b, int) or channels_b < 1 or channels_b % shape.lanes:
            raise ValueError(f"channels_b must be a positive multiple of {shape.lanes} lanes, "
                             f"not {channels_b!r}")
        self.i_shape = shape
        self.b_shape = TokenShape(height=shape.height, width=shape.width, channels=channels_b,
                                  lanes=shape.lanes, data_width=shape.data_width,
                                  signed=shape.signed)
        self.o_shape = TokenShape(height=shape.height, width=shape.width,
                                  channels=shape.channels + channels_b, lanes=shape.lanes,
                                  data_width=shape.data_width, signed=shape.signed)
        super().__init__({
            "a": In(stream.Signature(shape.layout())),
            "b": In(stream.Signature(self.b_shape.layout())),
            "o": Out(stream.Signature(self.o_shape.layout())),
        })

    def elaborate(self, platform):
        m = Module()
        na, nb = self.i_shape.beats_per_site, self.b_shape.beats_per_site
        beat = Signal(range(na + nb))
        on_b = beat >= na
        a, b, o = self.a, self.b, self.o
        eof = a.payload.eof
        with m.If(on_b):
            m.d.comb += [o.valid.eq(b.valid), o.payload.data.eq(b.payload.data),
                         o.payload.y.eq(b.payload.y), o.payload.x.eq(b.payload.x),
                         b.ready.eq(o.ready)]
            with m.If(b.valid & o.ready):
                with m.If(beat == na + nb - 1):
                    m.d.sync += beat.eq(0)
                with m.Else():
                    m.d.sync += beat.eq(beat + 1)
        with m.Elif(a.valid & eof):
            # the end of frame: both eofs, one out
            m.d.comb += [o.valid.eq(b.valid), o.payload.eof.eq(1),
                         a.ready.eq(o.ready & b.valid), b.ready.eq(o.ready & a.valid)]
        with m.Else():
            m.d.comb += [o.valid.eq(a.valid), o.payload.data.eq(a.payload.data),
                         o.payload.y.eq(a.payload.y), o.payload.x.eq(a.payload.x),
                         a.ready.eq(o.ready)]
            with m.If(a.valid & o.ready):
                m.d.sync += beat.eq(beat + 1)
        return m
