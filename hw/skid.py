"""Skid buffer: a stream edge whose ``i.ready`` is a register.

Why: every block advances its pipeline on ``en = ~o.valid | o.ready``, and passes ``en`` on as its
``i.ready``. Without a break, a FIFO's level reaches through the requantizer, the MAC unit and the
line buffer in one cycle, on enable nets of hundreds to thousands of loads: the stall chain that
held every whole network to 64-78 MHz in the Xilinx estimate (docs/IMPLEMENT.md). This block cuts
that chain: its ``i.ready`` is ``~full``, a flip-flop, so the producer's enable starts at a
register.

Behaviour: one beat per cycle through, no added latency (``o`` is ``i`` while the buffer is empty).
When the consumer refuses a beat the producer offers, the buffer takes it (``full``); the next
cycles offer the buffered beat, and ``i.ready`` is low until it has gone. It holds at most one beat
(:data:`contract.constants.SKID_BEATS`), which a stage's hold (:meth:`models.ops.base.Op.hold`)
and a FIFO's (:func:`models.ops.add.fifo_hold`) count.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer", "skid_after"]


class SkidBuffer(wiring.Component):
    """A one-beat skid buffer on a stream of ``layout`` payloads.

    Parameters
    ----------
    layout : data.Layout or shape-castable
        Payload layout (kept as ``self.layout``).

    Attributes
    ----------
    i : In(stream.Signature(layout))
        ``i.ready`` is a register (``~full``, kept apart from ``full``).
    o : Out(stream.Signature(layout))
    """

    def __init__(self, *, layout):
        self.layout = layout
        super().__init__({
            "i": In(stream.Signature(layout)),
            "o": Out(stream.Signature(layout)),
        })

    def elaborate(self, platform):
        m = Module()
        i_bits, o_bits = Value.cast(self.i.payload), Value.cast(self.o.payload)
        full = Signal()
        # ``~full`` in a register of its own, so no inverter sits before the producer's enable
        ready = Signal(init=1)
        buf = Signal(len(i_bits), reset_less=True)
        m.d.comb += [
            self.i.ready.eq(ready),
            self.o.valid.eq(full | self.i.valid),
            o_bits.eq(Mux(full, buf, i_bits)),
        ]
        # The buffer takes the offered beat on every cycle it is empty, not only when the
        # consumer refuses it: its clock enable is then the register ``full`` (inverted), not
        # the consumer's ``ready`` through ``i.valid`` and the producer's logic. That chain,
        # fanned out over a window beat's hundreds of bits, was the digits network's worst path
        # on LFE5U-85F (13.6 of 14.8 ns routing, docs/IMPLEMENT.md). An empty buffer's word is
        # never offered (``o`` is ``i`` then), so what it holds while empty does not matter.
        # ``full`` (which already chooses every output bit), not ``ready``: the producer's
        # control starts at ``ready``, whose net must stay small.
        with m.If(~full):
            m.d.sync += buf.eq(i_bits)
        with m.If(full):
            with m.If(self.o.ready):
                m.d.sync += [full.eq(0), ready.eq(1)]
        with m.Elif(self.i.valid & ~self.o.ready):
            m.d.sync += [full.eq(1), ready.eq(0)]
        return m


def skid_after(m, port, layout, name: str):
    """Put a :class:`SkidBuffer` called ``name`` after the stream ``port`` (an ``Out`` stream of
    a submodule of ``m``) and return the buffer's output stream, whose producer sees a registered
    ``ready``."""
    m.submodules[name] = skid = SkidBuffer(layout=layout)
    wiring.connect(m, port, skid.i)
    return skid.o
