"""Depthwise 3x3 convolution (stride 1 submanifold or stride 2 sparse) on a token stream.

A :class:`~hw.line_buffer.LineBuffer` turns the input tokens (``lanes`` channels per beat) into
window beats; each window beat (output site, channel beat ``b``) takes ``G = lanes / pe`` cycles:
in sub-step ``k`` the compute side multiplies the 9 taps of ``pe`` channels
``b*lanes + k*pe ..`` by their own 9 weights (``9 x pe`` products, :func:`hw.datapath.mac_sums`, so
DyBit or LUT datapaths use no DSP) and adds the bias: one output beat of ``pe`` int32 accumulators
per sub-step, so the output is a token stream of ``pe`` lanes. Absent neighbours arrive as zero
taps. The requantizer is a separate block.

Why ``pe < lanes``: at stride 2 the line buffer's writer takes four input sites per output site,
so with ``pe = lanes`` the multipliers wait three cycles of four; with ``lanes = 4 pe`` the same
throughput needs a quarter of them (the DSE chooses the pair).

With ``kfold = 3`` each sub-step spreads the window over its three kernel rows, one a cycle:
``pe x 3`` products a cycle summed into ``pe`` accumulators that start from the bias, the output
beat leaving after the third row, so ``G = 3 lanes / pe`` cycles a window beat for a third of the
multipliers (a depthwise layer far off the network's bottleneck needs few). With ``kfold = 9``
the sub-step takes one tap a cycle (``pe`` products, ``G = 9 lanes / pe``): a ninth of the
multipliers, for the layers that even a third keeps idle most of the time (SEE-D's and
MobileNet's late maps, where one multiplier does a layer's work within the network's II).

Weights live in a memory initialised with their hardware codes (``WeightFormat.encode``): word
``((b << ceil(log2 G')) | k) << ceil(log2 kfold) | r`` holds the ``pe x 9 / kfold`` codes of
step ``r`` (a kernel row, or a tap at ``kfold = 9``) of sub-step ``k`` of beat ``b`` (``G' =
lanes / pe``; channel major, tap ``3*ky+kx`` minor); the biases sit in a second memory, one word
``(b << ceil(log2 G')) | k`` a sub-step (the weight word without its step bits).

Cycles per frame: the compute side takes a window beat every ``G`` cycles, so the block runs at
:func:`contract.cycles.window_cycles` with ``cycles_per_beat = G``; the
:attr:`DWConv3x3.latency` cycles of the compute pipeline are paid once for a lone frame and
overlap the next frame back to back.
"""

from __future__ import annotations

import numpy as np
import torch
from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from contract.constants import DW_KFOLDS, MAC_LATENCY, line_buffer_ram, mac_latency
from contract.cycles import window_cycles, window_output_size
from models.quant.formats import weight_format
from models.reference import ACC_BITS, check_acc_bits

from . import line_buffer
from .datapath import check_datapath, mac_sums, stored_codes
from .dense_line_buffer import DenseLineBuffer
from .line_buffer import LineBuffer
from .mac import Pipeline
from .skid import skid_after
from .stream import TokenBlock, TokenShape
from .weight_rom import rom_slices, weight_rom

__all__ = ["DWConv3x3", "LATENCY", "weight_codes", "window_generator"]

#: Cycles of the window read and the output register; a block's :attr:`DWConv3x3.latency` adds its
#: operand registers, products and adder tree (:func:`contract.constants.mac_latency` of 9).
LATENCY = MAC_LATENCY



def weight_codes(fmt, weight) -> np.ndarray:
    """Hardware codes of integer weights (the format's own datapath), checking that every value is
    representable (:func:`hw.datapath.stored_codes`)."""
    return stored_codes(fmt, "", weight)


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


