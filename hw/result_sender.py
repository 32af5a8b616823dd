"""Result sender of the board top: the network's output token stream in, the host's bytes
(:mod:`hw.protocol`) out.

Each beat is taken into a register as soon as the previous one has been sent, then sent byte by
byte: the first beat of a site is preceded by its record header (flags, ``y``, ``x``), then every
lane's value follows in :func:`hw.protocol.value_bytes` bytes, little endian, sign extended; an
``eof`` beat is one flags byte with bit 0 set. ``lost`` (the receiver's sticky flag: a byte was
lost) is copied into bit 1 of every flags byte.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .protocol import FLAG_EOF, FLAG_LOST, coord_bytes, value_bytes
from .stream import TokenShape

__all__ = ["ResultSender"]


class ResultSender(wiring.Component):
    """Tokens of ``shape`` in, bytes out.

    Parameters
    ----------
    shape : TokenShape
        The network's output stream.

    Attributes
    ----------
    i : In(stream.Signature(shape.layout()))
    o : Out(stream.Signature(8))
    lost : In(1)
    """

    def __init__(self, *, shape: TokenShape):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        self.shape = shape
        self.layout = shape.layout()
        super().__init__({"i": In(stream.Signature(self.layout)),
                          "o": Out(stream.Signature(8)), "lost": In(1)})

    def elaborate(self, platform):
        m = Module()
        s = self.shape
        cur = Signal(self.layout)
        ny = coord_bytes(len(cur.y))
        nx = coord_bytes(len(cur.x))
        nv = value_bytes(s.data_width)
        nb = s.beats_per_site
        flags = Cat(cur.eof, self.lost, Const(0, 6))
        ext_y = Cat(cur.y, Const(0, 8 * ny - len(cur.y)))
        ext_x = Cat(cur.x, Const(0, 8 * nx - len(cur.x)))
        seq = [flags]
        seq += [ext_y[8 * k:8 * k + 8] for k in range(ny)]
        seq += [ext_x[8 * k:8 * k + 8] for k in range(nx)]
        header = len(seq)
        for lane in range(s.lanes):
            v = Value.cast(cur.data[lane])
            fill = v[-1] if s.signed else Const(0, 1)
            ext = Cat(v, fill.replicate(8 * nv - len(v)))
            seq += [ext[8 * k:8 * k + 8] for k in range(nv)]
        seq_a = Array(seq)
        idx = Signal(range(len(seq) + 1))
        last = Signal.like(idx)
        beat = Signal(range(max(nb, 2)))
        m.d.comb += self.o.payload.eq(seq_a[idx])
        with m.FSM():
            with m.State("TAKE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += cur.eq(self.i.payload)
                    with m.If(self.i.payload.eof):
                        m.d.sync += [idx.eq(0), last.eq(0), beat.eq(0)]
                    with m.Else():
                        m.d.sync += [idx.eq(Mux(beat == 0, 0, header)), last.eq(len(seq) - 1),
                                     beat.eq(Mux(beat == nb - 1, 0, beat + 1))]
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += self.o.valid.eq(1)
                with m.If(self.o.ready):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx == last):
                        m.next = "TAKE"
        assert FLAG_EOF == 1 and FLAG_LOST == 2  # the bit positions of `flags` above
        return m
