"""2x2 max pooling, stride 2, of a sparse token stream (``MaxPool2d(2)``, floor mode).

Output site ``(yo, xo)`` of the ``H//2 x W//2`` map is active iff an active input site
``(y, x)`` has ``y // 2 == yo`` and ``x // 2 == xo`` (the last row / column of an odd map is
dropped); its value, per channel, is the maximum over the active sites of its window only, as
MinkowskiEngine's and spconv's sparse max pool (an absent site is not a 0). On a dense map this is
``torch.nn.functional.max_pool2d(x, 2)``. Values pass through at their width: max commutes with
the monotone requantizer, so none is needed.

A row buffer of ``W//2 * B`` words (``B = channels / lanes`` beats per site, one word per beat)
holds the running maximum of the current output row, and a ``W//2``-bit bitmap the columns that
have one. An input beat updates its word by read-modify-write on the cycle after it is accepted
(from registers: its word address, values and whether it opens the window), through an
asynchronous read port, so the second site of a window may follow the first on the next cycle;
the flush reads through a second port (and, with one beat a site, takes the word of a row's
last site from its update when that is still being written). Raster order means an output row
is complete once a token of a later output row (or the end of frame) is offered: that beat is held
back while the row's columns leave in increasing ``xo`` (a priority encoder over the bitmap, one
beat per cycle), then the bitmap is empty and the beat goes in. Input and flush never overlap, so
the block spends one cycle per input beat, per output beat and on the end of frame
(:func:`cycles_per_frame`), exactly, however sparse the map.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib.memory import Memory

from contract.constants import MAXPOOL_LATENCY
from contract.cycles import maxpool2_cycles as cycles_per_frame

from .stream import TokenBlock, TokenShape, coord_bits

__all__ = ["MaxPool2x2", "LATENCY", "cycles_per_frame"]

#: Cycles from the offer of the input beat that completes an output row (a token of a later output
#: row, or ``eof``) to that row's first output beat, and from an accepted ``eof`` to the output
#: ``eof``: the output register.
LATENCY = MAXPOOL_LATENCY


class MaxPool2x2(TokenBlock):
    """2x2 / stride 2 max pooling of a token stream over its active sites.

    Parameters
    ----------
    shape : TokenShape
        Input stream; ``height`` and ``width`` at least 2.

    Attributes
    ----------
    i : In(stream.Signature(shape.layout()))
    o : Out(stream.Signature(o_shape.layout()))
        ``o_shape`` is ``shape`` with ``height // 2`` x ``width // 2`` sites.
    """

    def __init__(self, *, shape):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        for name in ("height", "width"):
            if getattr(shape, name) < 2:
                raise ValueError(f"shape.{name} must be at least 2, not {getattr(shape, name)!r}")
        self.shape = self.i_shape = shape
        self.o_shape = TokenShape(height=shape.height // 2, width=shape.width // 2,
                                  channels=shape.channels, lanes=shape.lanes,
                                  data_width=shape.data_width, signed=shape.signed)
        super().__init__(shape, self.o_shape)

    # -- what the pool keeps per column and lane (a subclass, hw.avgpool, keeps sums) ----------
    def _store_width(self, dw: int) -> int:
        return dw

    def _combine(self, fresh, x, kept, width):
        """The running value after input ``x`` (``fresh``: the window's first site)."""
        return Mux(fresh | (x > kept), x, kept)

    def _output(self, kept):
        return kept

    def elaborate(self, platform):
        m = Module()
        lanes, dw, nb = self.shape.lanes, self.shape.data_width, self.shape.beats_per_site
        ho, wo = self.o_shape.height, self.o_shape.width
        ip, op = self.i.payload, self.o.payload

        sw = self._store_width(dw)
        m.submodules.rows = mem = Memory(shape=unsigned(lanes * sw), depth=wo * nb, init=[])
        rd = mem.read_port(domain="comb")      # the update's read, at the registered beat's word
        rd_out = mem.read_port(domain="comb")  # the flush's read
        wr = mem.write_port()

        bitmap = Signal(wo)
        row = Signal(coord_bits(ho))
        beat = Signal(range(max(nb, 2)))
        col = Signal(range(max(wo, 2)))
        for k in reversed(range(wo)):
            with m.If(bitmap[k]):
                m.d.comb += col.eq(k)

        def lane(word, i):
            v = word[i * sw:(i + 1) * sw]
            return v.as_signed() if self.shape.signed else v

        # The update of the row buffer a cycle after its beat is accepted: the accepted beat's
        # word address, values and whether it opens its window are registered, and the next cycle
        # reads that word, combines and writes it back. So the input's coordinates reach only
        # registers, not the memory's read address (the read-modify-write of an unregistered
        # address was the block's critical path: 83 MHz alone on ECP5). A beat of the same word
        # on the next cycle (one beat a site) reads after the write.
        upd = Signal()
        upd_addr = Signal(range(max(wo * nb, 2)))
        upd_fresh = Signal()
        upd_x = [Signal.like(ip.data[i], name=f"upd_x{i}") for i in range(lanes)]
        new = Cat(*[self._combine(upd_fresh, upd_x[i], lane(rd.data, i), sw)[:sw]
                    for i in range(lanes)])
        m.d.comb += [rd.addr.eq(upd_addr), wr.addr.eq(upd_addr), wr.data.eq(new), wr.en.eq(upd)]
        m.d.sync += upd.eq(0)

        yo, xo = ip.y >> 1, ip.x >> 1
        kept = (ip.y < 2 * ho) & (ip.x < 2 * wo)
        flush = Signal()
        out_free = Signal()
        m.d.comb += [
            flush.eq(self.i.valid & bitmap.any() & (ip.eof | (kept & (yo != row)))),
            out_free.eq(~self.o.valid | self.o.ready),
            rd_out.addr.eq(col * nb + beat),
        ]
        # The flush starts at the earliest on the cycle after a row's last beat, whose update is
        # then being written: its first word is (lowest column, beat 0) and the update's (column
        # of the last site, beat B - 1), the same word only with one beat a site (B = 1) and no
        # column of the row below the last site's. Then (known when the beat is accepted, so a
        # register selects) the flush takes the update's word; with B > 1 it never has to.
        word = rd_out.data
        if nb == 1:
            hit = Signal()
            below = Cat(*[bitmap[k] & (xo > k) for k in range(wo)]).any()
            with m.If(self.i.valid & ~flush & ~ip.eof & kept):
                m.d.sync += hit.eq(~below)
            word = Mux(upd & hit, new, rd_out.data)

        last_beat = beat == nb - 1
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(flush):
            with m.If(out_free):
                m.d.sync += [
                    self.o.valid.eq(1),
                    op.y.eq(row),
                    op.x.eq(col),
                    op.eof.eq(0),
                    beat.eq(Mux(last_beat, 0, beat + 1)),
                ]
                m.d.sync += [op.data[i].eq(self._output(lane(word, i))) for i in range(lanes)]
                with m.If(last_beat):
                    m.d.sync += bitmap.eq(bitmap & (bitmap - 1))
        with m.Elif(ip.eof):
            m.d.comb += self.i.ready.eq(out_free)
            with m.If(self.i.valid & out_free):
                m.d.sync += [self.o.valid.eq(1), op.y.eq(0), op.x.eq(0), op.eof.eq(1)]
                m.d.sync += [op.data[i].eq(0) for i in range(lanes)]
        with m.Else():
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.sync += beat.eq(Mux(last_beat, 0, beat + 1))
                with m.If(kept):
                    # the bitmap bit is set after the site's last beat: until then every beat of
                    # the window's first site finds it clear and overwrites its stale word
                    m.d.sync += [upd.eq(1), upd_addr.eq(xo * nb + beat),
                                 upd_fresh.eq(~bitmap.bit_select(xo, 1)),
                                 *[upd_x[i].eq(ip.data[i]) for i in range(lanes)]]
                    m.d.sync += row.eq(yo)
                    with m.If(last_beat):
                        m.d.sync += bitmap.bit_select(xo, 1).eq(1)
        return m
