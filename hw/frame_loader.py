"""Frame loader of the board top: the host's bytes (:mod:`hw.protocol`) in, the network's input
token stream out.

A record starts with a flags byte: bit 0 set is an end-of-frame record (one ``eof`` beat out);
otherwise ``y`` and ``x`` follow (:func:`hw.protocol.coord_bytes` bytes each, little endian),
then the site's ``C_in`` activations, one byte each, which leave as ``C_in / lanes`` beats of
``lanes`` values (the byte's low ``data_width`` bits). One byte is taken per cycle and one beat
leaves per cycle, so the loader is never slower than the UART in front of it.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .protocol import FLAG_EOF, coord_bytes
from .stream import TokenShape

__all__ = ["FrameLoader"]


class FrameLoader(wiring.Component):
    """Bytes in, tokens of ``shape`` out.

    Parameters
    ----------
    shape : TokenShape
        The network's input stream.

    Attributes
    ----------
    i : In(stream.Signature(8))
    o : Out(stream.Signature(shape.layout()))
    """

    def __init__(self, *, shape: TokenShape):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        self.shape = shape
        self.layout = shape.layout()
        super().__init__({"i": In(stream.Signature(8)),
                          "o": Out(stream.Signature(self.layout))})

    def elaborate(self, platform):
        m = Module()
        s = self.shape
        ny = coord_bytes(len(self.o.payload.y))
        nx = coord_bytes(len(self.o.payload.x))
        lanes, nb = s.lanes, s.beats_per_site
        y = Signal(8 * ny)
        x = Signal(8 * nx)
        data = Array(Signal(8, name=f"lane{k}") for k in range(lanes))
        count = Signal(range(max(ny, nx, lanes, 2)))
        beat = Signal(range(max(nb, 2)))
        op = self.o.payload
        m.d.comb += [op.y.eq(y), op.x.eq(x)]
        for k in range(lanes):
            m.d.comb += op.data[k].eq(data[k][:s.data_width])
        byte = self.i.payload
        take = self.i.valid & self.i.ready
        with m.FSM():
            with m.State("FLAGS"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(take):
                    m.d.sync += count.eq(0)
                    with m.If(byte & FLAG_EOF):
                        m.next = "EOF"
                    with m.Else():
                        m.next = "Y"
            with m.State("EOF"):
                m.d.comb += [self.o.valid.eq(1), op.eof.eq(1), op.y.eq(0), op.x.eq(0)]
                for k in range(lanes):
                    m.d.comb += op.data[k].eq(0)
                with m.If(self.o.ready):
                    m.next = "FLAGS"
            with m.State("Y"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(take):
                    m.d.sync += y.eq((y >> 8) | (byte << (8 * ny - 8)))
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == ny - 1):
                        m.d.sync += count.eq(0)
                        m.next = "X"
            with m.State("X"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(take):
                    m.d.sync += x.eq((x >> 8) | (byte << (8 * nx - 8)))
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == nx - 1):
                        m.d.sync += [count.eq(0), beat.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(take):
                    m.d.sync += [data[count].eq(byte), count.eq(count + 1)]
                    with m.If(count == lanes - 1):
                        m.d.sync += count.eq(0)
                        m.next = "BEAT"
            with m.State("BEAT"):
                m.d.comb += self.o.valid.eq(1)
                with m.If(self.o.ready):
                    with m.If(beat == nb - 1):
                        m.next = "FLAGS"
                    with m.Else():
                        m.d.sync += beat.eq(beat + 1)
                        m.next = "DATA"
        return m
