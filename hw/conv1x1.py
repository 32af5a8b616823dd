"""Pointwise (1x1) convolution as a ``pe`` x ``lanes`` matrix-vector unit on a token stream.

Per site the block computes ``acc[o] = bias[o] + sum_i w[o, i] * x[i]`` for every output channel.
The ``B = C_in / lanes`` input beats of a site are written into one bank of a two-bank input buffer;
while the compute side works through the full bank, the next site fills the other (double
buffering). For each of the ``G = C_out / pe`` output groups the compute side reads the ``B`` input
words once, one per cycle, and each cycle ``pe x lanes`` products (:func:`hw.mac.product`, by weight
format) are summed into ``pe`` accumulators; after the ``B``-th word of a group the accumulators,
plus the bias, leave as one output beat of ``pe`` int32 channels. So a site costs ``G * B`` MAC
cycles, and the unit is busy every cycle while input sites are ready.

Weights live in a memory initialised with their hardware codes (``WeightFormat.encode``), word
``g * B + b`` holding the ``pe x lanes`` codes of output group ``g`` and input beat ``b``.

An end-of-frame beat attaches to the bank of the frame's last site while that site waits or computes
(any cycle but its bank's last), so it takes no bank: the next frame's first site loads into the
other bank meanwhile, and frames of a single site (an MLP's vectors) pipeline from one 1x1 unit to
the next. When the last site's bank is already gone (or the frame is empty) the eof beat takes a
bank of its own. Either way the compute side forwards it as one ``eof`` output beat (data zero)
after the sites before it, one cycle, so frames back to back cost exactly :func:`cycles_per_frame`
(measured with ``hw.sim.run_stream``: 1 to 16 sites, B = 1 to 8; before this, an eof that took a
bank cost every frame ``B - 1`` more cycles, and chained single-site layers serialised).
"""

from __future__ import annotations

import numpy as np
import torch
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from contract.constants import MAC_LATENCY, mac_latency
from contract.cycles import conv1x1_cycles as cycles_per_frame
from contract.cycles import conv1x1_fill as fill_cycles
from models.quant.formats import weight_format
from models.reference import ACC_BITS, check_acc_bits

from .datapath import check_datapath, mac_sums, stored_codes
from .mac import Pipeline
from .stream import TokenBlock, TokenShape
from .weight_rom import rom_slices, weight_rom

__all__ = ["Conv1x1", "cycles_per_frame", "fill_cycles", "LATENCY"]

#: Cycles of the issue and the accumulator; a block's :attr:`Conv1x1.latency` adds its operand
#: registers, products and adder tree (:func:`contract.constants.mac_latency`).
LATENCY = MAC_LATENCY




