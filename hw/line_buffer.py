"""k x k window generator (line buffer) for submanifold stride-1 and sparse stride-2 convolutions.

Written here for the 3x3 case; a ``kernel`` ``(kh, kw)`` of odd sizes up to 11 (5x5, 7x7, or
rectangular, such as the 11x5 a DS-CNN stem's 10x4 kernel becomes) generalises it: taps
``t = kw*dy + dx`` at ``(s*oy - kh//2 + dy, s*ox - kw//2 + dx)``, ``kh`` window rows, a ``kh x kw``
receptive field in the stride-2 rule, a row ready once row ``centre + kh//2`` is complete, and
enough column banks for ``kw`` columns (:func:`contract.constants.window_banks`).

Input: a token stream (docs/CONTRACT.md) of ``B = channels / lanes`` beats per active site and one
end-of-frame beat. Output: one *window beat* per (output site, channel beat ``b``), in output raster
order then ``b``, carrying the 3x3 neighbourhood of the centre input site ``(s*oy, s*ox)``: 9 taps
(tap ``t = 3*dy + dx`` is input site ``(s*oy - 1 + dy, s*ox - 1 + dx)``) of ``lanes`` values each,
a 9-bit tap-valid mask (absent neighbours, and positions outside the map, read as zero), and ``eof``
on one final beat per frame.

Output sites: stride 1, every active input site (submanifold); stride 2, ``(oy, ox)`` iff an input
site in rows ``2oy-1 .. 2oy+1`` and columns ``2ox-1 .. 2ox+1`` is active.

Architecture: ``N`` row slots (``slots``, default 8), each a W-bit validity bitmap plus 4 column
banks (column ``x`` in bank ``x % 4``) of feature memory, so the 9 taps of a window are 9 distinct
(slot, bank) memories read in one cycle. A writer stores incoming rows while an emitter walks an
earlier row: it may emit output row ``e`` (centre row ``c = stride * e``) once every input row it
touches is complete (a token of a later row, or end of frame, has arrived), and the writer may
start relative row ``r`` only when that does not overwrite a row the emitter still needs
(``r <= c + N - 2``). Rows are numbered relative to the emitter's frame, so the writer may run on
into the next frame (its row ``y`` is relative row ``H + y``) while the emitter finishes the last
rows of the current one; slots carry the frame parity and a flag that they hold a row the emitter
may still read (cleared as it moves past the row or its frame ends; with fewer slots than the
rows it reads plus its stride, the row number as well). The emitter steps over the
active columns of a row with a priority encoder, so empty columns cost nothing and rows one cycle
each.

Pipelining (for the clock, ``docs/IMPLEMENT.md``): each input token enters a register with what
the writer decides from the stream alone (its beat, whether it starts a site or a row, its column
bit and slot); the writer registers each taken beat and writes it a cycle later; the emitter
decides from registers computed a cycle ahead (whether its row and the next are ready and have a
site, whether its frame is finished, whether a site is the row's last); its step passes three
output stages: its read addresses, the memories' words, then each window row's slot chosen per
bank, and the tap's bank and mask at the output (:data:`contract.constants.WINDOW_STAGES`
counts five with the entry register and the registered decisions). The stages add latency (two
cycles on a lone frame for the entry and the decisions), not cycles per frame back to back.

Cycles per frame, frames back to back, never stalled (``B`` beats per site, ``n_in`` input and
``n_out`` output sites, ``G`` cycles the consumer spends per window beat: 1 for the depthwise conv,
``C_out / pe`` for the full conv), measured from one end-of-frame output beat to the next
(:func:`contract.cycles.window_cycles`)::

    B * n_out + 3 + 2 * E             if G == 1 and n_out >= n_in   (emitter-bound)
    B * max(n_in, G * n_out) + 1      otherwise

where ``E = H_out * (1 - n_out / (H_out * W_out)) ** W_out`` is the expected number of empty output
rows of a uniformly random map (0 for a dense one). The emitter moves from one output row to the
next without a bubble when the next row is ready and has sites, and spends about two cycles per
empty row; that shows only when it is the bottleneck and its consumer takes a beat per cycle
(``G == 1``); otherwise the writer's ``B`` cycles per input site or the consumer's ``G * B`` per
output site set the pace. Measured on the RTL with the default 8 slots: exact on dense maps (8x8,
16x16, 7x9, 5x7, both strides, ``G`` = 1, 2, 4, 8), within 5 cycles on 60x80 maps at 20 %
(1011 vs 1009 estimated), within 4 % on 30x40 at 5 %. With 4 slots the writer cannot absorb the
row-to-row imbalance of sparse maps: up to 25 % slower there, and on dense maps at stride 1 it
waits a cycle per row for the emitter's step in its address stage (8x8: 137 cycles against 131,
16x16: 529 against 515; exact at stride 2 and with 8 slots).
Every frame, lone or not, lies within :func:`contract.cycles.window_cycle_bounds`::

    B * G * n_out + 1  <=  cycles  <=  B * (n_in + G * n_out) + H_out + 4

(a lone frame also waits for its first two input rows and the consumer's pipeline).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from contract.constants import LINE_BUFFER_SLOTS, line_buffer_ram, window_banks
from contract.cycles import window_output_size
from models.reference import window_sites

from .stream import TokenShape, coord_bits

__all__ = [
    "LineBuffer",
    "DEFAULT_SLOTS",
    "window_layout",
    "output_sites",
]

#: Row slots of the line buffer (:data:`contract.constants.LINE_BUFFER_SLOTS`).
DEFAULT_SLOTS = LINE_BUFFER_SLOTS






def window_layout(*, y_bits: int, x_bits: int, lanes: int, width: int,
                  beats: int, kernel=3) -> data.StructLayout:
    """Payload of a window beat: ``y``, ``x``, ``taps`` (kh*kw x lanes), ``mask``, ``beat``,
    ``eof``."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    taps = kh * kw
    return data.StructLayout({
        "y": unsigned(y_bits),
        "x": unsigned(x_bits),
        "taps": data.ArrayLayout(data.ArrayLayout(signed(width), lanes), taps),
        "mask": unsigned(taps),
        "beat": unsigned(coord_bits(beats)),
        "eof": unsigned(1),
    })


