"""Depthwise 3x3 convolution (stride 1 submanifold or stride 2 sparse) on a token stream.

A :class:`~hw.line_buffer.LineBuffer` turns the input tokens into window beats; for every window
beat (output site, channel beat ``b``) the compute side multiplies the ``lanes`` channels' 9 taps by
their own 9 weights in parallel (``9 x lanes`` products, :func:`hw.mac.product`, so DyBit layers use
no DSP) and adds the bias: one output beat of ``lanes`` int32 accumulators per window beat, so the
output is a token stream with the same ``lanes`` (``pe`` is 1: one output channel per input
channel). Absent neighbours arrive as zero taps. The requantizer is a separate block.

Weights live in a memory initialised with their hardware codes (``WeightFormat.encode``): word
``b`` holds the ``lanes x 9`` codes of channels ``b*lanes .. b*lanes+lanes-1`` (lane-major, tap
``3*ky+kx`` minor); the biases sit in a second memory with the same addressing.

Cycles per frame: the compute side takes one window beat per cycle, so the block runs at the line
buffer's rate, :func:`contract.cycles.window_cycles` with ``cycles_per_beat = 1``; the
:attr:`DWConv3x3.latency` cycles of the compute pipeline are paid once for a lone frame and
overlap the next frame back to back.
"""

from __future__ import annotations

import numpy as np
import torch
from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from contract.constants import MAC_LATENCY, mac_latency
from contract.cycles import window_cycles, window_output_size
from models.quant.formats import weight_format
from models.reference import ACC_BITS, check_acc_bits

from . import line_buffer
from .line_buffer import LineBuffer
from .mac import Pipeline, pipelined_product, pipelined_sum
from .stream import TokenBlock, TokenShape

__all__ = ["DWConv3x3", "LATENCY", "weight_codes"]

#: Cycles of the window read and the output register; a block's :attr:`DWConv3x3.latency` adds its
#: operand registers, products and adder tree (:func:`contract.constants.mac_latency` of 9).
LATENCY = MAC_LATENCY



def weight_codes(fmt, weight) -> np.ndarray:
    """Hardware codes of integer weights, checking that every value is representable."""
    fmt = weight_format(fmt)
    w = np.asarray(weight, dtype=np.int64)
    levels = {int(v) for v in fmt.levels}
    bad = sorted({int(v) for v in np.unique(w)} - levels)
    if bad:
        raise ValueError(f"weight value {bad[0]} is not representable in {fmt.name}")
    return np.asarray(fmt.encode(w), dtype=np.int64)


def _check_bias(bias, n):
    b = np.asarray(bias, dtype=np.int64).reshape(-1)
    if b.shape != (n,):
        raise ValueError(f"bias must have {n} values, not {b.shape}")
    if (b < -(1 << (ACC_BITS - 1))).any() or (b >= (1 << (ACC_BITS - 1))).any():
        raise ValueError("bias does not fit the int32 accumulator")
    return b


def check_window_conv(*, shape, stride, fmt, weight, weight_shape, bias, slots, name):
    """The parameter checks a 3x3 window conv (:class:`DWConv3x3`, :class:`hw.conv3x3.Conv3x3`)
    shares; ``(fmt, weight, bias, codes, slots)`` as the block keeps them.

    ``weight_shape`` is the shape ``weight`` must have and ``name`` the layer kind that the
    accumulator-width check names.
    """
    if not isinstance(shape, TokenShape):
        raise TypeError(f"shape must be a TokenShape, not {shape!r}")
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, not {stride!r}")
    fmt = weight_format(fmt)
    w = np.asarray(weight, dtype=np.int64)
    if w.shape != tuple(weight_shape):
        raise ValueError(f"weight must have shape {list(weight_shape)}, not {list(w.shape)}")
    b = _check_bias(bias, weight_shape[0])
    qmax = (1 << (shape.data_width - 1)) - 1
    check_acc_bits(torch.from_numpy(w), torch.from_numpy(b), -qmax, qmax, name=name)
    codes = weight_codes(fmt, w)
    slots = line_buffer.DEFAULT_SLOTS if slots is None else slots
    if slots not in (4, 8, 16):
        raise ValueError(f"slots must be 4, 8 or 16, not {slots!r}")
    return fmt, w, b, codes, slots


