"""Global max pooling over the active sites: each channel's maximum, 0 for an empty frame.

The beats of a site stream through a ring of ``C / lanes`` words of running maxima (the current
beat's always at the head, as the average pool's sums: no per-beat decoders); a frame's first site
loads the ring, later ones take the lane-wise maximum. At the end-of-frame beat the ring leaves as
one token at (0, 0) in ``lanes``-channel beats, one a cycle, then ``eof``: ``sites * B + B + 2``
cycles per frame (:func:`contract.cycles.gmp_cycles`), the input held while the ring leaves. The
output keeps the input's scale and width.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal

from contract.cycles import gmp_cycles as cycles_per_frame

from .stream import TokenBlock, TokenShape

__all__ = ["GlobalMaxPool", "cycles_per_frame"]


class GlobalMaxPool(TokenBlock):
    """Global max pooling of a token stream (one token at (0, 0), then ``eof``).

    Parameters
    ----------
    shape : TokenShape
        Input stream (signed lanes of ``data_width`` bits).
    """

    def __init__(self, *, shape):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        o_shape = TokenShape(height=1, width=1, channels=shape.channels, lanes=shape.lanes,
                             data_width=shape.data_width)
        super().__init__(shape, o_shape)

    def elaborate(self, platform):
        m = Module()
        s = self.i_shape
        lanes, nb, w = s.lanes, s.beats_per_site, s.data_width
        ring = [Signal(lanes * w, name=f"max{k}") for k in range(nb)]

        def rotate(head):
            return [ring[k].eq(ring[k + 1]) for k in range(nb - 1)] + [ring[nb - 1].eq(head)]
        beat = Signal(range(max(nb, 2)))
        seen = Signal()   # a site of this frame has been taken: the ring holds maxima
        first = Signal()  # the beat in flight is of the frame's first site
        m.d.comb += first.eq(~seen)
        ip, op = self.i.payload, self.o.payload
        new = Cat(*[Mux(first | (ip.data[i] > ring[0].word_select(i, w).as_signed()),
                        ip.data[i].as_unsigned(), ring[0].word_select(i, w))
                    for i in range(lanes)])
        for i in range(lanes):
            m.d.comb += op.data[i].eq(Mux(seen, ring[0].word_select(i, w), 0))
        with m.FSM() as fsm:
            with m.State("ACC"):
                with m.If(self.i.valid):
                    with m.If(ip.eof):
                        m.d.sync += beat.eq(0)
                        m.next = "EMIT"
                    with m.Else():
                        m.d.sync += rotate(new)
                        with m.If(beat == nb - 1):
                            m.d.sync += [beat.eq(0), seen.eq(1)]
                        with m.Else():
                            m.d.sync += beat.eq(beat + 1)
            with m.State("EMIT"):
                with m.If(self.o.ready):
                    m.d.sync += rotate(ring[0])
                    with m.If(beat == nb - 1):
                        m.d.sync += beat.eq(0)
                        m.next = "EOF"
                    with m.Else():
                        m.d.sync += beat.eq(beat + 1)
            with m.State("EOF"):
                with m.If(self.o.ready):
                    m.d.sync += seen.eq(0)
                    m.next = "ACC"
        m.d.comb += [
            self.i.ready.eq(fsm.ongoing("ACC")),
            self.o.valid.eq(fsm.ongoing("EMIT") | fsm.ongoing("EOF")),
            op.eof.eq(fsm.ongoing("EOF")),
        ]
        return m
