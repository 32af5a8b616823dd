"""Register slice: a stream edge whose outputs and whose ``i.ready`` are all registers.

Why: a :class:`~hw.skid.SkidBuffer` registers ``ready`` but passes ``payload`` and ``valid``
through a multiplexer, so the producer's output reaches the consumer's logic in the same cycle.
After a FIFO that output is a block RAM's read data, slow to leave the RAM (a DP16KD's clock to
output on ECP5, a RAMB's without its output register on Xilinx); with the consumer's control
decode after it, it was the worst path of whole networks (digits on LFE5U-85F: FIFO read data ->
the global pool's enables, 12.3 ns; eventdigits on XC7Z020: the skid's multiplexer before the
sparse line buffer's writer). A register slice ends the RAM's path at its own register.

Behaviour: one beat per cycle through, with :data:`LATENCY` = 1 cycle. ``o.payload`` and
``o.valid`` are the main register; when the consumer stalls, one more beat waits in a second
register and ``i.ready`` (``~second full``, a register) falls. It holds at most
:data:`contract.constants.FIFO_SLICE_BEATS` = 2 beats, which a FIFO's hold counts
(:func:`models.ops.add.fifo_hold`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RegisterSlice", "LATENCY"]

#: Cycles from a beat's acceptance to ``o.valid``.
LATENCY = 1


class RegisterSlice(wiring.Component):
    """A two-beat register slice on a stream of ``layout`` payloads.

    Parameters
    ----------
    layout : data.Layout or shape-castable
        Payload layout (kept as ``self.layout``).

    Attributes
    ----------
    i : In(stream.Signature(layout))
        ``i.ready`` is a register.
    o : Out(stream.Signature(layout))
        ``o.valid`` and ``o.payload`` are registers.
    count : Out(range(3))
        Beats held.
    """

    def __init__(self, *, layout):
        self.layout = layout
        super().__init__({
            "i": In(stream.Signature(layout)),
            "o": Out(stream.Signature(layout)),
            "count": Out(range(3)),
        })

    def elaborate(self, platform):
        m = Module()
        i_bits, o_bits = Value.cast(self.i.payload), Value.cast(self.o.payload)
        main = Signal(len(i_bits))
        main_valid = Signal()
        spare = Signal(len(i_bits))
        spare_valid = Signal()
        ready = Signal(init=1)  # ``~spare_valid``, a register of its own
        take = self.i.valid & ready
        m.d.comb += [
            self.i.ready.eq(ready),
            self.o.valid.eq(main_valid),
            o_bits.eq(main),
            self.count.eq(main_valid + spare_valid),
        ]
        with m.If(self.o.ready | ~main_valid):
            # the main register moves on: the waiting beat first, else the offered one
            with m.If(spare_valid):
                m.d.sync += [main.eq(spare), main_valid.eq(1), spare_valid.eq(0), ready.eq(1)]
            with m.Else():
                m.d.sync += [main.eq(i_bits), main_valid.eq(take)]
        with m.Elif(take):
            # the consumer stalls with a beat in the main register: the offered one waits
            m.d.sync += [spare_valid.eq(1), ready.eq(0)]
        # the spare register takes the offered payload whenever it may be needed (``ready``, a
        # register, is its only enable): its many bits then wait on no logic of the consumer's
        with m.If(ready):
            m.d.sync += spare.eq(i_bits)
        return m
