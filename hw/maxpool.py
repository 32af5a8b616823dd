"""2x2 max pooling, stride 2, of a sparse token stream (``MaxPool2d(2)``, floor mode).

Output site ``(yo, xo)`` of the ``H//2 x W//2`` map is active iff an active input site
``(y, x)`` has ``y // 2 == yo`` and ``x // 2 == xo`` (the last row / column of an odd map is
dropped); its value, per channel, is the maximum over the active sites of its window only, as
MinkowskiEngine's and spconv's sparse max pool (an absent site is not a 0). On a dense map this is
``torch.nn.functional.max_pool2d(x, 2)``. Values pass through at their width: max commutes with
the monotone requantizer, so none is needed.

A row buffer of ``W//2 * B`` words (``B = channels / lanes`` beats per site, one word per beat)
holds the running maximum of the current output row, and a ``W//2``-bit bitmap the columns that
have one. An input beat updates its word by read-modify-write in two stages after it is accepted
(one registers its word address, values and whether it opens the window; the next reads the word
through an asynchronous port into a register; the one after combines and writes it back), so the
second site of a window may follow the first on the next cycle (it takes the first's result
instead of the read); the flush reads through a second port into a register before the output
register, both taking the row's updates still in flight. Raster order means an output row
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
#: ``eof``: the flush's read register and the output register.
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
        rd = mem.read_port(domain="comb")      # the update's read, at stage A's word
        rd_out = mem.read_port(domain="comb")  # the flush's read
        wr = mem.write_port()

        bitmap = Signal(wo)
        row = Signal(coord_bits(ho))
        beat = Signal(range(max(nb, 2)))
        # the flush's column (the bitmap's lowest) and its read address are registers, kept
        # current as the bitmap changes: the bitmap's priority encoder and the address arithmetic
        # do not sit in front of the row buffer's read (the 8-lane pools' worst path)
        col = Signal(range(max(wo, 2)))
        raddr = Signal(range(max(wo * nb, 2)))

        def lowest(bits):
            k_ = Signal(range(max(wo, 2)))
            for k in reversed(range(wo)):
                with m.If(bits[k]):
                    m.d.comb += k_.eq(k)
            return k_

        def lane(word, i):
            v = word[i * sw:(i + 1) * sw]
            return v.as_signed() if self.shape.signed else v

        # The update of the row buffer in two stages after its beat is accepted: the accepted
        # beat's word address, values and whether it opens its window are registered (stage A);
        # the next cycle reads that word into a register (stage B), and the one after combines
        # and writes it back. So no path runs from the input's coordinates to the memory's read
        # address (83 MHz alone on ECP5), nor from the asynchronous read through the compare or
        # add into the write data (88-114 MHz). A beat of the word that stage B is writing (the
        # window's second site on the next cycle, one beat a site) takes stage B's result
        # instead of the read. ``gen`` counts flushed rows (mod 2): an update belongs to the row
        # flushed while ``gen`` is still its value.
        gen = Signal()
        a_en = Signal()
        a_addr = Signal(range(max(wo * nb, 2)))
        a_fresh = Signal()
        a_gen = Signal()
        a_x = [Signal.like(ip.data[i], name=f"a_x{i}") for i in range(lanes)]
        b_en = Signal()
        b_addr = Signal.like(a_addr)
        b_fresh = Signal()
        b_x = [Signal.like(ip.data[i], name=f"b_x{i}") for i in range(lanes)]
        b_kept = Signal(lanes * sw)
        new = Cat(*[self._combine(b_fresh, b_x[i], lane(b_kept, i), sw)[:sw]
                    for i in range(lanes)])
        m.d.comb += [rd.addr.eq(a_addr), wr.addr.eq(b_addr), wr.data.eq(new), wr.en.eq(b_en)]
        m.d.sync += [a_en.eq(0), b_en.eq(a_en), b_addr.eq(a_addr), b_fresh.eq(a_fresh),
                     *[b_x[i].eq(a_x[i]) for i in range(lanes)],
                     b_kept.eq(Mux(b_en & (b_addr == a_addr), new, rd.data))]

        yo, xo = ip.y >> 1, ip.x >> 1
        kept = (ip.y < 2 * ho) & (ip.x < 2 * wo)
        # stage A loads every cycle (``a_en``: whether it holds an accepted beat), so the
        # input's handshake drives no enable of its values. The bitmap bit is set after a site's
        # last beat: until then every beat of the window's first site finds it clear and
        # overwrites its stale word
        m.d.sync += [a_addr.eq(xo * nb + beat), a_gen.eq(gen),
                     a_fresh.eq(~bitmap.bit_select(xo, 1)),
                     *[a_x[i].eq(ip.data[i]) for i in range(lanes)]]
        flush = Signal()
        m.d.comb += [
            flush.eq(self.i.valid & bitmap.any() & (ip.eof | (kept & (yo != row)))),
            rd_out.addr.eq(raddr),
        ]
        # The flushed words pass a register (``f``) before the output register. A flush starts
        # at the earliest on the cycle after a row's last beat is accepted, so up to two of the
        # row's updates are still in flight: stage B's is written in the cycle of the flush's
        # read (the read takes its result instead), stage A's in the next (the register ``f``
        # takes it, whether it moves on to the output or holds). The next row's updates (another
        # ``gen``) never touch ``f``.
        adv = Signal()   # the output register takes ``f``
        f_free = Signal()
        f_valid = Signal()
        f_eof = Signal()
        f_y = Signal.like(op.y)
        f_x = Signal.like(op.x)
        f_addr = Signal.like(a_addr)
        f_gen = Signal()
        f_word = Signal(lanes * sw)
        f_hit = Signal()            # stage B writes ``f``'s word of its row this cycle
        f_now = Signal(lanes * sw)  # ``f``'s word with stage B's write of this cycle
        m.d.comb += [
            adv.eq(~self.o.valid | self.o.ready),
            f_free.eq(~f_valid | adv),
            f_now.eq(Mux(f_hit, new, f_word)),
        ]
        with m.If(adv):
            m.d.sync += [self.o.valid.eq(f_valid), op.y.eq(f_y), op.x.eq(f_x), op.eof.eq(f_eof)]
            m.d.sync += [op.data[i].eq(Mux(f_eof, 0, self._output(lane(f_now, i))))
                         for i in range(lanes)]
        # ``f`` loads whenever it is free (what it holds counts only with ``f_valid``), so the
        # flush decision drives a few registers, not an enable of every bit of the word
        # stage B's result goes into ``f`` through one multiplexer: at a load in place of the
        # read, while ``f`` holds in place of its word
        take_new = Mux(f_free, b_en & (b_addr == raddr), f_hit)
        m.d.sync += f_word.eq(Mux(take_new, new, Mux(f_free, rd_out.data, f_word)))
        # whether stage B will write ``f``'s word, a cycle ahead (stage A against what ``f``
        # will hold), so the word's multiplexers are selected by a register. (``f`` loads a
        # flushed word only while its row flushes, so the ``gen`` compare matters only while it
        # holds, when stage A may hold the next row's beats.)
        m.d.sync += f_hit.eq(a_en & Mux(f_free, (a_gen == gen) & (a_addr == raddr),
                                        (a_gen == f_gen) & (a_addr == f_addr)))
        with m.If(f_free):
            m.d.sync += [
                f_valid.eq(self.i.valid & (flush | ip.eof)), f_eof.eq(~flush),
                f_y.eq(Mux(flush, row, 0)), f_x.eq(Mux(flush, col, 0)),
                f_addr.eq(raddr), f_gen.eq(gen),
            ]

        last_beat = beat == nb - 1
        with m.If(flush):
            with m.If(f_free):
                m.d.sync += beat.eq(Mux(last_beat, 0, beat + 1))
                with m.If(last_beat):
                    rest = bitmap & (bitmap - 1)
                    nxt = lowest(rest)
                    m.d.sync += [bitmap.eq(rest), col.eq(nxt), raddr.eq(nxt * nb)]
                    with m.If(rest == 0):
                        m.d.sync += gen.eq(~gen)
                with m.Else():
                    m.d.sync += raddr.eq(raddr + 1)
        with m.Elif(ip.eof):
            m.d.comb += self.i.ready.eq(f_free)
        with m.Else():
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.sync += beat.eq(Mux(last_beat, 0, beat + 1))
                with m.If(kept):
                    m.d.sync += [a_en.eq(1), row.eq(yo)]
                    with m.If(last_beat):
                        m.d.sync += bitmap.bit_select(xo, 1).eq(1)
                        # raster order: a site of the window row's second input row can open a
                        # column left of the first row's lowest
                        with m.If(~bitmap.any() | (xo < col)):
                            m.d.sync += [col.eq(xo), raddr.eq(xo * nb)]
        return m
