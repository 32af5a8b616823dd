"""Residual add of two token streams with identical sites, requantized in one rounding step.

Per lane: ``y = clamp((a * Ma + b * Mb + 2^(S-1)) >> S, lo, hi)`` exactly as
:func:`models.quant.requant.add_requant`. Both inputs carry the same sites in the same order with
the same lanes (the composer inserts width converters where they differ); a beat leaves when both
inputs offer one. Coordinates and ``eof`` are taken from ``a``.

Four pipeline stages (input register, the two products, their sum, shift-clamp) advance together
whenever the output register is empty or drained: one beat per cycle, :data:`LATENCY` cycles from
the joined input to the output.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from contract.constants import RESIDUAL_LATENCY
from contract.cycles import stream_cycles as cycles_per_frame
from models.quant.requant import M_BITS, S_MAX, S_MIN

from .mac import Pipeline
from .stream import TokenShape

__all__ = ["ResidualAdd", "LATENCY", "cycles_per_frame"]

#: Cycles from the joined input beat to the output beat's ``valid``.
LATENCY = RESIDUAL_LATENCY



class ResidualAdd(wiring.Component):
    """``clamp((a*Ma + b*Mb + 2^(S-1)) >> S, lo, hi)`` of two token streams.

    Parameters
    ----------
    shape : TokenShape
        Shape of both inputs and of the output (activations, ``data_width`` bits).
    Ma, Mb : int
        Unsigned multipliers below ``2^M_BITS``.
    S : int
        Shift in ``[S_MIN, S_MAX]``.
    lo, hi : int
        Clamp range; must fit ``shape.data_width`` signed bits.

    Attributes
    ----------
    a, b : In(stream.Signature(shape.layout()))
    o : Out(stream.Signature(shape.layout()))
    """

    def __init__(self, *, shape, Ma, Mb, S, lo, hi):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        for name, v in (("Ma", Ma), ("Mb", Mb)):
            if not isinstance(v, int) or not 0 <= v < (1 << M_BITS):
                raise ValueError(f"{name} must be an integer in [0, 2^{M_BITS}), not {v!r}")
        if not isinstance(S, int) or not S_MIN <= S <= S_MAX:
            raise ValueError(f"S must be an integer in [{S_MIN}, {S_MAX}], not {S!r}")
        qmax = (1 << (shape.data_width - 1)) - 1
        if not -qmax - 1 <= lo <= hi <= qmax:
            raise ValueError(
                f"clamp range [{lo}, {hi}] does not fit {shape.data_width} signed bits"
            )
        self.shape = self.i_shape = self.o_shape = shape
        self.layout = shape.layout()
        self.Ma, self.Mb, self.S, self.lo, self.hi = int(Ma), int(Mb), S, int(lo), int(hi)
        super().__init__({
            "a": In(stream.Signature(self.layout)),
            "b": In(stream.Signature(self.layout)),
            "o": Out(stream.Signature(self.layout)),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self.shape.lanes
        en = Signal()
        join = Signal()
        m.d.comb += [
            en.eq(~self.o.valid | self.o.ready),
            join.eq(self.a.valid & self.b.valid),
            self.a.ready.eq(en & join),
            self.b.ready.eq(en & join),
        ]
        # stage 1: the joined beats registered; stage 2: the two products; stage 3: their sum
        # and the rounding offset; then the shift and clamp into the output register
        pipe = Pipeline(m, en)
        v1 = pipe.reg(join, name="v1")
        a1 = pipe.data(self.a.payload.data.as_value(), name="a1")
        b1 = pipe.data(self.b.payload.data.as_value(), name="b1")
        w = self.shape.data_width
        pw = w + M_BITS + 3
        sums = []
        for i in range(lanes):
            pa = pipe.data(a1[i * w:(i + 1) * w].as_signed() * self.Ma, name=f"pa{i}")
            pb = pipe.data(b1[i * w:(i + 1) * w].as_signed() * self.Mb, name=f"pb{i}")
            sums.append(pipe.reg((pa + pb + (1 << (self.S - 1)))[:pw].as_signed(),
                                 name=f"sum{i}"))
        y3, x3, eof3 = (pipe.delay(v, 3, name=n) for v, n in ((self.a.payload.y, "y"),
                                                               (self.a.payload.x, "x"),
                                                               (self.a.payload.eof, "eof")))
        v3 = pipe.delay(v1, 2, name="v")
        with m.If(en):
            m.d.sync += [
                self.o.valid.eq(v3),
                self.o.payload.y.eq(y3),
                self.o.payload.x.eq(x3),
                self.o.payload.eof.eq(eof3),
            ]
            for i in range(lanes):
                q = sums[i] >> self.S
                y = Mux(q < self.lo, self.lo, Mux(q > self.hi, self.hi, q))
                m.d.sync += self.o.payload.data[i].eq(Mux(eof3, 0, y))
        return m
