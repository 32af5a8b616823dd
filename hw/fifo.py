"""Stream FIFO: a buffered synchronous FIFO with token-stream ports.

One beat per cycle in and out; a beat written into an empty FIFO appears at the output
:data:`LATENCY` cycles later. A buffered FIFO of depth 1 or 2 cannot read and write its inner
storage in the same cycle and runs at half rate, so the storage is ``max(depth, MIN_DEPTH)`` beats
(the output register included). After it, a read register and a
:class:`~hw.slice.RegisterSlice` hold three beats more
(:data:`contract.constants.FIFO_SLICE_BEATS`): the storage's read data (a block RAM's: 5.8 ns from
the clock on ECP5, where Yosys leaves the DP16KD's output register off) goes into the read
register with nothing but wire before it, the slice's multiplexer comes after that register, and
the consumer's ``ready`` ends at the slice's register; two cycles of latency more (a LUT of
Yosys' read-during-write logic sat between the RAM and that register until the storage below).

The storage is the buffered FIFO of ``amaranth.lib.fifo.SyncFIFOBuffered`` (``depth - 1`` entries
in a memory whose synchronous read port is the last entry), cycle for cycle, written here so that
its memory carries Yosys' ``no_rw_check``: a write takes the entry at ``head`` only while the
memory is not full and a read the entry at ``tail`` only while it is not empty, and ``head ==
tail`` only when it is one or the other, so no cycle reads the entry it writes. Without the
attribute Yosys cannot know that and, for a block RAM, keeps a registered copy of every written
word, an address compare and a multiplexer after the RAM's read (``synth_ecp5`` of a 512 x 18
memory: 38 LUT4 and 47 flip-flops, and a LUT between the DP16KD and the read register, on the
path that was the digits network's worst on LFE5U-85F).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
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
        # the storage: `n` entries in memory, the read port's data the last one (`r_valid`)
        n = self.depth - 1
        mem = Memory(shape=unsigned(len(i_bits)), depth=n, init=[], attrs={"no_rw_check": 1})
        m.submodules.storage = mem
        wp, rp = mem.write_port(), mem.read_port(domain="sync")
        self.storage_ports = (wp, rp)  # the last elaboration's: tests watch them
        head = Signal(range(n))        # the entry the next write takes
        tail = Signal(range(n))        # the entry the next read takes
        held = Signal(range(n + 1))    # entries in memory
        r_valid = Signal()             # the read port's data is an entry

        def after(ptr):
            return ptr + 1 if n == 1 << (n - 1).bit_length() else Mux(ptr == n - 1, 0, ptr + 1)

        # the storage's read data ends at a register of its own, the consumer's ready at the
        # slice's
        m.submodules.slice = out = RegisterSlice(layout=unsigned(len(o_bits)))
        rd = Signal(len(o_bits), reset_less=True)  # data: rd_valid says when it holds a beat
        rd_valid = Signal()
        advance = Signal()
        write, fetch = Signal(), Signal()
        m.d.comb += [
            advance.eq(~rd_valid | out.i.ready),
            self.i.ready.eq(held != n),
            write.eq(self.i.valid & (held != n)),
            fetch.eq((held != 0) & (~r_valid | advance)),
            wp.addr.eq(head), wp.data.eq(i_bits), wp.en.eq(write),
            rp.addr.eq(tail), rp.en.eq(fetch),
        ]
        with m.If(write):
            m.d.sync += head.eq(after(head))
        with m.If(fetch):
            m.d.sync += [tail.eq(after(tail)), r_valid.eq(1)]
        with m.Elif(advance):
            m.d.sync += r_valid.eq(0)
        with m.If(write & ~fetch):
            m.d.sync += held.eq(held + 1)
        with m.Elif(fetch & ~write):
            m.d.sync += held.eq(held - 1)
        with m.If(advance):
            m.d.sync += [rd.eq(rp.data), rd_valid.eq(r_valid)]
        m.d.comb += [
            out.i.payload.eq(rd),
            out.i.valid.eq(rd_valid),
            o_bits.eq(out.o.payload),
            self.o.valid.eq(out.o.valid),
            out.o.ready.eq(self.o.ready),
            self.level.eq(held + r_valid + rd_valid + out.count),
        ]
        return m
