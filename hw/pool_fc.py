"""Global average pooling over the active sites, optionally followed by a fully connected layer.

:class:`GlobalAvgPool` sums each channel over the frame's sites (one register per channel, updated
as the beats stream in) and counts the sites. At the end-of-frame beat it turns each sum into
``avg_round(sum, n) = floor((2*sum + n) / (2*n))`` (0 for an empty frame), exactly as
:func:`models.reference.avg_round`, with ``lanes`` sequential restoring dividers (one quotient bit
per cycle, :func:`div_bits` cycles per beat), and emits the pooled vector as one token at (0, 0) in
beats of ``lanes`` channels, then ``eof``. The output map is 1 x 1, at the input's scale.

:class:`PoolFC` chains the pool, a width converter if the linear layer's lanes differ, and the
linear layer as a one-site :class:`~hw.conv1x1.Conv1x1` emitting int32 accumulators (the
classifier's logits: one token at (0, 0), then ``eof``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring

from contract.cycles import conv1x1_cycles, sum_bits
from contract.cycles import div_bits as _div_bits
from contract.cycles import gap_cycles as cycles_per_frame

from .conv1x1 import Conv1x1
from .stream import TokenBlock, TokenShape
from .width import WidthConverter

__all__ = ["GlobalAvgPool", "PoolFC", "div_bits", "cycles_per_frame", "pool_fc_cycles"]





def pool_fc_cycles(*, active_sites: float, channels: int, lanes: int, height: int, width: int,
                   c_out: int, fc_lanes: int, pe: int, data_width: int = 8) -> float:
    """Cycles per frame of :class:`PoolFC`: the pool, then the linear layer on one site.

    The linear layer's ``(C / fc_lanes) * (c_out / pe)`` MAC cycles do not overlap the pool's
    division of the same frame (they need its result); its input fill overlaps the pool's output.
    A lone frame's last beat leaves ``Conv1x1.latency - 1`` cycles later (measured, with
    ``fc_lanes == lanes``).
    """
    return (cycles_per_frame(active_sites=active_sites, channels=channels, lanes=lanes,
                             height=height, width=width, data_width=data_width)
            + conv1x1_cycles(active_sites=1, c_in=channels, c_out=c_out, lanes=fc_lanes, pe=pe))


def div_bits(shape: TokenShape) -> int:
    """Bits of the divider's dividend for a pool over ``shape``'s map (one cycle each)."""
    return _div_bits(height=shape.height, width=shape.width, data_width=shape.data_width)


def _sum_bits(shape: TokenShape) -> int:
    return sum_bits(height=shape.height, width=shape.width, data_width=shape.data_width)


class GlobalAvgPool(TokenBlock):
    """Global average pooling of a token stream.

    Parameters
    ----------
    shape : TokenShape
        Input stream (activations, ``data_width`` bits).

    Attributes
    ----------
    i : In(stream.Signature(shape.layout()))
    o : Out(stream.Signature(o_shape.layout()))
        One token at (0, 0) with ``shape.channels`` channels in ``shape.lanes`` lanes, then eof.
    """

    def __init__(self, *, shape):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        self.i_shape = shape
        self.o_shape = TokenShape(height=1, width=1, channels=shape.channels, lanes=shape.lanes,
                                  data_width=shape.data_width)
        super().__init__(shape, self.o_shape)

    def elaborate(self, platform):
        m = Module()
        lanes = self.i_shape.lanes
        nb = self.i_shape.beats_per_site
        sw = _sum_bits(self.i_shape)
        dw = div_bits(self.i_shape)
        sites = self.i_shape.height * self.i_shape.width

        # the beats' sums rotate: ``sums[0]`` is always the current beat's (no per-beat decoders
        # or multiplexers; a frame's ``sites * nb`` beats turn the ring whole times)
        sums = [Signal(signed(sw * lanes), name=f"sum{k}") for k in range(nb)]

        def rotate(head):
            """The ring moves on by one beat, ``head`` replacing the current beat's sums."""
            return [sums[k].eq(sums[k + 1]) for k in range(nb - 1)] + [sums[nb - 1].eq(head)]
        count = Signal(range(sites + 1))
        beat = Signal(range(max(nb, 2)))
        step = Signal(range(dw + 1))

        # one restoring divider per lane: rem, quotient/dividend shift register, sign
        rem = [Signal(unsigned(dw + 1), name=f"rem{i}") for i in range(lanes)]
        qa = [Signal(unsigned(dw), name=f"qa{i}") for i in range(lanes)]
        neg = [Signal(name=f"neg{i}") for i in range(lanes)]
        divisor = Signal(unsigned(dw))
        m.d.comb += divisor.eq(count << 1)
        loads = []
        # Timing: each lane's divider is driven by registers of its own, not by the FSM's state
        # and the site count that every lane shares: whether the next cycle is the sign step
        # (`mag`) or a quotient step (`div`), and the divisor, copied per lane where there are
        # several lanes (kept apart in synthesis: hw.synth moves `keep` onto the flip-flops).
        # At 16 lanes the state register into every lane's remainder (about 430 flip-flops)
        # was the block's worst path on ECP5, 1.2 ns of logic and 8.1 ns of routing
        # (docs/IMPLEMENT.md, stop 60). The copies change no cycle.
        keep = {"keep": 1} if lanes > 1 else {}
        mag = [Signal(name=f"mag{i}", attrs=keep) for i in range(lanes)]
        div = [Signal(name=f"div{i}", attrs=keep) for i in range(lanes)]
        dvs = [Signal(unsigned(dw), name=f"divisor{i}", attrs=keep) for i in range(lanes)]
        m.d.sync += [d.eq(divisor) for d in dvs]  # count holds from LOAD to the frame's end

        # Combinational outputs are driven outside the FSM: Yosys emits comb statements inside a
        # state as `always @*` blocks, which Icarus never evaluates while their inputs keep their
        # initial values (i.ready would read x until the first state change).
        for i in range(lanes):
            s = sums[0].word_select(i, sw).as_signed()
            num = Signal(signed(dw + 1), name=f"num{i}")  # registered in LOAD (timing)
            loads.append((num, (s << 1) + count, Mux(num < 0, -num + dvs[i] - 1, num)))
            q = Mux(neg[i], -qa[i], qa[i])
            m.d.comb += self.o.payload.data[i].eq(Mux(count == 0, 0, q))
        with m.FSM() as fsm:
            with m.State("ACC"):
                with m.If(self.i.valid):
                    with m.If(self.i.payload.eof):
                        m.d.sync += beat.eq(0)
                        m.next = "LOAD"
                    with m.Else():
                        word = sums[0]
                        new = Cat(*[
                            (word[i * sw:(i + 1) * sw].as_signed()
                             + self.i.payload.data[i])[:sw] for i in range(lanes)
                        ])
                        m.d.sync += rotate(new)
                        with m.If(beat == nb - 1):
                            m.d.sync += [beat.eq(0), count.eq(count + 1)]
                        with m.Else():
                            m.d.sync += beat.eq(beat + 1)
            with m.State("LOAD"):
                # the beat's sums, doubled and offset (one cycle: the word select and an add)
                for num, value, _ in loads:
                    m.d.sync += num.eq(value)
                m.d.sync += [f.eq(1) for f in mag]
                m.next = "MAG"
            with m.State("MAG"):
                m.d.sync += step.eq(0)
                m.d.sync += [f.eq(0) for f in mag] + [f.eq(1) for f in div]
                m.next = "DIV"
            with m.State("DIV"):
                m.d.sync += step.eq(step + 1)
                with m.If(step == dw - 1):
                    m.d.sync += [f.eq(0) for f in div]
                    m.next = "EMIT"
            with m.State("EMIT"):
                with m.If(self.o.ready):
                    m.d.sync += rotate(0)
                    with m.If(beat == nb - 1):
                        m.d.sync += beat.eq(0)
                        m.next = "EOF"
                    with m.Else():
                        m.d.sync += beat.eq(beat + 1)
                        m.next = "LOAD"
            with m.State("EOF"):
                with m.If(self.o.ready):
                    m.d.sync += count.eq(0)
                    m.next = "ACC"
        for i, (num, _, magnitude) in enumerate(loads):
            with m.If(mag[i]):
                # floor(num / d) = -ceil(-num / d) = -((|num| + d - 1) // d) for num < 0
                m.d.sync += [rem[i].eq(0), qa[i].eq(magnitude), neg[i].eq(num < 0)]
            with m.Elif(div[i]):
                r = Cat(qa[i][dw - 1], rem[i][:dw])
                sub = r >= dvs[i]
                m.d.sync += [
                    rem[i].eq(Mux(sub, r - dvs[i], r)),
                    qa[i].eq(Cat(sub, qa[i][:dw - 1])),
                ]
        m.d.comb += [
            self.i.ready.eq(fsm.ongoing("ACC")),
            self.o.valid.eq(fsm.ongoing("EMIT") | fsm.ongoing("EOF")),
            self.o.payload.eof.eq(fsm.ongoing("EOF")),
        ]
        return m


