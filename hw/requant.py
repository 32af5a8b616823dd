"""Streaming requantizer: int32 accumulator beats in, ``out_width``-bit activation beats out.

Per lane, with ``c`` the lane's channel (``beat * lanes + lane``)::

    y = clamp((acc * M[c] + R[c]) >> S, lo, hi)

exactly as :func:`models.quant.requant.requant`. ``M`` comes from a ROM with one word per beat of a
site (``lanes`` multipliers of ``M_BITS`` bits), addressed by a beat counter that restarts at every
site and at end of frame. ``S``, ``lo`` and ``hi`` are per-layer constants. The rounding offset
``R[c]`` is the constant ``2^(S-1)`` unless per-channel offsets are given (a layer that carries its
float bias's fraction there, :func:`models.quant.requant.rounding_offsets`); then each ROM word
also holds the lanes' offsets.

Six pipeline stages advance together whenever the output register is empty or being drained, so
the block takes one beat per cycle when unstalled and adds a latency of :data:`LATENCY` cycles:
the accepted beat and its ROM word; the multiplier's operands (registers with nothing but a wire
before them, so that the ECP5 flow can move them into the MULT18X18D, :mod:`hw.ecp5_dsp`); the
products; the rounding add; the sum of the split products (a register for an unsplit one); the
shift and clamp. Coordinates and ``eof`` pass through; ``eof`` beats carry zeros.

``acc_bits`` (the layer's accumulator width from :func:`models.reference.acc_bits`, which the
composer computes) narrows the multiplier to the bits the accumulator really uses: up to 27 bits
times the 15-bit ``M`` fits one DSP48E2 per lane instead of two. ``dsp_acc_bits`` is the widest
accumulator one DSP of the target multiplies (``dse.cost.DSP_ACC_BITS``: 19 for a MULT18X18D,
whose last bit Yosys multiplies in LUTs): an accumulator of that width or wider is split into an
unsigned low part of ``dsp_acc_bits - 1`` bits (one DSP) and a signed high part (a second DSP,
or LUTs for a single bit), each product with its own register, summed a stage later rather than
in the multipliers' stage (where Yosys would sum them); the DSP count is the one
``dse.cost`` prices (one DSP up to ``dsp_acc_bits``, two beyond).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib.memory import Memory

from contract.constants import REQUANT_LATENCY
from contract.cycles import stream_cycles as cycles_per_frame
from models.quant.requant import M_BITS, S_MAX, S_MIN

from .mac import Pipeline
from .stream import TokenBlock, TokenShape

__all__ = ["Requantizer", "LATENCY", "cycles_per_frame"]

#: Cycles from an input beat's acceptance to its output beat's ``valid``.
LATENCY = REQUANT_LATENCY



class Requantizer(TokenBlock):
    """Per-channel requantizer of a token stream.

    Parameters
    ----------
    shape : TokenShape
        Input stream (``data_width`` is the accumulator width, at most 32).
    M : sequence of int
        One unsigned multiplier per channel, each below ``2^M_BITS``.
    S : int
        Right shift, in ``[S_MIN, S_MAX]``.
    lo, hi : int
        Output clamp range; must fit ``out_width`` signed bits.
    out_width : int
        Bits of an output lane (8 for int8 activations).
    acc_bits : int, optional
        Signed bits the accumulators actually need (default: the stream's ``data_width``); the
        caller guarantees every accumulator fits.
    dsp_acc_bits : int, optional
        Widest accumulator one DSP multiplies; wider ones are split (module docstring). Default:
        never split.
    R : sequence of int, optional
        Per-channel rounding offsets (default ``2^(S-1)`` for every channel).

    Attributes
    ----------
    i : In(stream.Signature(shape.layout()))
    o : Out(stream.Signature(o_shape.layout()))
    """

    def __init__(self, *, shape, M, S, lo, hi, out_width=8, acc_bits=None, R=None,
                 dsp_acc_bits=None):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        M = [int(v) for v in M]
        if len(M) != shape.channels:
            raise ValueError(f"M has {len(M)} multipliers for {shape.channels} channels")
        for v in M:
            if not 0 <= v < (1 << M_BITS):
                raise ValueError(f"multiplier {v} outside [0, 2^{M_BITS})")
        if not isinstance(S, int) or not S_MIN <= S <= S_MAX:
            raise ValueError(f"S must be an integer in [{S_MIN}, {S_MAX}], not {S!r}")
        if not isinstance(out_width, int) or out_width < 2:
            raise TypeError(f"out_width must be an integer >= 2, not {out_width!r}")
        qmax = (1 << (out_width - 1)) - 1
        if not -qmax - 1 <= lo <= hi <= qmax:
            raise ValueError(f"clamp range [{lo}, {hi}] does not fit {out_width} signed bits")
        if acc_bits is None:
            acc_bits = shape.data_width
        if not isinstance(acc_bits, int) or not 2 <= acc_bits <= shape.data_width:
            raise ValueError(f"acc_bits must be an integer in [2, {shape.data_width}], "
                             f"not {acc_bits!r}")
        self.acc_bits = acc_bits
        if dsp_acc_bits is not None and (not isinstance(dsp_acc_bits, int) or dsp_acc_bits < 3):
            raise ValueError(f"dsp_acc_bits must be an integer >= 3, not {dsp_acc_bits!r}")
        #: bits of the low part of a split multiplication (None: one multiplier per lane)
        self.split = (dsp_acc_bits - 1 if dsp_acc_bits is not None and acc_bits >= dsp_acc_bits
                      else None)
        self.i_shape = shape
        self.o_shape = TokenShape(height=shape.height, width=shape.width,
                                  channels=shape.channels, lanes=shape.lanes,
                                  data_width=out_width)
        self.M, self.S, self.lo, self.hi = tuple(M), S, int(lo), int(hi)
        if R is not None:
            R = tuple(int(v) for v in R)
            if len(R) != shape.channels:
                raise ValueError(f"R has {len(R)} offsets for {shape.channels} channels")
            if any(abs(v) >= (1 << (S + M_BITS)) for v in R):
                raise ValueError(f"a rounding offset is outside +-2^(S + {M_BITS})")
        self.R = R
        super().__init__(shape, self.o_shape)

    def elaborate(self, platform):
        m = Module()
        lanes = self.i_shape.lanes
        beats = self.i_shape.beats_per_site
        # a ROM word per beat: the lanes' multipliers, then (per-channel R) their offsets
        rw = self.S + M_BITS + 1 if self.R is not None else 0
        words = []
        for b in range(beats):
            word = 0
            for i in range(lanes):
                word |= self.M[b * lanes + i] << (i * M_BITS)
                if self.R is not None:
                    r = self.R[b * lanes + i] & ((1 << rw) - 1)
                    word |= r << (lanes * M_BITS + i * rw)
            words.append(word)
        m.submodules.rom = rom = Memory(shape=unsigned(lanes * (M_BITS + rw)), depth=beats,
                                        init=words)
        rd = rom.read_port(domain="sync")

        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]

        beat = Signal(range(max(beats, 2)))
        m.d.comb += [rd.addr.eq(beat), rd.en.eq(en)]
        with m.If(self.i.valid & en):
            with m.If(self.i.payload.eof | (beat == beats - 1)):
                m.d.sync += beat.eq(0)
            with m.Else():
                m.d.sync += beat.eq(beat + 1)

        # stage a: the accepted beat, with its multipliers arriving from the ROM; b: the
        # multipliers' operands; c: the products (a multiplier between two registers); d: plus
        # the rounding offsets; e: the split products' sum; then the shift and clamp into the
        # output register
        pipe = Pipeline(m, en)
        a_valid = pipe.reg(self.i.valid, name="a_valid")
        a = Signal(self.i_layout, reset_less=True)  # data: a_valid says when it holds a beat
        with m.If(en):
            m.d.sync += a.eq(self.i.payload)
        pw = self.acc_bits + M_BITS + 1
        if self.R is not None:  # room for the offsets (|R| < 2^(S + M_BITS))
            pw = max(pw, self.S + M_BITS + 1)
        L = self.split
        sums = []
        for i in range(lanes):
            mult = pipe.data(rd.data[i * M_BITS:(i + 1) * M_BITS], name=f"m{i}")
            acc = a.data[i][:self.acc_bits].as_signed()
            if self.R is None:
                offset = 1 << (self.S - 1)
            else:
                base = lanes * M_BITS + i * rw
                offset = pipe.delay(rd.data[base:base + rw].as_signed(), 2, name=f"offset{i}")
            if L is None:
                prod = pipe.data(pipe.data(acc, name=f"acc{i}") * mult, name=f"prod{i}")
                total = pipe.reg(prod + offset, name=f"round{i}")
            else:
                lo = pipe.data(acc[:L], name=f"acc_lo{i}")              # unsigned
                hi = pipe.data(acc[L:].as_signed(), name=f"acc_hi{i}")  # signed
                p_lo = pipe.data(lo * mult, name=f"prod_lo{i}")
                p_hi = pipe.data(hi * mult, name=f"prod_hi{i}")
                part = pipe.reg(p_lo + offset, name=f"round{i}")
                total = part + (pipe.reg(p_hi, name=f"prod_hi_d{i}") << L)
            sums.append(pipe.reg(total[:pw + 1].as_signed(), name=f"sum{i}"))
        y_c, x_c, eof_c = (pipe.delay(v, LATENCY - 2, name=n)
                           for v, n in ((a.y, "y"), (a.x, "x"), (a.eof, "eof")))
        c_valid = pipe.delay(a_valid, LATENCY - 2, name="c_valid")
        with m.If(en):
            m.d.sync += [
                self.o.valid.eq(c_valid),
                self.o.payload.y.eq(y_c),
                self.o.payload.x.eq(x_c),
                self.o.payload.eof.eq(eof_c),
            ]
            for i in range(lanes):
                q = sums[i] >> self.S
                y = Mux(q < self.lo, self.lo, Mux(q > self.hi, self.hi, q))
                m.d.sync += self.o.payload.data[i].eq(Mux(eof_c, 0, y))
        return m