class Conv1x1(TokenBlock):
    """1x1 convolution of a token stream, int32 accumulator output.

    Parameters
    ----------
    shape : TokenShape
        Input stream (``channels`` = C_in, ``lanes``; int8 data).
    c_out : int
        Output channels.
    pe : int
        Output channels computed in parallel (divides ``c_out``); output beats carry ``pe`` lanes.
    fmt : str or WeightFormat
        Weight format.
    weight : array of int, shape ``[c_out, c_in]`` (or ``[c_out, c_in, 1, 1]``)
        Integer weight values, representable in ``fmt``.
    bias : array of int, shape ``[c_out]``
        Integer biases (int32).
    stride : {1, 2}
        At stride 2 (a ResNet projection shortcut) output site ``(oy, ox)`` of the
        ``ceil(H/2) x ceil(W/2)`` map is input site ``(2 oy, 2 ox)``, its 1x1 window: the beats of
        a site with an odd ``y`` or ``x`` are taken (one cycle each) and dropped.
    datapath : str
        Multiplier datapath (:data:`contract.constants.DATAPATHS`; empty: the format's default):
        ``"dsp2"`` packs output channels ``2q, 2q + 1`` into one DSP slice, ``"lut"`` builds LUT
        multipliers (:func:`hw.datapath.mac_sums`).

    Attributes
    ----------
    i : In(stream.Signature(shape.layout()))
    o : Out(stream.Signature(o_shape.layout()))
    """

    def __init__(self, *, shape, c_out, pe, fmt, weight, bias, stride=1, datapath=""):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        if not isinstance(c_out, int) or c_out < 1:
            raise TypeError(f"c_out must be a positive integer, not {c_out!r}")
        if not isinstance(pe, int) or pe < 1 or c_out % pe:
            raise ValueError(f"pe must be a positive divisor of c_out={c_out}, not {pe!r}")
        self.fmt = weight_format(fmt)
        self.datapath = check_datapath(self.fmt.name, datapath, pe=pe)
        w = np.asarray(weight, dtype=np.int64).reshape(c_out, -1) if np.size(weight) else None
        if w is None or w.shape != (c_out, shape.channels):
            raise ValueError(
                f"weight must have shape [{c_out}, {shape.channels}], not "
                f"{np.shape(weight)}"
            )
        b = np.asarray(bias, dtype=np.int64).reshape(-1)
        if b.shape != (c_out,):
            raise ValueError(f"bias must have {c_out} values, not {b.shape}")
        if (b < -(1 << (ACC_BITS - 1))).any() or (b >= (1 << (ACC_BITS - 1))).any():
            raise ValueError("bias does not fit the int32 accumulator")
        qmax = (1 << (shape.data_width - 1)) - 1
        check_acc_bits(torch.from_numpy(w), torch.from_numpy(b), -qmax, qmax, name="1x1 conv")
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, not {stride!r}")
        self.i_shape = shape
        self.stride = stride
        self.c_out, self.pe = c_out, pe
        self.weight, self.bias = w, b
        self.codes = stored_codes(self.fmt, self.datapath, w)
        self.o_shape = TokenShape(height=-(-shape.height // stride),
                                  width=-(-shape.width // stride), channels=c_out,
                                  lanes=pe, data_width=ACC_BITS)
        #: cycles from the issue of a group's last word to that group's output beat ``valid``
        self.latency = mac_latency(self.fmt.name, shape.lanes, self.datapath)
        super().__init__(shape, self.o_shape)

    def cycles_per_frame(self, active_sites: float, input_sites: float | None = None) -> float:
        """Frames back to back; ``active_sites`` output sites, ``input_sites`` (stride 2) the
        input's."""
        return cycles_per_frame(active_sites=active_sites, c_in=self.i_shape.channels,
                                c_out=self.c_out, lanes=self.i_shape.lanes, pe=self.pe,
                                input_sites=input_sites)

    def elaborate(self, platform):
        m = Module()
        lanes, pe = self.i_shape.lanes, self.pe
        abits = self.i_shape.data_width
        nb = self.i_shape.beats_per_site          # B
        ng = self.c_out // pe                     # G
        cb = self.fmt.bits

        # -- memories ------------------------------------------------------------------------
        words = []
        for g in range(ng):
            for b in range(nb):
                word = 0
                for p in range(pe):
                    for ln in range(lanes):
                        code = int(self.codes[g * pe + p, b * lanes + ln])
                        word |= code << ((p * lanes + ln) * cb)
                words.append(word)
        # one slice of the (shallow) weight ROM per accumulator on a fabric datapath
        # (hw/weight_rom.py)
        w_rd = weight_rom(m, "wmem", width=pe * lanes * cb, depth=ng * nb, init=words,
                          slices=rom_slices(self.datapath, pe))
        bias_words = []
        for g in range(ng):
            word = 0
            for p in range(pe):
                word |= (int(self.bias[g * pe + p]) & ((1 << ACC_BITS) - 1)) << (p * ACC_BITS)
            bias_words.append(word)
        m.submodules.bmem = bmem = Memory(shape=unsigned(pe * ACC_BITS), depth=ng,
                                          init=bias_words)
        b_rd = bmem.read_port(domain="sync")
        m.submodules.xbuf = xbuf = Memory(shape=unsigned(lanes * abits), depth=2 * nb, init=[])
        x_wr = xbuf.write_port()
        x_rd = xbuf.read_port(domain="sync")

        # -- input side: fill banks ----------------------------------------------------------
        full = Signal(2)
        eof_bank = Signal(2)
        eof_after = Signal(2)   # the bank's site is the last of its frame: an eof beat follows it
        cy = [Signal.like(self.i.payload.y, name=f"y{k}") for k in range(2)]
        cx = [Signal.like(self.i.payload.x, name=f"x{k}") for k in range(2)]
        wbank = Signal()
        wbeat = Signal(range(max(nb, 2)))
        wfirst = Signal(init=1)  # wbeat == 0, a register (it reaches `ready` too)
        release = Signal(2)
        convert = Signal(2)     # a bank whose site is done and whose eof follows becomes eof
        # the compute side's state, declared here for the input side's attach rule
        rbank = Signal()
        g = Signal(range(max(ng, 2)))
        b = Signal(range(max(nb, 2)))
        # `b == nb - 1` and `g == ng - 1` as registers that move with the counters: they reach
        # the input's `ready` (the attach rule), which the FIFO's register slice waits on
        last_b = Signal(init=nb == 1)
        last_g = Signal(init=ng == 1)
        # the weight word's address `g * nb + b` as a counter that moves with them: no multiply
        # and add in front of the weight memory (LeNet-5's 400 -> 120 dense head on LFE5U-85F:
        # 5.7 ns of logic before its address fanned out to the weight EBRs)
        wa = Signal(range(max(ng * nb, 2)))
        # An eof beat attaches to the site of the bank written last while that bank waits or is
        # in compute (not in its last cycle, when it may be released), so it takes no bank and the
        # next frame's first site loads while the frame's last site computes: frames of one site
        # (an MLP's vectors) pipeline from layer to layer. Otherwise it takes a bank of its own.
        prev = ~wbank
        drop = Signal()  # stride 2: a site off the even grid, taken and dropped
        if self.stride == 2:
            m.d.comb += drop.eq(~self.i.payload.eof
                                & (self.i.payload.y[0] | self.i.payload.x[0]))
        attach = Signal()
        m.d.comb += attach.eq(
            self.i.payload.eof & wfirst & full.bit_select(prev, 1)
            & ~eof_bank.bit_select(prev, 1) & ~eof_after.bit_select(prev, 1)
            & ~((rbank == prev) & last_b & last_g))
        m.d.comb += [
            self.i.ready.eq(~full.bit_select(wbank, 1) | attach | drop),
            x_wr.addr.eq(wbank * nb + wbeat),
            x_wr.data.eq(self.i.payload.data.as_value()),
            x_wr.en.eq(self.i.valid & self.i.ready & ~self.i.payload.eof & ~drop),
        ]
        fill = Signal(2)
        mark = Signal(2)
        with m.If(self.i.valid & attach):
            m.d.comb += mark.eq(Mux(prev, 0b10, 0b01))
        with m.Elif(self.i.valid & self.i.ready & ~drop):
            with m.If(wfirst):
                for k in range(2):
                    with m.If(wbank == k):
                        sh = self.stride - 1  # output coordinates: (y, x) / stride
                        m.d.sync += [cy[k].eq(self.i.payload.y >> sh),
                                     cx[k].eq(self.i.payload.x >> sh),
                                     eof_bank[k].eq(self.i.payload.eof)]
            with m.If(self.i.payload.eof | (wbeat == nb - 1)):
                m.d.sync += [wbeat.eq(0), wfirst.eq(1), wbank.eq(~wbank)]
                m.d.comb += fill.eq(Mux(wbank, 0b10, 0b01))
            with m.Else():
                m.d.sync += [wbeat.eq(wbeat + 1), wfirst.eq(0)]
        m.d.sync += [full.eq((full | fill) & ~release),
                     eof_after.eq((eof_after | mark) & ~convert & ~release)]

        # -- compute side --------------------------------------------------------------------
        en = Signal()
        m.d.comb += en.eq(~self.o.valid | self.o.ready)
        ready_bank = full.bit_select(rbank, 1)
        is_eof = eof_bank.bit_select(rbank, 1)
        issue = Signal()
        m.d.comb += issue.eq(en & ready_bank)
        m.d.comb += [
            x_rd.addr.eq(rbank * nb + b), x_rd.en.eq(en),
            w_rd.addr.eq(wa), w_rd.en.eq(en),
            b_rd.en.eq(en),
        ]
        b_first = [b.eq(0), last_b.eq(nb == 1)]
        g_first = [g.eq(0), last_g.eq(ng == 1), wa.eq(0)]
        with m.If(issue):
            with m.If(~is_eof & last_b & last_g & eof_after.bit_select(rbank, 1)):
                m.d.sync += [*g_first, *b_first]
                m.d.comb += convert.eq(Mux(rbank, 0b10, 0b01))
            with m.Elif(is_eof | (last_b & last_g)):
                m.d.sync += [*g_first, *b_first, rbank.eq(~rbank)]
                m.d.comb += release.eq(Mux(rbank, 0b10, 0b01))
            with m.Elif(last_b):
                m.d.sync += [*b_first, g.eq(g + 1), last_g.eq(g == ng - 2), wa.eq(wa + 1)]
            with m.Else():
                m.d.sync += [b.eq(b + 1), last_b.eq(b == nb - 2), wa.eq(wa + 1)]

        for k in range(2):
            with m.If(convert[k]):
                m.d.sync += eof_bank[k].eq(1)

        # stage 1: memory words for the issued (g, b) have arrived
        pipe = Pipeline(m, en)
        v1 = pipe.reg(issue, name="v1")
        first1 = pipe.reg(b == 0, name="first1")
        last1 = pipe.reg(last_b | is_eof, name="last1")
        eof1 = pipe.reg(is_eof, name="eof1")
        y1 = pipe.reg(Mux(rbank, cy[1], cy[0]), name="y1")
        x1 = pipe.reg(Mux(rbank, cx[1], cx[0]), name="x1")
        # then the operand registers, the products and the adder tree: `depth` more stages, with
        # the bias memory read `depth` stages late so that its word arrives with the sums
        depth = self.latency - LATENCY
        codes, acts = pipe.data(w_rd.data, name="codes"), pipe.data(x_rd.data, name="acts")
        sums = mac_sums(pipe, self.fmt, self.datapath, pe=pe, n=lanes,
                        code=lambda p, ln: codes[(p * lanes + ln) * cb:(p * lanes + ln + 1) * cb],
                        act=lambda p, ln: acts[ln * abits:(ln + 1) * abits].as_signed())
        m.d.comb += b_rd.addr.eq(pipe.delay(g, depth, name="bias_g"))
        vd, firstd, lastd, eofd = (pipe.delay(s_, depth) for s_ in (v1, first1, last1, eof1))
        yd, xd = pipe.delay(y1, depth), pipe.delay(x1, depth)
        acc = [Signal(signed(ACC_BITS), name=f"acc{p}") for p in range(pe)]
        with m.If(en & vd):
            for p in range(pe):
                base = Mux(firstd, b_rd.data[p * ACC_BITS:(p + 1) * ACC_BITS].as_signed(), acc[p])
                m.d.sync += acc[p].eq(Mux(eofd, 0, base + sums[p]))
        with m.If(en):
            m.d.sync += self.o.valid.eq(vd & lastd)
            with m.If(vd & lastd):
                m.d.sync += [self.o.payload.y.eq(yd), self.o.payload.x.eq(xd),
                             self.o.payload.eof.eq(eofd)]
        for p in range(pe):
            m.d.comb += self.o.payload.data[p].eq(acc[p])
        return m
