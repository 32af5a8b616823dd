"""Stream FIFO: :class:`amaranth.lib.fifo.SyncFIFOBuffered` with token-stream ports.

One beat per cycle in and out; a beat written into an empty FIFO appears at the output
:data:`LATENCY` cycles later. ``SyncFIFOBuffered`` of depth 1 or 2 cannot read and write its inner
storage in the same cycle and runs at half rate, so the storage is ``max(depth, MIN_DEPTH)`` beats
(the output register included). After it, a read register and a
:class:`~hw.slice.RegisterSlice` hold three beats more
(:data:`contract.constants.FIFO_SLICE_BEATS`): the storage's read data (a block RAM's: 5.8 ns from
the clock on ECP5, where Yosys leaves the DP16KD's output register off) goes into the read
register with nothing but wire before it, the slice's multiplexer comes after that register, and
the consumer's ``ready`` ends at the slice's register; two cycles of latency more.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from contract.constants import FIFO_LATENCY, FIFO_MIN_DEPTH
from contract.cycles import stream_cycles as cycles_per_frame

from .slice import RegisterSlice

__all__ = ["StreamFIFO", "LATENCY", "MIN_DEPTH", "cycles_per_frame"]

#: Cycles from a beat's acceptance into an empty FIFO to ``valid`` at its output.
LATENCY = FIFO_LATENCY
#: Smallest storage that sustains one beat per cycle.
MIN_DEPTH = FIFO_MIN_DEPTH



class StreamFIFO(wiring.Component):
    """First-in first-out buffer for a stream of ``layout`` payloads.

    Parameters
    ----------
    layout : data.Layout or shape-castable
        Payload layout (kept as ``self.layout``).
    depth : int
        Beats of storage, at least 1 (raised to :data:`MIN_DEPTH`).

    Attributes
    ----------
    i : In(stream.Signature(layout))
    o : Out(stream.Signature(layout))
    level : Out(range(depth + 4))
        Beats currently stored (the read register's and the register slice's included).
    """

    def __init__(self, *, layout, depth):
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise TypeError(f"depth must be a positive integer, not {depth!r}")
        self.layout = layout
        self.depth = max(depth, MIN_DEPTH)
        super().__init__({
            "i": In(stream.Signature(layout)),
            "o": Out(stream.Signature(layout)),
            "level": Out(range(self.depth + 4)),
        })

    def elaborate(self, platform):
        m = Module()
        i_bits, o_bits = Value.cast(self.i.payload), Value.cast(self.o.payload)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=len(i_bits), depth=self.depth)
        # the storage's read data ends at a register of its own, the consumer's ready at the
        # slice's
        m.submodules.slice = out = RegisterSlice(layout=unsigned(len(o_bits)))
        rd = Signal(len(o_bits), reset_less=True)  # data: rd_valid says when it holds a beat
        rd_valid = Signal()
        advance = Signal()
        m.d.comb += advance.eq(~rd_valid | out.i.ready)
        with m.If(advance):
            m.d.sync += [rd.eq(fifo.r_data), rd_valid.eq(fifo.r_rdy)]
        m.d.comb += [
            fifo.w_data.eq(i_bits),
            fifo.w_en.eq(self.i.valid),
            self.i.ready.eq(fifo.w_rdy),
            fifo.r_en.eq(advance),
            out.i.payload.eq(rd),
            out.i.valid.eq(rd_valid),
            o_bits.eq(out.o.payload),
            self.o.valid.eq(out.o.valid),
            out.o.ready.eq(self.o.ready),
            self.level.eq(fifo.level + rd_valid + out.count),
        ]
        return m
