"""Nearest-neighbour upsampling by 2 of a token stream (dense or sparse maps).

Input site ``(y, x)`` leaves as ``(2y, 2x)`` and ``(2y, 2x + 1)`` in output row ``2y`` and again
as both in row ``2y + 1``. The block passes each input beat straight on as ``(2y, 2x)`` and writes
it into a row buffer (``W * B`` words of the beat and its site's column); after a site's last beat
it replays the site from the buffer as ``(2y, 2x + 1)``; when the next input token is of another
row (or the end of frame) it replays the whole row twice a site as row ``2y + 1``, taking no input
meanwhile, then goes on. The buffer is read through a register (a synchronous read port: block
RAM where the family's rule puts it) and the output is that register's: one beat a cycle, a
cycle lost per input row (the row's end is seen on the next token):
:func:`contract.cycles.upsample_cycles`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib.memory import Memory

from contract.cycles import upsample_cycles as cycles_per_frame

from .stream import TokenBlock, TokenShape, coord_bits

__all__ = ["Upsample2x", "cycles_per_frame"]


class Upsample2x(TokenBlock):
    """Upsample a token stream by 2 (nearest).

    Parameters
    ----------
    shape : TokenShape
        Input stream; the output is ``2H x 2W``, same channels, lanes and width.
    """

    def __init__(self, *, shape):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        o_shape = TokenShape(height=2 * shape.height, width=2 * shape.width,
                             channels=shape.channels, lanes=shape.lanes,
                             data_width=shape.data_width, signed=shape.signed)
        super().__init__(shape, o_shape)

    def elaborate(self, platform):
        m = Module()
        s = self.i_shape
        nb, w = s.beats_per_site, s.width
        dbits = s.lanes * s.data_width
        xb = coord_bits(w)
        ip, op = self.i.payload, self.o.payload
        m.submodules.row = row = Memory(shape=unsigned(dbits + xb), depth=w * nb, init=[])
        wr, rd = row.write_port(), row.read_port(domain="sync")

        n = Signal(range(w + 1))        # sites of the current input row in the buffer
        b = Signal(range(max(nb, 2)))   # beat within a site
        k = Signal(range(max(w, 2)))    # site being replayed
        c = Signal()                    # the replayed copy: column 2x + c
        y_cur = Signal.like(ip.y)
        # the buffer's addresses as counters (no multiply before the memory): the next word
        # written, the first word of the site being written, and the next word read
        depth = w * nb
        waddr = Signal(range(max(depth, 2)))
        base = Signal(range(max(depth, 2)))
        raddr = Signal(range(max(depth, 2)))

        # the output register: valid, row, column, eof; the data from the input beat (`live`)
        # or from the buffer's read register
        o_valid, o_live, o_eof, o_c = Signal(), Signal(), Signal(), Signal()
        o_y = Signal.like(op.y)
        o_x = Signal.like(ip.x)         # the input column of a live beat
        o_data = Signal(dbits)
        adv = Signal()
        m.d.comb += adv.eq(~o_valid | self.o.ready)
        word_x = rd.data[dbits:]
        m.d.comb += [
            self.o.valid.eq(o_valid),
            op.y.eq(o_y),
            op.x.eq(Mux(o_live, Cat(0, o_x), Cat(o_c, word_x))),
            op.eof.eq(o_eof),
            op.data.as_value().eq(Mux(o_live, o_data, rd.data[:dbits])),
            rd.en.eq(adv), rd.addr.eq(raddr),
            wr.addr.eq(waddr), wr.data.eq(Cat(ip.data.as_value(), ip.x)),
        ]
        with m.If(adv):
            m.d.sync += o_valid.eq(0)

        def emit_live():
            m.d.sync += [o_valid.eq(1), o_live.eq(1), o_eof.eq(ip.eof),
                         o_y.eq(Mux(ip.eof, 0, Cat(0, ip.y))), o_x.eq(ip.x),
                         o_data.eq(ip.data.as_value())]

        def emit_replay(y_out, copy):
            m.d.sync += [o_valid.eq(1), o_live.eq(0), o_eof.eq(0), o_y.eq(y_out), o_c.eq(copy)]

        new_row = (n != 0) & (ip.eof | (ip.y != y_cur))
        with m.FSM():
            with m.State("PASS"):
                m.d.comb += self.i.ready.eq(adv & ~new_row)
                with m.If(adv & self.i.valid):
                    with m.If(new_row):
                        m.d.sync += [k.eq(0), c.eq(0), b.eq(0), raddr.eq(0)]
                        m.next = "ODD"
                    with m.Else():
                        emit_live()
                        with m.If(~ip.eof):
                            m.d.comb += wr.en.eq(1)
                            m.d.sync += [y_cur.eq(ip.y), waddr.eq(waddr + 1)]
                            with m.If(b == 0):
                                m.d.sync += base.eq(waddr)
                            with m.If(b == nb - 1):
                                # the site again from its first word
                                m.d.sync += [b.eq(0), n.eq(n + 1),
                                             raddr.eq(waddr if nb == 1 else base)]
                                m.next = "DUP"
                            with m.Else():
                                m.d.sync += b.eq(b + 1)
            with m.State("DUP"):
                # the site just taken again, from the buffer, as column 2x + 1
                with m.If(adv):
                    emit_replay(Cat(0, y_cur), 1)
                    m.d.sync += raddr.eq(raddr + 1)
                    with m.If(b == nb - 1):
                        m.d.sync += b.eq(0)
                        m.next = "PASS"
                    with m.Else():
                        m.d.sync += b.eq(b + 1)
            with m.State("ODD"):
                # the row again as row 2y + 1: every site twice
                with m.If(adv):
                    emit_replay(Cat(1, y_cur), c)
                    # copy 0 of a site rewinds to its first word for copy 1
                    m.d.sync += raddr.eq(Mux(~c & (b == nb - 1), raddr - (nb - 1), raddr + 1))
                    with m.If(b == nb - 1):
                        m.d.sync += [b.eq(0), c.eq(~c)]
                        with m.If(c & (k == n - 1)):
                            m.d.sync += [n.eq(0), k.eq(0), waddr.eq(0)]
                            m.next = "PASS"
                        with m.Elif(c):
                            m.d.sync += k.eq(k + 1)
                    with m.Else():
                        m.d.sync += b.eq(b + 1)
        return m
