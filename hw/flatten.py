"""Flatten a token stream into one site: the input of a dense head over a whole map.

The ``H x W`` map of ``C`` channels leaves as one site at ``(0, 0)`` of ``H * W * C`` channels, in
site-major order (site ``(y, x)``'s channels at ``((y * W + x) * C) ..``, the stream's own order):
beats pass through with their coordinates cleared. A site that is absent from the frame (a sparse
map, or an empty frame) leaves as ``C / lanes`` zero beats in its place, so the output is always
the flattened zero-filled map and the next layer sees ``H * W * C`` values per frame. A counter of
the next expected site and beat decides, each cycle, between passing the input beat (it is that
site), a zero beat (the input is a later site or the end of frame) and the end of frame (every site
has left). Combinational: one beat per cycle, ``H * W * C / lanes + 1`` cycles per frame
(:func:`cycles_per_frame`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal

from contract.cycles import flatten_cycles as cycles_per_frame

from .stream import TokenBlock, TokenShape

__all__ = ["Flatten", "cycles_per_frame"]


class Flatten(TokenBlock):
    """Flatten an ``H x W`` token stream into a single ``(0, 0)`` site (zero-filled).

    Parameters
    ----------
    shape : TokenShape
        Input stream.

    Attributes
    ----------
    i : In(stream.Signature(shape.layout()))
    o : Out(stream.Signature(o_shape.layout()))
        ``o_shape``: 1 x 1 sites of ``H * W * C`` channels at the input's lanes and width.
    """

    def __init__(self, *, shape):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        self.o_shape = TokenShape(height=1, width=1,
                                  channels=shape.height * shape.width * shape.channels,
                                  lanes=shape.lanes, data_width=shape.data_width,
                                  signed=shape.signed)
        super().__init__(shape, self.o_shape)

    def cycles_per_frame(self) -> float:
        s = self.i_shape
        return cycles_per_frame(height=s.height, width=s.width, channels=s.channels,
                                lanes=s.lanes)

    def elaborate(self, platform):
        m = Module()
        s = self.i_shape
        nb = s.beats_per_site
        # the next expected site as its coordinates (not a raster index): a beat is that site
        # when both compare equal, with no multiply on the path into ``ready`` (a raster index
        # ``y * W + x`` compared with a counter held LeNet-5's flatten at 17.7 ns on ECP5)
        ey = Signal.like(self.i.payload.y, name="ey")
        ex = Signal.like(self.i.payload.x, name="ex")
        beat = Signal(range(max(nb, 2)))
        done = Signal()    # every site has left: the next beat is the end of frame
        p = self.i.payload
        here = (p.y == ey) & (p.x == ex)
        take = Signal()    # the input beat is the expected site's: pass it
        zero = Signal()    # the expected site is absent: emit a zero beat instead
        m.d.comb += [
            take.eq(self.i.valid & ~p.eof & ~done & here),
            zero.eq(self.i.valid & ~done & (p.eof | ~here)),
        ]
        m.d.comb += [
            self.o.valid.eq(take | zero | (self.i.valid & p.eof & done)),
            self.o.payload.eof.eq(p.eof & done),
            self.i.ready.eq(self.o.ready & ~zero),
        ]
        with m.If(take):
            m.d.comb += self.o.payload.data.eq(p.data)
        advance = Signal()
        m.d.comb += advance.eq(self.o.ready & (take | zero))
        with m.If(advance):
            with m.If(beat == nb - 1):
                m.d.sync += beat.eq(0)
                with m.If(ex == s.width - 1):
                    m.d.sync += ex.eq(0)
                    with m.If(ey == s.height - 1):
                        m.d.sync += [ey.eq(0), done.eq(1)]
                    with m.Else():
                        m.d.sync += ey.eq(ey + 1)
                with m.Else():
                    m.d.sync += ex.eq(ex + 1)
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        with m.If(self.o.ready & self.i.valid & p.eof & done):
            m.d.sync += [ey.eq(0), ex.eq(0), beat.eq(0), done.eq(0)]
        return m