class PoolFC(TokenBlock):
    """Global average pool, then a linear layer: int32 logits as one token at (0, 0), then eof.

    Parameters
    ----------
    shape : TokenShape
        Input stream of the pool.
    c_out : int
        Outputs of the linear layer.
    fc_lanes, pe : int
        Lanes and PE of the linear layer (divide ``shape.channels`` and ``c_out``).
    fmt, weight, bias
        As :class:`~hw.conv1x1.Conv1x1` (``weight`` shape ``[c_out, channels]``).

    Attributes
    ----------
    i : In(stream.Signature(shape.layout()))
    o : Out(stream.Signature(o_shape.layout()))
    """

    def __init__(self, *, shape, c_out, fc_lanes, pe, fmt, weight, bias):
        self.pool = GlobalAvgPool(shape=shape)
        self.conv = None
        if fc_lanes != shape.lanes:
            self.conv = WidthConverter(shape=self.pool.o_shape, lanes_out=fc_lanes)
            fc_in = self.conv.o_shape
        else:
            fc_in = self.pool.o_shape
        self.fc = Conv1x1(shape=fc_in, c_out=c_out, pe=pe, fmt=fmt, weight=weight, bias=bias)
        super().__init__(shape, self.fc.o_shape)

    def elaborate(self, platform):
        m = Module()
        m.submodules.pool = self.pool
        m.submodules.fc = self.fc
        wiring.connect(m, wiring.flipped(self.i), self.pool.i)
        if self.conv is not None:
            m.submodules.width = self.conv
            wiring.connect(m, self.pool.o, self.conv.i)
            wiring.connect(m, self.conv.o, self.fc.i)
        else:
            wiring.connect(m, self.pool.o, self.fc.i)
        wiring.connect(m, self.fc.o, wiring.flipped(self.o))
        return m
