"""Max pooling over a k x k window with "same" padding (k = 3, 5, 7; stride 1 or 2): the ImageNet
stem's ``MaxPool2d(3, 2, 1)``, an SPP block's ``MaxPool2d(5, 1, 2)``.

The window conv's line buffer (:func:`hw.dwconv.window_generator`, dense or sparse) turns the
input tokens into window beats (``k x k`` taps of ``lanes`` values and a tap-valid mask) at the
"same" conv's output sites; each lane takes the maximum of its valid taps (a tap outside the map,
or an absent neighbour on a sparse map, counts as minus infinity, as torch pads a max pool; the
centre tap is always valid). The maximum is a tree of compares in two register stages, then the
output register: one beat a cycle, the window conv's cycles at one cycle a window beat
(:func:`contract.cycles.window_cycles`). Values pass through: the output keeps the input's width.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring

from contract.constants import LINE_BUFFER_SLOTS, window_max_latency
from contract.cycles import window_cycles, window_output_size

from .dwconv import window_generator
from .mac import Pipeline
from .skid import skid_after
from .stream import TokenBlock, TokenShape

__all__ = ["WindowMaxPool", "latency"]

#: Cycles from a window beat taken from the line buffer's skid to its output ``valid``.
latency = window_max_latency


class WindowMaxPool(TokenBlock):
    """``k x k`` "same" max pooling of a token stream at stride 1 or 2.

    Parameters
    ----------
    shape : TokenShape
        Input stream.
    kernel : int
        3, 5 or 7.
    stride : int
        1 or 2.
    dense : bool
        Every frame holds every site (the dense line buffer), else the sparse one.
    slots : int, optional
        Row slots of the sparse line buffer (its default).
    """

    def __init__(self, *, shape, kernel=3, stride=2, dense=True, slots=None):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        if kernel not in (3, 5, 7) or stride not in (1, 2):
            raise ValueError(f"a window max pool is 3x3, 5x5 or 7x7 at stride 1 or 2, not "
                             f"{kernel}x{kernel} stride {stride}")
        self.kernel, self.stride, self.dense = kernel, stride, dense
        self.slots = LINE_BUFFER_SLOTS if slots is None else slots
        ho, wo = window_output_size(shape.height, shape.width, stride)
        o_shape = TokenShape(height=ho, width=wo, channels=shape.channels, lanes=shape.lanes,
                             data_width=shape.data_width, signed=shape.signed)
        super().__init__(shape, o_shape)

    def cycles_per_frame(self, active_sites, output_sites=None):
        s = self.i_shape
        return window_cycles(height=s.height, width=s.width, channels=s.channels, lanes=s.lanes,
                             stride=self.stride, active_sites=active_sites,
                             output_sites=output_sites, cycles_per_beat=1)

    def elaborate(self, platform):
        m = Module()
        s = self.i_shape
        w = s.data_width
        taps = self.kernel * self.kernel
        m.submodules.lb = lb = window_generator(shape=s, stride=self.stride, slots=self.slots,
                                                kernel=self.kernel, dense=self.dense)
        wiring.connect(m, wiring.flipped(self.i), lb.i)
        lbo = skid_after(m, lb.o, lb.out_layout, "lb_skid")
        win = lbo.payload
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), lbo.ready.eq(en)]
        pipe = Pipeline(m, en)
        low = -(1 << (w - 1))
        # stage 0: the window beat as the skid buffer gives it, registered (no logic between the
        # skid's select and the first register); then the masked taps, one compare level a
        # stage: the skid's `full` through the mask and two compare levels was its worst path
        # on ECP5 (6.3 ns of logic, 11.7 ns of routing: 56 MHz alone at 1 lane)
        win0 = Signal(lb.out_layout, name="win0")
        v0 = Signal(name="v0")
        with m.If(en):
            m.d.sync += [win0.eq(win), v0.eq(lbo.valid)]
        ctrl = [v0, win0.y, win0.x, win0.eof]
        level = []
        for ln in range(s.lanes):
            level.append([pipe.data(Mux(win0.mask[t], win0.taps[t][ln], low), name=f"t{ln}_{t}")
                          for t in range(taps)])
        ctrl = [pipe.reg(v) for v in ctrl]
        depth = 0
        while len(level[0]) > 1:
            depth += 1
            nxt = []
            for ln, vals in enumerate(level):
                pairs = [Mux(a > b, a, b) for a, b in zip(vals[::2], vals[1::2], strict=False)]
                pairs += [vals[-1]] if len(vals) % 2 else []
                nxt.append([pipe.data(v, name=f"m{ln}_{depth}_{i}") for i, v in enumerate(pairs)])
            level = nxt
            ctrl = [pipe.reg(v) for v in ctrl]
        maxes = [vals[0] for vals in level]
        v2, y2, x2, e2 = ctrl
        op = self.o.payload
        with m.If(en):
            m.d.sync += [self.o.valid.eq(v2), op.y.eq(Mux(e2, 0, y2)), op.x.eq(Mux(e2, 0, x2)),
                         op.eof.eq(e2)]
            for ln in range(s.lanes):
                m.d.sync += op.data[ln].eq(Mux(e2, 0, maxes[ln].as_signed()))
        return m

