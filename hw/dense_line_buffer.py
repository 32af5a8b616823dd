"""Sliding-window generator for DENSE feature maps: :class:`~hw.line_buffer.LineBuffer`'s output at
a fraction of its logic.

What it computes
----------------
Input: a dense frame on a token stream (docs/CONTRACT.md): every site ``(y, x)`` of the
``H x W`` map in raster order, ``B = channels / lanes`` beats each, then one end-of-frame beat.
The block counts ``H * W * B`` data beats per frame and reads neither ``y`` nor ``x`` (the
end-of-frame beat is taken and dropped): a sparse frame is NOT a valid input (use
:class:`~hw.line_buffer.LineBuffer` for those).

Output (:func:`hw.line_buffer.window_layout`): for every output site ``(oy, ox)`` of the
:func:`contract.cycles.window_output_size` map, in raster order, ``B`` window beats (beat
``b = 0 .. B-1``), tap ``t = kw*dy + dx`` being input site
``(s*oy - kh//2 + dy, s*ox - kw//2 + dx)`` ("same" zero padding: a position outside the map reads
zero with mask bit 0), then one end-of-frame beat (``y = x = 0``, taps 0, mask 0, beat 0,
``eof = 1``): exactly what ``LineBuffer`` sends for a dense frame.

With ``margin = p > 0`` (stride 1; a zero-padded "valid" conv, whose crop follows:
:func:`models.ops.crop.folded_margin`) only the sites ``p`` or more away from every border are
sent, with the same coordinates: the border's window beats are never offered, so the MACs after
the block spend no cycles on outputs the crop would drop. The reader still steps over every site
(one cycle per beat of a border site).

Architecture
------------
Row memory: ``N`` row slots, ``N`` the smallest power of two ``>= kh + 1`` (:func:`row_slots`);
each slot is a memory of ``lanes * data_width``-bit words holding one input row (``W * B`` words;
at stride 2 two memories, even and odd columns, so that both new columns of a window are read in
one cycle). The row memories carry ``ram_style`` (``ram``: "lutram" distributed, "bram" block,
"auto" none).

Reader: walks the input positions of the map in raster order, one *step* (``s`` columns, one beat)
per cycle, reading the ``s`` new columns of the ``kh`` window rows of its output row from the row
slots (every slot memory is read at the same address; ``kh`` row multiplexers ``N : 1`` pick the
window rows). The other window columns come from a per-beat *history*: ``B`` words of
``Hc * kh * lanes * data_width`` bits (registers if ``B == 1``, distributed RAM otherwise), read and
rewritten each cycle, shifting the new columns in. ``Hc`` (:func:`history_columns`) is
``kw - stride`` (``kw - 1`` at stride 2 when ``kw // 2`` is even: 5x5, 9x9). Per-cycle read
multiplexing is therefore ``kh`` row selects of ``s`` words, not ``kh * kw`` taps from every memory.

Output stages: stage 1 holds a step while its row-memory reads arrive, stage 2 holds it with the
read data registered straight from the memories (no logic between a block RAM's output and a
register) and its history word; the window, the output and the history write-back are formed in
stage 2. One enable moves both (the pipeline stalls only when the consumer holds an output beat).

Emitter: follows the reader ``L`` steps behind (:func:`lag_steps`: ``kw // 2`` at stride 1,
``kw // 4`` at stride 2), so the window of site ``(oy, ox)`` is complete when the reader reads the
step ``L`` positions later. The steps form one stream over rows: the first ``L`` steps of a row are
read while the last ``L`` sites of the previous row are emitted, whose new columns lie right of
the map (masked). At a frame's end that would make its output wait for the next frame's input,
so there, step by step, the emitter goes on without reads (*drain*) unless the next frame's first
rows are already complete; the next frame then starts with as many steps without output
(*prefill*) as were drained, which run while the consumer holds the end-of-frame beat.

Writer: stores the input rows into the slots with counters (the row, the address in the row),
relative to the reader's frame, so it runs on into the next frame while the reader and emitter
finish the current one. A taken beat is written a cycle later from registers (its word, address
and slot), so the memories' write enables do not wait on the writer's ``ready``; the reader
counts a row complete (``wr_c``) once its last word is written, the writer its own progress
(``wr``) at once. The reader reads a row once input rows up to ``min(c + kh//2, H - 1)``
(``c = s * oy``) are complete; the writer may write a row that replaces one the reader no longer
needs, and the row that only the reader's current output row still needs (``c - kh//2``) word by
word behind the reader's read address: at stride 2 it writes both input rows of the next output
row while the reader reads the current one, with ``kh + 1`` slots.

Cycles per frame
----------------
Frames back to back, never stalled, the consumer taking one window beat per ``G`` cycles (``G = 1``:
always ready) and the end-of-frame beat at once, measured from one output end-of-frame beat to the
next::

    max(B * H * W, G * B * H_out * W_out) + 1 (+ 1)

that is one cycle per output beat, one for the end of frame and one more (the end of frame waits
for both output stages to empty) when the emitter is the bottleneck (stride 1, or stride 2 with
``G * H_out * W_out > H * W``), and one cycle per input beat and one for the end of frame
otherwise: within :func:`contract.cycles.window_cycles` (measured with ``G`` = 1, 2, 4, 8,
kernels 3 to 11x5; at stride 1 with ``G = 1`` the block's ``B * H * W + 2`` against the
formula's ``+ 3``; at stride 2 with ``G * H_out * W_out = H * W``, both sides the bottleneck, it
can be a cycle slower). A frame after a drain (the second frame after an idle start; every frame
at stride 2 when the writer is the bottleneck) also takes up to ``L * B`` prefill cycles, hidden
when the writer is the bottleneck or the consumer holds the
end-of-frame beat (``G > 1``).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from contract.constants import (
    dense_history_columns,
    dense_lag_steps,
    dense_row_slots,
    window_banks,
)
from contract.cycles import window_output_size

from .line_buffer import window_layout
from .stream import TokenShape, coord_bits

__all__ = ["DenseLineBuffer", "RAM_STYLES", "row_slots", "lag_steps", "history_columns"]

#: ``ram`` argument -> ``ram_style`` attribute of the row memories (``None``: Yosys chooses).
RAM_STYLES = {"auto": None, "lutram": "distributed", "bram": "block"}


#: Row slots, emitter lag and history columns: the contract's formulas (the DSE prices the block
#: by them).
row_slots = dense_row_slots
lag_steps = dense_lag_steps
history_columns = dense_history_columns


def _kernel(kernel):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    window_banks(kh)  # validates both sides: odd, 3 .. 11
    window_banks(kw)
    return kh, kw


class DenseLineBuffer(wiring.Component):
    """``kh x kw`` window generator over dense frames, stride 1 or 2.

    Parameters
    ----------
    shape : TokenShape
        Input stream geometry (``height``, ``width``, ``channels``, ``lanes``, ``data_width``).
    stride : int
        1 or 2.
    kernel : int or (int, int)
        Window size ``k`` or ``(kh, kw)``: odd, 3 (default) to 11.
    ram : str
        Row memories: "auto" (default, Yosys chooses), "lutram" (distributed) or "bram" (block).
    margin : int
        Output sites closer than this to a border are not sent (stride 1; default 0: all).

    Attributes
    ----------
    i : In(stream.Signature(shape.layout()))
        Input tokens of dense frames.
    o : Out(stream.Signature(out_layout))
        Window beats, see :func:`hw.line_buffer.window_layout`; ``y``/``x`` are output coordinates.
    out_layout : data.StructLayout
    out_height, out_width : int
    beats : int
        Beats per site (``channels / lanes``).
    kernel : (int, int)
    slots : int
        Row slots (:func:`row_slots`).
    """

    def __init__(self, *, shape: TokenShape, stride: int, kernel=3, ram: str = "auto",
                 margin: int = 0):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, not {stride!r}")
        if ram not in RAM_STYLES:
            raise ValueError(f"ram must be one of {', '.join(RAM_STYLES)}, not {ram!r}")
        self.kernel = _kernel(kernel)
        self.shape = shape
        self.stride = stride
        self.ram = ram
        self.slots = row_slots(self.kernel[0])
        self.beats = shape.beats_per_site
        self.out_height, self.out_width = window_output_size(shape.height, shape.width, stride)
        if not isinstance(margin, int) or margin < 0 or (margin and stride != 1) \
                or 2 * margin >= min(self.out_height, self.out_width):
            raise ValueError(f"margin must be 0, or at stride 1 less than half the "
                             f"{self.out_height}x{self.out_width} output map, not {margin!r}")
        self.margin = margin
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
        Ho, Wo = self.out_height, self.out_width
        kh, kw = self.kernel
        ry, rx = kh // 2, kw // 2
        N = self.slots
        sbits = N.bit_length() - 1
        word = self.shape.lanes * self.shape.data_width
        L = lag_steps(kw, s)
        Hc = history_columns(kw, s)
        F = Ho * Wo           # steps (and output sites) per frame
        RW = Wo * B           # read addresses per row: steps x beats
        # the next frame's first L steps may be read while this frame's last L sites are emitted
        # when they lie in that frame (L < F) and their rows are complete (rows <= need_l)
        combine = 0 < L < F
        need_l = min(s * ((L - 1) // Wo) + ry, H - 1) if L else 0
        style = RAM_STYLES[self.ram]
        # no read whose word a window uses meets a write of that word (the writer writes a row
        # the reader still needs only behind its read address, and the rows outside the map are
        # masked): Yosys needs no read-during-write logic after a block RAM's read
        # (tests/hw/test_dense_line_buffer.py watches every cycle)
        attrs = {"no_rw_check": 1, **({"ram_style": style} if style else {})}

        # ---- row memories: slot k, column parity p ---------------------------------------
        depths = [W * B] if s == 1 else [-(-W // 2) * B, (W // 2) * B]
        wports, rports, rdata = {}, {}, {}
        for k in range(N):
            for p, depth in enumerate(depths):
                if depth == 0:
                    rdata[k, p] = Const(0, word)
                    continue
                mem = Memory(shape=unsigned(word), depth=depth, init=[], attrs=attrs)
                m.submodules[f"row{k}_p{p}"] = mem
                wports[k, p] = mem.write_port()
                rports[k, p] = mem.read_port()
                rdata[k, p] = rports[k, p].data

        # ---- reader state (rows relative to the reader's frame) --------------------------
        rows = H + N + 2
        rr = Signal(range(max(Ho, 2)))                 # reader's output row
        raddr = Signal(range(max(RW, 2)))              # step * B + beat within the row
        lo = Signal(signed(coord_bits(rows) + 2), init=-ry)   # s*rr - ry: its first window row
        need = Signal(range(max(H, 2)), init=min(ry, H - 1))  # last input row it needs
        wlim = Signal(range(rows + 1), init=N)         # the writer may write rows < wlim
        slot0 = Signal(sbits)                          # slot of the reader frame's row 0
        rbase = Signal(sbits, init=(-ry) % N)          # slot of window row 0
        r_next = Signal()                              # the reader is a frame ahead of the emitter

        # ---- writer state ----------------------------------------------------------------
        wr = Signal(range(rows + 1))                   # row being written (rows < wr taken)
        wr_c = Signal(range(rows + 1))                 # rows < wr_c complete in their memory
        wslot = Signal(sbits)
        waddr = Signal(range(max(RW, 2)))
        wb = Signal(range(max(B, 2)))
        wpar = Signal()

        # ---- emitter state ---------------------------------------------------------------
        oy = Signal(range(max(Ho, 2)))
        ox = Signal(range(max(Wo, 2)))
        b = Signal(range(max(B, 2)))                   # beat of the current step (shared)
        e_done = Signal()                              # all sites sent: the eof beat is next
        pre = Signal(init=L > 0)                       # prefill: reader steps alone
        lag = Signal(range(L + 1))                     # prefill steps done

        # ---- writer ----------------------------------------------------------------------
        ip = self.i.payload
        # `ready` is a register: whether the writer may write at its position of the next cycle
        # (after this cycle's beat, if one is taken), by the reader's state of this cycle. The
        # reader only ever widens what the writer may overwrite (a frame switch too), so a
        # cycle-old reader state is safe; it costs a cycle when the writer waits on the reader.
        ready_w = Signal(init=1)
        m.d.comb += self.i.ready.eq(ip.eof | ready_w)
        take = Signal()
        m.d.comb += take.eq(self.i.valid & self.i.ready & ~ip.eof)
        last_beat = wb == B - 1
        if s == 1:
            w_row_end = waddr == RW - 1
        else:
            w_row_end = (waddr == RW - 1) & (wpar == (W - 1) % 2)
        # the write stage: the taken beat's word, address and slot are registered every cycle
        # and written a cycle later, so the row memories' write enables start at registers, not
        # at `ready` (a comparison of the writer's and the reader's counters); a row counts as
        # complete (`wr_c`, which the reader reads) when its last word is in its memory
        w_row_done = take & w_row_end
        w_en, w_done, w_par = Signal(), Signal(), Signal()
        w_addr, w_slot, w_data = Signal.like(waddr), Signal(sbits), Signal(word)
        m.d.sync += [w_en.eq(take), w_done.eq(w_row_done), w_addr.eq(waddr),
                     w_slot.eq(wslot), w_par.eq(wpar), w_data.eq(ip.data.as_value())]
        for (k, p), wp in wports.items():
            en = w_en & (w_slot == k)
            if s == 2:
                en = en & (w_par == p)
            m.d.comb += [wp.addr.eq(w_addr), wp.data.eq(w_data), wp.en.eq(en)]
        waddr_n = Signal.like(waddr)   # the writer's address of the next cycle
        m.d.comb += waddr_n.eq(waddr)
        m.d.sync += waddr.eq(waddr_n)
        with m.If(take):
            with m.If(w_row_end):
                m.d.comb += waddr_n.eq(0)
                m.d.sync += [wb.eq(0), wpar.eq(0), wslot.eq(wslot + 1)]
            with m.Elif(last_beat & ~wpar if s == 2 else Const(0)):
                # end of an even column: its odd neighbour takes the same addresses
                m.d.comb += waddr_n.eq(waddr - (B - 1))
                m.d.sync += [wb.eq(0), wpar.eq(1)]
            with m.Else():
                m.d.comb += waddr_n.eq(waddr + 1)
                m.d.sync += wb.eq(Mux(last_beat, 0, wb + 1))
                if s == 2:
                    m.d.sync += wpar.eq(wpar ^ last_beat)
        # ``ready`` compares the writer's next row and address with the reader's. Each next
        # value the writer may take is compared from registers, and the comparison is chosen as
        # the value is: one carry chain before ``ready_w``, not an adder and then a compare (the
        # dense depthwise blocks' worst path on ECP5: 3.1-3.7 ns of logic through two chains).
        if s == 2:
            back = last_beat & ~wpar
            back_lt = (waddr - (B - 1)) < raddr
        else:
            back, back_lt = Const(0), Const(0)
        addr_lt = Mux(take, Mux(w_row_end, raddr != 0, Mux(back, back_lt, waddr + 1 < raddr)),
                      waddr < raddr)
        row_lt = Mux(w_row_done, wr + 1 < wlim, wr < wlim)
        row_eq = Mux(w_row_done, wr + 1 == wlim, wr == wlim)
        m.d.sync += ready_w.eq(row_lt | (row_eq & ~lo[-1] & addr_lt))

        # ---- issue (stage 0) -------------------------------------------------------------
        # Stage 1 holds one step while its memory reads arrive, stage 2 the same step with the
        # row memories' read data registered as they come out (no logic between a block RAM's
        # output and a register: on ECP5 a DP16KD's unregistered read alone takes 5.8 ns) and
        # the history read; the window is formed from stage 2. One enable moves both stages.
        # The end-of-frame beat waits in its own flag, so prefill steps of the next frame go on
        # while the consumer holds it.
        s1_valid, s2_valid = Signal(), Signal()
        s1_out, s2_out = Signal(), Signal()    # the step emits a window beat
        eof_q = Signal()       # the end-of-frame beat is offered
        out1 = s1_valid & s1_out
        out2 = s2_valid & s2_out
        adv = Signal()         # the stages take a new step
        m.d.comb += adv.eq(~out2 | (self.o.ready & ~eof_q))

        ready_r = wr_c > need
        # the reader has read its whole frame, the emitter has its last `lag` steps to go
        boundary = r_next & (rr == 0) & (raddr == 0)
        run = ~pre & ~e_done
        if combine:
            # read the next frame's first steps with them if its rows are there, else go on
            # without reads (never wait for the next frame's input to finish this one)
            # (decided per step: the beats of a drain step all drain, the reader staying put)
            combined = (wr_c > need_l) & (b == 0)
            pair_ok = Mux(boundary, combined, ready_r)
            drain_ok = boundary & ~combined
        elif L:
            pair_ok = ~boundary & ready_r
            drain_ok = boundary
        else:
            pair_ok = ready_r
            drain_ok = Const(0)

        i_eof = Signal()
        i_pair = Signal()      # reader and emitter step together
        i_pre = Signal()       # reader alone (prefill), reading
        i_virt = Signal()      # prefill step past the frame's end (no read)
        i_drain = Signal()     # emitter alone (no read)
        m.d.comb += [
            i_eof.eq(e_done & ~eof_q & ~out1 & (~out2 | self.o.ready)),
            i_drain.eq(adv & run & drain_ok),
            i_pair.eq(adv & run & pair_ok),
            i_pre.eq(adv & pre & ~r_next & ready_r),
            i_virt.eq(adv & pre & r_next),
        ]
        r_step = i_pair | i_pre
        e_step = i_pair | i_drain
        step = r_step | e_step | i_virt
        step_end = step & (b == B - 1)

        with m.If(step):
            m.d.sync += b.eq(Mux(b == B - 1, 0, b + 1))

        # emitter position
        with m.If(e_step & (b == B - 1)):
            with m.If(ox == Wo - 1):
                m.d.sync += ox.eq(0)
                with m.If(oy == Ho - 1):
                    m.d.sync += [oy.eq(0), e_done.eq(1)]
                with m.Else():
                    m.d.sync += oy.eq(oy + 1)
            with m.Else():
                m.d.sync += ox.eq(ox + 1)
        with m.If(self.o.ready):
            m.d.sync += eof_q.eq(0)
        if L:
            # lag: steps the reader is ahead of the emitter in the emitter's frame
            with m.If((i_pre | i_virt) & step_end):
                m.d.sync += lag.eq(lag + 1)
                with m.If(lag == L - 1):
                    m.d.sync += pre.eq(0)
            with m.If(i_drain & step_end):
                m.d.sync += lag.eq(lag - 1)
        with m.If(i_eof):
            m.d.sync += [eof_q.eq(1), e_done.eq(0), r_next.eq(0)]
            if combine:
                # the next frame's first `lag` steps are read; prefill the rest
                m.d.sync += pre.eq(lag != L)
            elif L:
                m.d.sync += [pre.eq(1), lag.eq(0)]

        # reader position; at the end of its frame it moves to the next one
        r_switch = Signal()
        m.d.comb += r_switch.eq(r_step & (raddr == RW - 1) & (rr == Ho - 1))
        with m.If(r_step):
            with m.If(raddr == RW - 1):
                m.d.sync += raddr.eq(0)
                with m.If(rr == Ho - 1):
                    m.d.sync += [
                        rr.eq(0), lo.eq(-ry), need.eq(min(ry, H - 1)), wlim.eq(N),
                        slot0.eq(slot0 + H % N), rbase.eq(slot0 + (H - ry) % N), r_next.eq(1),
                    ]
                with m.Else():
                    lo_n = lo + s
                    m.d.sync += [
                        rr.eq(rr + 1), lo.eq(lo_n), rbase.eq(rbase + s),
                        need.eq(Mux(need + s > H - 1, H - 1, need + s)),
                        wlim.eq(Mux(lo_n < 0, N, lo_n + N)),
                    ]
            with m.Else():
                m.d.sync += raddr.eq(raddr + 1)
        # both counters' next values with and without the reader's frame switch are formed from
        # registers and the switch (the reader's step, through its handshake) only selects one
        wr_n, wr_c_n = wr + w_row_done, wr_c + w_done
        m.d.sync += [wr.eq(Mux(r_switch, wr_n - H, wr_n)),
                     wr_c.eq(Mux(r_switch, wr_c_n - H, wr_c_n))]
        # the row memories read whenever the stages move (a step or a bubble enters stage 1;
        # a bubble's word is never used), so the read registers' enable is the stages' own, not
        # the reader's decision (which compares its position with the writer's)
        for rp in rports.values():
            m.d.comb += [rp.addr.eq(raddr), rp.en.eq(adv)]
        # the last elaboration's row ports, the reader's step, its window's first slot and first
        # row: tests watch that no read the window uses meets a write of its word
        self.row_probe = (wports, rports, r_step, rbase, lo)

        # mask of the emitter's site: rows and columns inside the map
        cy = oy if s == 1 else oy << 1
        cx = ox if s == 1 else ox << 1

        def inside(c, d, r, n):
            lo_ok = Const(1) if d >= r else c >= r - d
            return lo_ok & (c < n + r - d)

        mask = Signal(kh * kw)
        for dy in range(kh):
            for dx in range(kw):
                m.d.comb += mask[kw * dy + dx].eq(inside(cy, dy, ry, H) & inside(cx, dx, rx, W))

        # ---- stage 1: memory data arriving; stage 2: registered, output, history write-back -
        s1_b, s2_b = Signal.like(b), Signal.like(b)
        s1_y, s2_y = Signal.like(oy), Signal.like(oy)
        s1_x, s2_x = Signal.like(ox), Signal.like(ox)
        s1_mask, s2_mask = Signal(kh * kw), Signal(kh * kw)
        s1_rbase, s2_rbase = Signal(sbits), Signal(sbits)
        sends = e_step
        if self.margin:
            p = self.margin
            sends = e_step & (oy >= p) & (oy < Ho - p) & (ox >= p) & (ox < Wo - p)
        rq = {}   # the row memories' read words, registered (an empty memory's constant stays)
        for (k, p), d in rdata.items():
            rq[k, p] = d
            if not isinstance(d, Const):
                # no reset (a word counts only with its step's valid), so that on ECP5 it can
                # become the block RAM's own output register (hw.ecp5_ebr)
                rq[k, p] = Signal(word, name=f"rq{k}_p{p}", reset_less=True)
                with m.If(adv):
                    m.d.sync += rq[k, p].eq(d)
        with m.If(adv):
            m.d.sync += [
                s1_valid.eq(step), s1_out.eq(sends), s1_b.eq(b),
                s1_rbase.eq(rbase), s1_y.eq(oy), s1_x.eq(ox), s1_mask.eq(mask),
                s2_valid.eq(s1_valid), s2_out.eq(s1_out), s2_b.eq(s1_b),
                s2_rbase.eq(s1_rbase), s2_y.eq(s1_y), s2_x.eq(s1_x), s2_mask.eq(s1_mask),
            ]

        hbits = Hc * kh * word
        commit = s2_valid & adv
        if B == 1:
            hist_reg = Signal(hbits)
            hist = hist_reg
        else:
            # read as the step enters stage 2, written back as it leaves: the next step of the
            # same beat enters stage 2 at least a cycle after the write (B >= 2)
            hmem = Memory(shape=unsigned(hbits), depth=B, init=[],
                          attrs={"ram_style": "distributed"})
            m.submodules.history = hmem
            h_rd = hmem.read_port()
            h_wr = hmem.write_port()
            m.d.comb += [h_rd.addr.eq(s1_b), h_rd.en.eq(adv)]
            hist = h_rd.data

        cols = [[hist[(c * kh + dy) * word:(c * kh + dy + 1) * word] for dy in range(kh)]
                for c in range(Hc)]
        for p in range(s):
            sel = Array(rq[k, p] for k in range(N))
            col = []
            for dy in range(kh):
                w = Signal(word, name=f"new{p}_{dy}")
                m.d.comb += w.eq(sel[(s2_rbase + dy)[:sbits]])
                col.append(w)
            cols.append(col)
        new_hist = Cat(*(cols[c][dy] for c in range(s, s + Hc) for dy in range(kh)))
        if B == 1:
            with m.If(commit):
                m.d.sync += hist_reg.eq(new_hist)
        else:
            m.d.comb += [h_wr.addr.eq(s2_b), h_wr.data.eq(new_hist), h_wr.en.eq(commit)]

        # the end-of-frame beat: y = x = 0, taps and mask 0, beat 0
        op = self.o.payload
        live = Signal(kh * kw)
        m.d.comb += [
            live.eq(Mux(eof_q, 0, s2_mask)),
            self.o.valid.eq(eof_q | out2),
            op.y.eq(Mux(eof_q, 0, s2_y)), op.x.eq(Mux(eof_q, 0, s2_x)), op.mask.eq(live),
            op.beat.eq(Mux(eof_q, 0, s2_b)), op.eof.eq(eof_q),
        ]
        for dy in range(kh):
            for dx in range(kw):
                t = kw * dy + dx
                m.d.comb += op.taps[t].as_value().eq(Mux(live[t], cols[dx][dy], 0))
        return m