def _check_int(name, value, lo=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise TypeError(f"{name} must be an integer >= {lo}, not {value!r}")


def _at_most_one(bits, lo: int, hi: int):
    """``(any, at_most_one)`` of ``bits[lo:hi]`` as a balanced tree: no carry chain, where
    ``bits & (bits - 1) == 0`` has one as long as the row."""
    if hi - lo == 1:
        return bits[lo], Const(1, 1)
    mid = (lo + hi) // 2
    any_lo, one_lo = _at_most_one(bits, lo, mid)
    any_hi, one_hi = _at_most_one(bits, mid, hi)
    return any_lo | any_hi, one_lo & one_hi & ~(any_lo & any_hi)


def _lowest_set(bits, lo: int, hi: int):
    """``(any, index)`` of the lowest set bit of ``bits[lo:hi]``, as a balanced tree (log depth)."""
    if hi - lo == 1:
        return bits[lo], Const(lo, coord_bits(hi))
    mid = (lo + hi) // 2
    any_lo, idx_lo = _lowest_set(bits, lo, mid)
    any_hi, idx_hi = _lowest_set(bits, mid, hi)
    return any_lo | any_hi, Mux(any_lo, idx_lo, idx_hi)


class LineBuffer(wiring.Component):
    """3x3 window generator over a token stream, stride 1 (submanifold) or 2 (sparse).

    Parameters
    ----------
    shape : TokenShape
        Input stream geometry (``height``, ``width``, ``channels``, ``lanes``, ``data_width``).
    stride : int
        1 or 2.
    slots : int
        Row slots: 4, 8 (default) or 16 (see :data:`DEFAULT_SLOTS`); at least ``kernel + 1``.
    kernel : int or (int, int)
        Window size ``k`` or ``(kh, kw)``: odd, 3 (default) to 11.

    Attributes
    ----------
    i : In(stream.Signature(shape.layout()))
        Input tokens.
    o : Out(stream.Signature(out_layout))
        Window beats, see :func:`window_layout`; ``y``/``x`` are output coordinates.
    out_layout : data.StructLayout
    out_height, out_width : int
    beats : int
        Beats per site (``channels / lanes``).
    """

    def __init__(self, *, shape: TokenShape, stride: int, slots: int = DEFAULT_SLOTS,
                 kernel: int = 3):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, not {stride!r}")
        if slots not in (4, 8, 16):
            raise ValueError(f"slots must be 4, 8 or 16, not {slots!r}")
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        self.banks = window_banks(kw)
        window_banks(kh)  # validates the height too
        if slots < kh + 1:
            raise ValueError(f"a {kh}x{kw} window needs at least {kh + 1} row slots, not {slots}")
        self.kernel = (kh, kw)
        self.slots = slots
        self.shape = shape
        self.stride = stride
        self.beats = shape.beats_per_site
        self.out_height, self.out_width = window_output_size(shape.height, shape.width, stride)
        self.in_layout = shape.layout()
        self.out_layout = window_layout(
            y_bits=coord_bits(self.out_height), x_bits=coord_bits(self.out_width),
            lanes=shape.lanes, width=shape.data_width, beats=self.beats, kernel=self.kernel)
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        H, W = self.shape.height, self.shape.width
        B, s = self.beats, self.stride
        N = self.slots
        sbits = N.bit_length() - 1
        Ho, Wo = self.out_height, self.out_width
        lanes, dw = self.shape.lanes, self.shape.data_width
        kh, kw = self.kernel
        ry, rx = kh // 2, kw // 2
        banks = self.banks
        kbits = banks.bit_length() - 1
        word = lanes * dw
        bbits = (B - 1).bit_length()
        cols_per_bank = -(-W // banks)
        depth = cols_per_bank << bbits
        rbits = max(coord_bits(H) + 3, sbits + 2)  # rows -r .. 2H+r, comparisons need headroom

        wports, rports = {}, {}
        bram = line_buffer_ram(word, depth) == "bram"
        attrs = {"ram_style": "block"} if bram else None
        for sl in range(N):
            for bk in range(banks):
                mem = Memory(shape=unsigned(word), depth=depth, init=[], attrs=attrs)
                m.submodules[f"row{sl}_bank{bk}"] = mem
                wports[sl, bk] = mem.write_port()
                # A block RAM registers its read data itself. A memory left to synthesis (LUT
                # RAM on ECP5) is read asynchronously and its word registered here (stage 1,
                # `rdata`): a synchronous read port there becomes an address register before
                # the LUT RAM, so the read and the window rows' choice after it would share a
                # cycle. Both read the memory as it was before a write at the same edge.
                rports[sl, bk] = mem.read_port() if bram else mem.read_port(domain="comb")

        # Per slot: whether it holds a row of the emitter's window (`tag_ok`), the frame parity
        # of its row and its validity bitmap. A slot's row leaves the window when the emitter
        # moves past it (it is cleared then) or its frame ends (cleared by parity). When every
        # row the emitter may read, ``cy - ry .. cy + s + ry``, has a slot of its own
        # (``retire``: N > s + 2 ry), a slot whose flag is set holds exactly the row the emitter
        # expects there, and no row tag is compared: the compare (the slot's tag chosen by the
        # slot register, against the row register) sat on the emitter's worst path on ECP5,
        # into the row registers' enables. With fewer slots, a slot may still hold a row the
        # emitter needs while it asks for the row N later, and the row tag decides.
        retire = N > s + 2 * ry
        tag = None if retire else Array(Signal(signed(rbits), name=f"tag{k}") for k in range(N))
        tag_par = Array(Signal(name=f"tag_par{k}") for k in range(N))
        tag_ok = [Signal(name=f"tag_ok{k}") for k in range(N)]
        tag_ok_a = Array(tag_ok)
        bitmap = Array(Signal(W, name=f"bitmap{k}") for k in range(N))

        # The writer may run one frame ahead of the emitter (`ahead`: it has taken the end of
        # the emitter's frame). Rows are placed relative to the emitter's frame: a row y of the
        # next frame sits at relative row H + y, in slot (slot_base + H + y) % N.
        e_row = Signal(signed(rbits))  # emitter's current output row
        par_e = Signal()                # emitter's frame parity
        slot_base = Signal(sbits)       # slot of the emitter frame's row 0
        ahead = Signal()                # the emitter's frame is complete; writer on the next
        e_started = Signal()            # the emitter's frame has a site ...
        e_last = Signal(signed(rbits))  # ... and this is its last row
        cy = Signal(signed(rbits))
        m.d.comb += cy.eq(e_row if s == 1 else e_row << 1)
        # Timing: every row the emitter compares with or reads from, ``cy + o`` for a constant
        # ``o``, and its slot ``(slot_base + cy + o) % N`` are registers that move with e_row
        # (+s per output row, reloaded at the end of a frame), so no adder sits between e_row
        # and the row tags, bitmaps and the writer's limit.
        offsets = sorted({o for dy in range(kh) for o in (dy - ry, s + dy - ry, 2 * s + dy - ry)}
                         | {ry + 1, s + ry + 1, 2 * s + ry + 1, N - 1 - ry, N - 1 - ry - H})

        def _oname(o):
            return f"m{-o}" if o < 0 else f"p{o}"
        cyo = {o: Signal(signed(rbits), init=o, name=f"cy_{_oname(o)}") for o in offsets}
        slo = {o: Signal(sbits, init=o % N, name=f"slot_{_oname(o)}") for o in offsets}
        # ... and whether row ``cy + o`` is inside the frame (0 <= row < H), kept the same way
        rok = {o: Signal(init=int(0 <= o < H), name=f"rok_{_oname(o)}") for o in offsets}
        moving = Signal()  # the emitter leaves its row this cycle (rows cy - ry .. leave)
        switching = Signal()  # the emitter's frame ends this cycle (the next one's row 0 next)

        def next_row():
            """The emitter moves to its next output row (inside the caller's condition)."""
            m.d.sync += e_row.eq(e_row + 1)
            for o in offsets:
                m.d.sync += [cyo[o].eq(cyo[o] + s), slo[o].eq(slo[o] + s),
                             rok[o].eq((cyo[o] >= -s) & (cyo[o] < H - s))]

        def next_frame():
            """The emitter's frame ends: row 0 of the next one, whose row 0 is H slots on."""
            m.d.sync += [e_row.eq(0), slot_base.eq(slot_base + H)]
            for o in offsets:
                m.d.sync += [cyo[o].eq(o), slo[o].eq((slot_base + (H + o) % N)[:sbits]),
                             rok[o].eq(int(0 <= o < H))]

        # ---- writer -----------------------------------------------------------------------
        # The entry stage: each input token is registered with what the writer decides from it
        # that depends on the token stream alone (its beat, whether it starts a site or a row,
        # its column bit, its slot: row 0 of its frame's slot moves on H at each end of frame),
        # so that the writer's decisions and the enables they drive start at registers (the
        # input row through the new-row compare, the limit compare and the slot decode into the
        # bitmaps' enables was a worst path on ECP5). One cycle of latency, no bubble.
        ip = self.i.payload
        t_valid, t_eof, t_first, t_new = Signal(), Signal(), Signal(), Signal()
        t_y, t_x = Signal.like(ip.y), Signal.like(ip.x)
        t_b = Signal(range(max(B, 2)))
        t_data = Signal(word, reset_less=True)
        t_xbit = Signal(W)
        t_slot = Signal(sbits)
        t_sel = Signal(N)                  # t_slot, one-hot
        n_b = Signal(range(max(B, 2)))     # the beat of the next token to enter
        n_fresh = Signal(init=1)           # no site since the last end of frame
        n_prev_y = Signal.like(ip.y)       # the row of the last site to enter
        n_base = Signal(sbits)             # the slot of row 0 of the entering token's frame
        take = Signal()                    # the writer takes the token in the entry stage
        t_ready = Signal()
        m.d.comb += [t_ready.eq(~t_valid | take), self.i.ready.eq(t_ready)]
        n_slot = Signal(sbits)
        m.d.comb += n_slot.eq(n_base + ip.y)
        with m.If(t_ready):
            m.d.sync += [
                t_valid.eq(self.i.valid), t_y.eq(ip.y), t_x.eq(ip.x), t_eof.eq(ip.eof),
                t_data.eq(ip.data.as_value()), t_b.eq(n_b), t_first.eq(n_b == 0),
                t_new.eq((n_b == 0) & (n_fresh | (ip.y != n_prev_y))),
                t_xbit.eq(Const(1, W) << ip.x), t_slot.eq(n_slot),
                t_sel.eq(Const(1, N) << n_slot),
            ]
            with m.If(self.i.valid):
                with m.If(ip.eof):
                    m.d.sync += [n_fresh.eq(1), n_base.eq(n_base + H), n_b.eq(0)]
                with m.Else():
                    m.d.sync += [n_fresh.eq(0), n_prev_y.eq(ip.y),
                                 n_b.eq(Mux(n_b == B - 1, 0, n_b + 1))]

        started = Signal()
        cur_row = Signal(signed(rbits))
        iy = Cat(t_y, Const(0, rbits - len(t_y))).as_signed()
        # relative row q overwrites q - N, which the emitter no longer needs once q - N < cy - ry
        # and its issued step (stage a, below) has read the memories: the limit is cy + N - 1 - ry
        # of that step while stage a holds it (`sa_hold`, registers only: whether the step moves
        # on this cycle depends on the consumer's `ready` through every stage, a chain that put
        # the writer's enables at 53 MHz in a network), else of the emitter's row. The token's
        # row is relative to the emitter's frame, H on while the writer is a frame ahead; the
        # limit is kept in the writer's own numbers as well (``lim - H``), so the token's row
        # meets registers in one compare, not an adder and a compare.
        sa_hold, sa_lim = Signal(), Signal(signed(rbits))
        sa_lim_h, lim, lim_h = Signal(signed(rbits)), cyo[N - 1 - ry], cyo[N - 1 - ry - H]
        may_write = ~t_new | Mux(sa_hold, Mux(ahead, iy <= sa_lim_h, iy <= sa_lim),
                                 Mux(ahead, iy <= lim_h, iy <= lim))
        m.d.comb += take.eq(t_valid & Mux(t_eof, ~ahead, may_write))

        # The write stage: a taken beat's word, address, slot and bank are registered and written
        # a cycle later, so the memories' write enables decode registers (before, the input's
        # valid, the writer's limit compare and the slot decode ran into every memory's enable in
        # one cycle: 12-14 ns of routing on ECP5). A row still counts complete when a token of a
        # later row (or eof) is offered, at least a cycle after its last beat was taken; the
        # emitter's first read of it samples the memory a cycle after that, after the write.
        waddr = Cat(t_b[:bbits], t_x[kbits:]) if bbits else t_x[kbits:]
        w_en = Signal()
        w_slot, w_bank = Signal(sbits), Signal(kbits)
        w_addr = Signal(len(waddr), reset_less=True)
        w_data = Signal(word, reset_less=True)
        m.d.sync += [w_en.eq(take & ~t_eof), w_slot.eq(t_slot),
                     w_bank.eq(t_x[:kbits]), w_addr.eq(waddr), w_data.eq(t_data)]
        for (sl, bk), wp in wports.items():
            m.d.comb += [
                wp.addr.eq(w_addr),
                wp.data.eq(w_data),
                wp.en.eq(w_en & (w_slot == sl) & (w_bank == bk)),
            ]

        take_row = Signal()
        with m.If(take):
            with m.If(t_eof):
                m.d.sync += [ahead.eq(1), e_started.eq(started), e_last.eq(cur_row),
                             started.eq(0)]
            with m.Else():
                with m.If(t_new):
                    m.d.comb += take_row.eq(1)
                    m.d.sync += [started.eq(1), cur_row.eq(iy)]
                    for k in range(N):
                        with m.If(t_sel[k]):
                            m.d.sync += [tag_par[k].eq(par_e ^ ahead), bitmap[k].eq(t_xbit)]
                            if tag is not None:
                                m.d.sync += tag[k].eq(iy)
                with m.Elif(t_first):
                    for k in range(N):
                        with m.If(t_sel[k]):
                            m.d.sync += bitmap[k].eq(bitmap[k] | t_xbit)

        # rows below `frontier` are complete; `all_done` once the frame's eof is here
        all_done = ahead | (t_valid & t_eof)
        offered_site = t_valid & t_first & ~t_eof  # a token starting a site waits in the entry
        pending_row = offered_site & ~ahead
        frontier = Mux(pending_row, iy, cur_row)

        # ---- emitter: stage 0 (address, mask) -> 1 (memory data) -> 2 (rows, output) -----
        def row_bitmap(o):
            """Whether input row ``cy + o`` is in its slot, and its bitmap (0 unless it is)."""
            sl = slo[o]
            ok = rok[o] & tag_ok_a[sl]
            if tag is not None:
                ok = ok & (tag[sl] == cyo[o]) & (tag_par[sl] == par_e)
            return ok, Mux(ok, bitmap[sl], 0)

        def window_rows(centre, tag_):
            """Bitmaps of the kh input rows around ``cy + centre``, the output row's site bitmap
            and whether it has a site. A row in its slot has at least one site (the writer
            starts a row with its first token's bit), so the output row has a site when its
            centre row is in its slot (stride 1) or any of its rows is (stride 2: the windows
            of a kw >= 3 wide kernel cover every column): one bit per row, where an OR over the
            chosen bitmaps' W bits used to sit between the slot registers and the emitter's
            row registers' enables."""
            rows = [Signal(W, name=f"{tag_}_bm{dy}") for dy in range(kh)]
            oks = [Signal(name=f"{tag_}_ok{dy}") for dy in range(kh)]
            for dy in range(kh):
                ok, bm = row_bitmap(centre - ry + dy)
                m.d.comb += [oks[dy].eq(ok), rows[dy].eq(bm)]
            if s == 1:
                return rows, rows[ry], oks[ry]
            union = Signal(W, name=f"{tag_}_union")
            u = rows[0]
            for row in rows[1:]:
                u = u | row
            m.d.comb += union.eq(u)
            sites = Signal(Wo, name=f"{tag_}_sites")
            for ox in range(Wo):
                cols = [c for c in range(2 * ox - rx, 2 * ox + rx + 1) if 0 <= c < W]
                m.d.comb += sites[ox].eq(Cat(*(union[c] for c in cols)).any())
            assert rx >= 1, "stride 2 needs a window at least 3 wide"
            return rows, sites, Cat(*oks).any()

        def ready_for(centre):
            """Input rows up to ``cy + centre + ry`` are complete."""
            return all_done | ((started | pending_row) & (frontier >= cyo[centre + ry + 1]))

        rows_bm, out_bm, out_any = window_rows(0, "win")
        # the next output row, so that the emitter moves on without a bubble
        _, next_bm, next_any = window_rows(s, "next")

        # Timing: the emitter's decisions come from registers (docs/IMPLEMENT.md, stop 57).
        # Whether its row and the next are ready and have a site (`rdy0`, `any0`, `rdys`,
        # `anys`) and whether its frame is finished (`finished`) are computed a cycle ahead for the
        # rows it will be at (the next ones when it moves, the next frame's when it ends this
        # one), so no carry chain or slot choice sits between a register and the hundred-odd
        # enables that a move drives. `finished` is exact. The readiness sees the writer as it was a
        # cycle before (rows only complete, so that is the safe side) and the occupancy sees
        # the slots' flags a cycle before: a row that the writer starts is in its flag a cycle
        # later, and its window is ready, at the earliest, a cycle after a token of a later row
        # (or the end of the frame) has been offered, so a ready window's flags are current.
        # A flag clears when the emitter moves past its row (never a row of the window it moves
        # to) or as its frame ends (the next frame's rows, of the other parity, stay). With 4
        # slots (not a DSE choice) the decisions stay as they were: the writer is then at most
        # two rows ahead, so the emitter would wait out the cycle's lag on every row (8x8 at
        # stride 1: 140 cycles a frame against 137), and without `retire` the row tags decide.
        def row_ok(o):
            return rok[o] & tag_ok_a[slo[o]]

        def window_any(centre, ok=row_ok):
            if s == 1:
                return ok(centre)
            return Cat(*(ok(centre - ry + dy) for dy in range(kh))).any()

        def new_ok(o):
            """Whether row ``o`` of the next frame is in its slot, as the emitter's frame ends."""
            if not 0 <= o < H:
                return Const(0, 1)
            sl = (slot_base + (H + o) % N)[:sbits]
            return tag_ok_a[sl] & (tag_par[sl] != par_e)

        front_n = Mux(offered_site, iy, cur_row)

        def ready_new(centre):
            """Rows up to ``centre + ry`` of the writer's frame are complete (the emitter's
            next frame, as it ends this one)."""
            return (t_valid & t_eof) | ((started | offered_site) & (front_n >= centre + ry + 1))

        if retire and N >= 8:
            rdy0, rdys, any0, anys = (Signal(name=n_) for n_ in ("rdy0", "rdys", "any0", "anys"))
            m.d.sync += [
                rdy0.eq(Mux(switching, ready_new(0), Mux(moving, ready_for(s), ready_for(0)))),
                rdys.eq(Mux(switching, ready_new(s),
                            Mux(moving, ready_for(2 * s), ready_for(s)))),
                any0.eq(Mux(switching, window_any(0, new_ok),
                            Mux(moving, window_any(s), window_any(0)))),
                anys.eq(Mux(switching, window_any(s, new_ok),
                            Mux(moving, window_any(2 * s), window_any(s)))),
            ]
            next_go = (e_row + 1 < Ho) & rdys & anys
            row_ready = rdy0
        else:
            next_go = (e_row + 1 < Ho) & ready_for(s) & next_any
            row_ready, any0 = ready_for(0), out_any

        # finished: ahead & (~e_started | the emitter past the frame's last row), next state
        eof_take = take & t_eof
        if s == 1:
            past_e = Mux(moving, e_row >= e_last, e_row > e_last)
            past_c = Mux(moving, e_row >= cur_row, e_row > cur_row)
        else:  # cy - ry > e_last; cy - ry is cyo[-ry], cyo[s - ry] after a move
            past_e = Mux(moving, cyo[s - ry] > e_last, cyo[-ry] > e_last)
            past_c = Mux(moving, cyo[s - ry] > cur_row, cyo[-ry] > cur_row)
        fin_next = (ahead | eof_take) & (
            ~Mux(eof_take, started, e_started) | Mux(eof_take, past_c, past_e)
            | (e_row >= Ho) | (moving & (e_row >= Ho - 1)))
        finished = Signal()
        m.d.sync += finished.eq(~switching & fin_next)

        remaining = Signal(Wo)
        one_left = Signal()  # `remaining` has at most one bit set (the row's last site)

        def load_remaining(v):
            m.d.sync += [remaining.eq(v), one_left.eq(_at_most_one(v, 0, Wo)[1])]
        b_out = Signal(range(max(B, 2)))
        ox = Signal(coord_bits(Wo))
        m.d.comb += ox.eq(_lowest_set(remaining, 0, Wo)[1])
        cx = Signal(signed(coord_bits(W) + 2))
        m.d.comb += cx.eq(ox if s == 1 else ox << 1)

        # Stage a holds an issued step's read addresses, row slots and banks (the emitter's
        # priority encoder and column arithmetic end here, not at every memory's address); stage
        # 1 the memories' words; stage 2 each window row's slot chosen per bank. Each stage moves
        # on when the next one does or it is empty, so a stage adds latency, never a bubble.
        def stage(tag_):
            return {"valid": Signal(name=f"{tag_}_valid"),
                    "y": Signal(coord_bits(Ho), name=f"{tag_}_y"),
                    "x": Signal(coord_bits(Wo), name=f"{tag_}_x"),
                    "mask": Signal(kh * kw, name=f"{tag_}_mask"),
                    "beat": Signal(coord_bits(B), name=f"{tag_}_beat"),
                    "eof": Signal(name=f"{tag_}_eof"),
                    "slot": [Signal(sbits, name=f"{tag_}_slot{dy}") for dy in range(kh)],
                    "bank": [Signal(kbits, name=f"{tag_}_bank{dx}") for dx in range(kw)]}
        sa, s1 = stage("sa"), stage("s1")
        s2_valid = Signal()
        advance2 = ~s2_valid | self.o.ready
        advance1 = ~s1["valid"] | advance2
        advance = ~sa["valid"] | advance1      # the emitter issues a step
        issue = Signal()
        issue_eof = Signal()

        # tap-valid mask of the window at (cy, cx)
        mask = Signal(kh * kw)
        for dy in range(kh):
            for dx in range(kw):
                c = cx - rx + dx
                ok = (c >= 0) & (c < W)
                bit = rows_bm[dy].bit_select(c[:coord_bits(W)], 1)
                m.d.comb += mask[kw * dy + dx].eq(ok & bit)

        # read addresses: bank j holds the window column c with c % banks == j
        cw = (cols_per_bank - 1).bit_length()
        sa_addr = []
        for bk in range(banks):
            d = Signal(kbits, name=f"dcol{bk}")
            m.d.comb += d.eq(bk - (cx - rx))
            col = Signal(signed(coord_bits(W) + kbits), name=f"col{bk}")
            m.d.comb += col.eq(cx - rx + d)
            a = Cat(b_out[:bbits], col[kbits:kbits + cw]) if bbits \
                else col[kbits:kbits + max(cw, 0)]
            # one copy per slot's memory where the memories are LUT RAM, read asynchronously:
            # one register drove the address of the N memories of its bank, spread over the
            # part (the sparse blocks' worst path once the emitter's decisions were registers,
            # 1.3 ns of logic and 8-9 ns of routing on ECP5). Each copy has its own initial
            # value (meaningless: stage a is empty after reset), so that synthesis does not
            # merge the copies back into one.
            copies = []
            for sl in range(1 if bram else N):
                reg = Signal(len(a), name=f"sa_addr{bk}_{sl}", reset_less=True,
                             init=sl % (1 << len(a)))
                with m.If(advance & issue):
                    m.d.sync += reg.eq(a)
                copies.append(reg)
            sa_addr.append(copies)
        rdata = {}
        for (sl, bk), rp in rports.items():
            m.d.comb += rp.addr.eq(sa_addr[bk][0 if bram else sl])
            if bram:
                m.d.comb += rp.en.eq(advance1)
                rdata[sl, bk] = rp.data
            else:
                rdata[sl, bk] = Signal(word, name=f"s1_word{sl}_{bk}", reset_less=True)
                with m.If(advance1):
                    m.d.sync += rdata[sl, bk].eq(rp.data)

        m.d.comb += sa_hold.eq(sa["valid"] & ~sa["eof"])
        with m.If(advance):
            m.d.sync += sa["valid"].eq(issue | issue_eof)
            with m.If(issue):
                m.d.sync += [sa_lim.eq(lim), sa_lim_h.eq(lim_h)]
                m.d.sync += [
                    sa["y"].eq(e_row), sa["x"].eq(ox), sa["mask"].eq(mask),
                    sa["beat"].eq(b_out), sa["eof"].eq(0),
                ]
                for dy in range(kh):
                    m.d.sync += sa["slot"][dy].eq(slo[dy - ry])
                for dx in range(kw):
                    m.d.sync += sa["bank"][dx].eq((cx - rx + dx)[:kbits])
            with m.If(issue_eof):
                m.d.sync += [sa["y"].eq(0), sa["x"].eq(0), sa["mask"].eq(0), sa["beat"].eq(0),
                             sa["eof"].eq(1)]
        with m.If(advance1):
            for k_ in ("valid", "y", "x", "mask", "beat", "eof"):
                m.d.sync += s1[k_].eq(sa[k_])
            for k_ in ("slot", "bank"):
                m.d.sync += [d_.eq(s_) for d_, s_ in zip(s1[k_], sa[k_], strict=True)]
        s1_valid, s1_y, s1_x, s1_mask = s1["valid"], s1["y"], s1["x"], s1["mask"]
        s1_beat, s1_eof, s1_slot, s1_bank = s1["beat"], s1["eof"], s1["slot"], s1["bank"]

        # Stage 2: the N x banks memories' words are chosen in two steps with a register between
        # (a single N * banks : 1 choice per tap, spread over every memory, was the block's
        # worst path on ECP5: 11-13 ns of routing): here each window row's slot, per bank ...
        s2_y, s2_x = Signal.like(s1_y), Signal.like(s1_x)
        s2_mask, s2_beat, s2_eof = Signal.like(s1_mask), Signal.like(s1_beat), Signal()
        s2_bank = [Signal(kbits, name=f"s2_bank{dx}") for dx in range(kw)]
        rows_w = [[Signal(word, name=f"s2_row{dy}_bank{bk}", reset_less=True)
                   for bk in range(banks)] for dy in range(kh)]
        with m.If(advance2):
            m.d.sync += [s2_valid.eq(s1_valid), s2_y.eq(s1_y), s2_x.eq(s1_x),
                         s2_mask.eq(s1_mask), s2_beat.eq(s1_beat), s2_eof.eq(s1_eof)]
            m.d.sync += [s2_bank[dx].eq(s1_bank[dx]) for dx in range(kw)]
            for dy in range(kh):
                for bk in range(banks):
                    by_slot = Array(rdata[sl, bk] for sl in range(N))
                    m.d.sync += rows_w[dy][bk].eq(by_slot[s1_slot[dy]])
        # ... then, at the output, each tap's bank and its mask
        op = self.o.payload
        m.d.comb += [
            self.o.valid.eq(s2_valid),
            op.y.eq(s2_y), op.x.eq(s2_x), op.mask.eq(s2_mask), op.beat.eq(s2_beat),
            op.eof.eq(s2_eof),
        ]
        for dy in range(kh):
            by_bank = Array(rows_w[dy])
            for dx in range(kw):
                t = kw * dy + dx
                m.d.comb += op.taps[t].as_value().eq(Mux(s2_mask[t], by_bank[s2_bank[dx]], 0))

        with m.FSM() as fsm:
            with m.State("ROW"):
                with m.If(finished):
                    m.next = "EOF"
                with m.Elif((e_row < Ho) & row_ready):
                    with m.If(any0):
                        load_remaining(out_bm)
                        m.d.sync += b_out.eq(0)
                        m.next = "SITES"
                    with m.Else():
                        next_row()
            with m.State("SITES"):
                with m.If(advance):
                    with m.If(b_out == B - 1):
                        m.d.sync += b_out.eq(0)
                        load_remaining(remaining & (remaining - 1))
                        with m.If(one_left):
                            next_row()
                            with m.If(next_go):
                                load_remaining(next_bm)
                            with m.Else():
                                m.next = "ROW"
                    with m.Else():
                        m.d.sync += b_out.eq(b_out + 1)
            with m.State("EOF"):
                with m.If(advance):
                    next_frame()
                    m.d.sync += [ahead.eq(0), par_e.eq(~par_e)]
                    m.next = "ROW"

        # `moving`, `switching`, `issue` and `issue_eof` as expressions of registers (the FSM's
        # conditions above), not set inside its states: a signal set inside a process is
        # undefined at time 0 in an event-driven simulator (Icarus) until an input of its
        # process changes. `finished`, chosen by `switching`, then stayed undefined and the
        # depthwise stride-1 block hung on Icarus' Python path; an undefined `issue` sent a
        # window beat in an empty frame at stride 2 (the slow stride-2 block test, failing on
        # Icarus before this change; Verilator, two-state, never showed either)
        m.d.comb += [
            moving.eq((fsm.ongoing("ROW") & ~finished & (e_row < Ho) & row_ready & ~any0)
                      | (fsm.ongoing("SITES") & advance & (b_out == B - 1) & one_left)),
            switching.eq(fsm.ongoing("EOF") & advance),
            issue.eq(fsm.ongoing("SITES") & advance),
            issue_eof.eq(fsm.ongoing("EOF") & advance),
        ]

        # a slot turns valid when the writer starts a row in it; the emitter's frame's rows
        # turn invalid as that frame ends (the writer's rows, of the other parity, stay) and,
        # with `retire`, each as the emitter moves past it (the writer cannot start the row N
        # later in that slot in the same cycle: its limit is still cy + N - 1 - ry)
        for k in range(N):
            gone = issue_eof & (tag_par[k] == par_e)
            if retire:
                gone = gone | (moving & Cat(*(slo[j - ry] == k for j in range(s))).any())
            with m.If(take_row & t_sel[k]):
                m.d.sync += tag_ok[k].eq(1)
            with m.Elif(gone):
                m.d.sync += tag_ok[k].eq(0)
        return m


def output_sites(coords, *, height: int, width: int, stride: int,
                 kernel=3) -> list[tuple[int, int]]:
    """Active output sites ``[(y, x), ...]`` in raster order (:func:`models.reference.window_sites`
    as a list)."""
    sites = window_sites(sorted({(int(y), int(x)) for y, x in coords}), height=height,
                         width=width, kernel=kernel, stride=stride)
    return [(int(y), int(x)) for y, x in sites.tolist()]