class DWConv3x3(TokenBlock):
    """Depthwise 3x3 convolution of a token stream, int32 accumulator output.

    Parameters
    ----------
    shape : TokenShape
        Input stream (``channels`` = C, ``lanes``; int8 data).
    stride : int
        1 (submanifold: outputs at the active input sites) or 2 (docs/CONTRACT.md rule).
    fmt : str or WeightFormat
        Weight format.
    weight : array of int, shape ``[C, 1, 3, 3]``
        Integer weight values, representable in ``fmt``.
    bias : array of int, shape ``[C]``
        Integer biases (int32).
    pe : int
        Must be 1 (kept so a design point's ``pe`` can be passed through and checked).
    slots : int, optional
        Row slots of the line buffer (default :data:`hw.line_buffer.DEFAULT_SLOTS`).

    Attributes
    ----------
    i : In(stream.Signature(shape.layout()))
        Input tokens.
    o : Out(stream.Signature(o_shape.layout()))
        Output tokens at the output sites: ``C / lanes`` beats of ``lanes`` int32 accumulators.
    o_shape : TokenShape
        ``(H_out, W_out, C, lanes, 32)``.
    """

    def __init__(self, *, shape, stride, fmt, weight, bias, pe=1, slots=None):
        if pe != 1:
            raise ValueError(f"a depthwise conv has pe = 1, not {pe!r}")
        c = getattr(shape, "channels", None)
        self.fmt, self.weight, self.bias, self.codes, self.slots = check_window_conv(
            shape=shape, stride=stride, fmt=fmt, weight=weight, weight_shape=(c, 1, 3, 3),
            bias=bias, slots=slots, name="depthwise conv")
        self.i_shape, self.stride = shape, stride
        ho, wo = window_output_size(shape.height, shape.width, stride)
        self.o_shape = TokenShape(height=ho, width=wo, channels=c, lanes=shape.lanes,
                                  data_width=ACC_BITS)
        self.latency = mac_latency(self.fmt.name, 9)
        super().__init__(shape, self.o_shape)

    def cycles_per_frame(self, active_sites, output_sites=None):
        s = self.i_shape
        return window_cycles(height=s.height, width=s.width, channels=s.channels, lanes=s.lanes,
                             stride=self.stride, active_sites=active_sites,
                             output_sites=output_sites)

    def elaborate(self, platform):
        m = Module()
        lanes = self.i_shape.lanes
        nb = self.i_shape.beats_per_site
        abits = self.i_shape.data_width
        cb = self.fmt.bits
        m.submodules.lb = lb = LineBuffer(shape=self.i_shape, stride=self.stride, slots=self.slots)
        wiring.connect(m, wiring.flipped(self.i), lb.i)

        wwords, bwords = [], []
        for b in range(nb):
            word = bword = 0
            for ln in range(lanes):
                ch = b * lanes + ln
                for t in range(9):
                    word |= int(self.codes[ch, 0, t // 3, t % 3]) << ((ln * 9 + t) * cb)
                bword |= (int(self.bias[ch]) & ((1 << ACC_BITS) - 1)) << (ln * ACC_BITS)
            wwords.append(word)
            bwords.append(bword)
        m.submodules.wmem = wmem = Memory(shape=unsigned(lanes * 9 * cb), depth=nb, init=wwords)
        m.submodules.bmem = bmem = Memory(shape=unsigned(lanes * ACC_BITS), depth=nb, init=bwords)
        w_rd = wmem.read_port()
        b_rd = bmem.read_port()

        en = Signal()
        m.d.comb += en.eq(~self.o.valid | self.o.ready)
        win = lb.o.payload
        m.d.comb += [
            lb.o.ready.eq(en),
            w_rd.addr.eq(win.beat), w_rd.en.eq(en),
            b_rd.en.eq(en),
        ]
        # stage 1: window registered, its weight word arriving from memory
        v1 = Signal()
        taps1 = Signal.like(win.taps)
        y1, x1, eof1 = Signal.like(win.y), Signal.like(win.x), Signal()
        with m.If(en):
            m.d.sync += [v1.eq(lb.o.valid), taps1.eq(win.taps), y1.eq(win.y), x1.eq(win.x),
                         eof1.eq(win.eof)]
        # then the operand registers, the products and the adder tree: `depth` more stages, with
        # the bias memory read `depth` stages late so that its word arrives with the sums
        pipe = Pipeline(m, en)
        depth = self.latency - LATENCY
        codes, acts = pipe.reg(w_rd.data, name="codes"), pipe.reg(taps1, name="acts")
        aw = len(taps1.as_value()) // (9 * lanes)   # bits of one tap lane
        sums = []
        for ln in range(lanes):
            prods = []
            for t in range(9):
                k = ln * 9 + t
                lo = (t * lanes + ln) * aw
                prods.append(pipelined_product(pipe, self.fmt, codes[k * cb:(k + 1) * cb],
                                               acts[lo:lo + abits].as_signed(), name=f"prod{k}"))
            sums.append(pipelined_sum(pipe, prods, name=f"sum{ln}"))
        m.d.comb += b_rd.addr.eq(pipe.delay(win.beat, depth, name="bias_beat"))
        vd, yd, xd, eofd = (pipe.delay(s_, depth) for s_ in (v1, y1, x1, eof1))
        # the output register
        op = self.o.payload
        with m.If(en):
            m.d.sync += [self.o.valid.eq(vd), op.y.eq(yd), op.x.eq(xd), op.eof.eq(eofd)]
            for ln in range(lanes):
                bias = b_rd.data[ln * ACC_BITS:(ln + 1) * ACC_BITS].as_signed()
                m.d.sync += op.data[ln].eq(Mux(eofd, 0, sums[ln] + bias))
        return m