def window_generator(*, shape, stride, slots, kernel=3, dense=False, margin=0):
    """The window conv's line buffer: on a dense network the
    :class:`~hw.dense_line_buffer.DenseLineBuffer` (its row memories where
    :func:`contract.constants.line_buffer_ram` puts them; ``margin``: the border sites it does not
    send), else the sparse :class:`~hw.line_buffer.LineBuffer` with ``slots`` row slots."""
    if not dense:
        if margin:
            raise ValueError("a window conv folds its crop (margin) on dense maps only")
        return LineBuffer(shape=shape, stride=stride, slots=slots, kernel=kernel)
    depth = (shape.width if stride == 1 else -(-shape.width // 2)) * shape.beats_per_site
    ram = line_buffer_ram(shape.lanes * shape.data_width, depth)
    return DenseLineBuffer(shape=shape, stride=stride, kernel=kernel, ram=ram, margin=margin)


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
    pe : int, optional
        Channels computed per cycle (divides ``lanes``; default ``lanes``): each window beat of
        ``lanes`` channels takes ``G = lanes / pe`` cycles, ``pe`` channels each, so the output
        carries ``pe`` lanes. At stride 2 the writer takes four input sites per output site:
        ``lanes = 4 pe`` keeps the ``9 pe`` multipliers busy instead of idle 3/4 of the time.
    slots : int, optional
        Row slots of the line buffer (default :data:`hw.line_buffer.DEFAULT_SLOTS`).
    datapath : str
        Multiplier datapath: ``"dsp"``, ``"lut"`` or ``"shift-add"`` (DyBit); empty: the format's
        default (:func:`hw.datapath.mac_sums`).
    dense : bool
        Every input frame holds every site (a dense network): the window generator may rely on it.
    margin : int
        Dense maps at stride 1: the output sites closer than this to a border are not computed
        (the crop after a zero-padded conv, folded: :func:`models.ops.crop.folded_margin`).
    kfold : int
        1 (default: the 9 taps at once), 3 (one kernel row a cycle, 3 products per channel) or 9
        (one tap a cycle, 1 product per channel).

    Attributes
    ----------
    i : In(stream.Signature(shape.layout()))
        Input tokens.
    o : Out(stream.Signature(o_shape.layout()))
        Output tokens at the output sites: ``C / lanes`` beats of ``lanes`` int32 accumulators.
    o_shape : TokenShape
        ``(H_out, W_out, C, pe, 32)``.
    """

    def __init__(self, *, shape, stride, fmt, weight, bias, pe=None, slots=None, datapath="",
                 dense=False, margin=0, kfold=1):
        c = getattr(shape, "channels", None)
        lanes = getattr(shape, "lanes", None)
        pe = lanes if pe is None else pe
        if not isinstance(pe, int) or pe < 1 or not lanes or lanes % pe:
            raise ValueError(f"pe must be a positive divisor of lanes={lanes}, not {pe!r}")
        self.pe = pe
        self.dense = bool(dense)
        self.margin = margin
        if kfold not in DW_KFOLDS:
            raise ValueError(f"kfold must be 1, 3 or 9 (the window's 9 taps over that many "
                             f"cycles), not {kfold!r}")
        self.kfold = kfold
        self.fmt, self.weight, self.bias, self.codes, self.slots = check_window_conv(
            shape=shape, stride=stride, fmt=fmt, weight=weight, weight_shape=(c, 1, 3, 3),
            bias=bias, slots=slots, name="depthwise conv")
        self.datapath = check_datapath(self.fmt.name, datapath)
        if self.datapath == "dsp2":
            raise ValueError("a depthwise conv has no two output channels that share an "
                             "activation: no dsp2 datapath")
        self.codes = stored_codes(self.fmt, self.datapath, self.weight)
        self.i_shape, self.stride = shape, stride
        ho, wo = window_output_size(shape.height, shape.width, stride)
        self.o_shape = TokenShape(height=ho, width=wo, channels=c, lanes=pe,
                                  data_width=ACC_BITS)
        self.latency = mac_latency(self.fmt.name, 9 // kfold, self.datapath)
        super().__init__(shape, self.o_shape)

    def cycles_per_frame(self, active_sites, output_sites=None):
        s = self.i_shape
        return window_cycles(height=s.height, width=s.width, channels=s.channels, lanes=s.lanes,
                             stride=self.stride, active_sites=active_sites,
                             output_sites=output_sites,
                             cycles_per_beat=s.lanes // self.pe * self.kfold,
                             margin=self.margin)

    def elaborate(self, platform):
        m = Module()
        lanes, pe = self.i_shape.lanes, self.pe
        ng = lanes // pe                          # cycles per window beat (G)
        gbits = (ng - 1).bit_length()
        nb = self.i_shape.beats_per_site
        abits = self.i_shape.data_width
        cb = self.fmt.bits
        m.submodules.lb = lb = window_generator(shape=self.i_shape, stride=self.stride,
                                                slots=self.slots, dense=self.dense,
                                                margin=self.margin)
        wiring.connect(m, wiring.flipped(self.i), lb.i)
        # the line buffer's control sees a registered ready, not this unit's enable
        lbo = skid_after(m, lb.o, lb.out_layout, "lb_skid")

        nf = self.kfold                           # steps per sub-step (kernel rows or taps)
        fbits = (nf - 1).bit_length()
        n = 9 // nf                               # taps multiplied per cycle and channel
        # word ((b << gbits) | k) << fbits | r: the pe channels b*lanes + k*pe .. of window beat
        # b, sub-step k, taps r*9/nf .. (kernel rows at nf = 3)
        depth_w = nb << (gbits + fbits)
        wwords = [0] * depth_w
        # the biases once per sub-step (the accumulator starts from them at its first step):
        # word (b << gbits) | k, the weight word without its step bits
        bwords = [0] * (nb << gbits)
        for b in range(nb):
            for k in range(ng):
                chans = [b * lanes + k * pe + i for i in range(pe)]
                bwords[(b << gbits) | k] = sum(
                    (int(self.bias[ch]) & ((1 << ACC_BITS) - 1)) << (i * ACC_BITS)
                    for i, ch in enumerate(chans))
                for r in range(nf):
                    word = 0
                    for i, ch in enumerate(chans):
                        for c in range(n):
                            t = r * n + c
                            word |= int(self.codes[ch, 0, t // 3, t % 3]) << ((i * n + c) * cb)
                    wwords[(((b << gbits) | k) << fbits) | r] = word
        # one slice of the (shallow) weight ROM per channel on a fabric datapath
        # (hw/weight_rom.py)
        w_rd = weight_rom(m, "wmem", width=pe * n * cb, depth=depth_w, init=wwords,
                          slices=rom_slices(self.datapath, pe))
        m.submodules.bmem = bmem = Memory(shape=unsigned(pe * ACC_BITS), depth=len(bwords),
                                          init=bwords)
        b_rd = bmem.read_port()

        en = Signal()
        m.d.comb += en.eq(~self.o.valid | self.o.ready)
        win = lbo.payload
        # stage 0: sub-step k, row step r; the first step takes the live window beat (so the line
        # buffer moves on at once, as for a full conv's output groups) and keeps it for the rest
        k = Signal(range(max(ng, 2)))
        r = Signal(range(max(nf, 2)))
        first = (k == 0) & (r == 0) if nf > 1 else k == 0
        held = Signal.like(win)
        cur = Signal.like(win)
        m.d.comb += cur.eq(Mux(first, win.as_value(), held.as_value()))
        last_r = Signal()
        m.d.comb += last_r.eq((r == nf - 1) | cur.eof)
        last = Signal()
        m.d.comb += last.eq(((k == ng - 1) & last_r) | cur.eof)
        issue = Signal()
        m.d.comb += issue.eq(en & (~first | lbo.valid))
        parts = ([r[:fbits]] if fbits else []) + ([k[:gbits]] if gbits else []) + [cur.beat]
        word = Cat(*parts) if len(parts) > 1 else cur.beat
        m.d.comb += [
            lbo.ready.eq(en & first),
            w_rd.addr.eq(word), w_rd.en.eq(en),
            b_rd.en.eq(en),
        ]
        if ng > 1 or nf > 1:
            with m.If(issue):
                if nf > 1:
                    m.d.sync += r.eq(Mux(last_r, 0, r + 1))
                    with m.If(last_r):
                        m.d.sync += k.eq(Mux(last, 0, k + 1))
                else:
                    m.d.sync += k.eq(Mux(last, 0, k + 1))
                with m.If(first):
                    m.d.sync += held.eq(win)
        # stage 1: the sub-step's pe lanes of the row step's taps registered, its weight word
        # arriving
        v1 = Signal()
        taps1 = [[Signal(signed(abits), name=f"tap{c}_{i}") for i in range(pe)] for c in range(n)]
        y1, x1, eof1 = Signal.like(win.y), Signal.like(win.x), Signal()
        f1, l1 = Signal(), Signal()            # the first and the last row step of a sub-step
        with m.If(en):
            m.d.sync += [v1.eq(issue), y1.eq(cur.y), x1.eq(cur.x), eof1.eq(cur.eof),
                         f1.eq(r == 0), l1.eq(last_r)]
            for c in range(n):
                for i in range(pe):
                    if nf == 1:
                        src = [cur.taps[c][kk * pe + i] for kk in range(ng)]
                        m.d.sync += taps1[c][i].eq(Array(src)[k] if ng > 1 else src[0])
                        continue
                    # entry (kk << fbits) | rr: row rr's tap c of channel kk * pe + i
                    src = [cur.taps[rr * n + c][kk * pe + i] if rr < nf else 0
                           for kk in range(ng) for rr in range(1 << fbits)]
                    sel = Cat(r[:fbits], k[:gbits]) if gbits else r[:fbits]
                    m.d.sync += taps1[c][i].eq(Array(src)[sel])
        # then the operand registers, the products and the adder tree: `depth` more stages, with
        # the bias memory read `depth` stages late so that its word arrives with the sums
        pipe = Pipeline(m, en)
        depth = self.latency - LATENCY
        codes = pipe.data(w_rd.data, name="codes")
        acts = [[pipe.data(taps1[c][i], name=f"act{c}_{i}") for i in range(pe)] for c in range(n)]
        sums = mac_sums(pipe, self.fmt, self.datapath, pe=pe, n=n,
                        code=lambda i, c: codes[(i * n + c) * cb:(i * n + c + 1) * cb],
                        act=lambda i, c: acts[c][i])
        m.d.comb += b_rd.addr.eq(pipe.delay(word[fbits:] if fbits else word, depth,
                                            name="bias_word"))
        vd, yd, xd, eofd, fd, ld = (pipe.delay(s_, depth) for s_ in (v1, y1, x1, eof1, f1, l1))
        # the output register (with kfold, the accumulator of the row steps)
        op = self.o.payload
        with m.If(en):
            m.d.sync += [self.o.valid.eq(vd & ld), op.y.eq(yd), op.x.eq(xd), op.eof.eq(eofd)]
            for i in range(pe):
                bias = b_rd.data[i * ACC_BITS:(i + 1) * ACC_BITS].as_signed()
                if nf > 1:
                    acc = Signal(signed(ACC_BITS), name=f"acc{i}")
                    total = Mux(fd, bias, acc) + sums[i]
                    with m.If(vd):
                        m.d.sync += acc.eq(total)
                    m.d.sync += op.data[i].eq(Mux(eofd, 0, total))
                else:
                    m.d.sync += op.data[i].eq(Mux(eofd, 0, sums[i] + bias))
        return m
