"""cocotb testbench parts: stream source, sink, monitor and a ``TB`` with clock and reset.

Timing discipline (the same for every part, so parts compose without races): drive right after the
rising edge, sample in the ``ReadOnly`` phase of that same cycle. A transfer is ``valid & ready``
seen in ``ReadOnly``; it takes place at the next rising edge, whose index is its cycle stamp (edge 0
is the first edge after reset is released), the same convention as the fast-path wrapper.
"""

from __future__ import annotations

import logging
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Event, ReadOnly, RisingEdge, Timer

from .manifest import PortSpec
from .pause import never

__all__ = ["StreamSource", "StreamSink", "StreamMonitor", "TB"]


def _sig(dut, name):
    try:
        return getattr(dut, name)
    except AttributeError:
        raise AttributeError(f"DUT {dut._name} has no port {name!r} (see manifest.json)") from None


class StreamMonitor:
    """Watches one stream and calls ``callback(word, cycle)`` for every transfer."""

    def __init__(self, tb: TB, port: PortSpec, *, name: str, callback=None):
        self.tb, self.port = tb, port
        self.valid = _sig(tb.dut, port.valid)
        self.ready = _sig(tb.dut, port.ready)
        self.payload = _sig(tb.dut, port.payload)
        self.log = logging.getLogger(f"cosim.{name}")
        self.callbacks = [callback] if callback else []
        self.count = 0
        self.last_cycle = -1
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        ro = ReadOnly()
        edge = RisingEdge(self.tb.clk)
        while True:
            await edge
            await ro
            if self.valid.value == 1 and self.ready.value == 1:
                word = self.payload.value.to_unsigned()
                self.count += 1
                self.last_cycle = self.tb.cycle + 1
                for cb in self.callbacks:
                    cb(word, self.last_cycle)


class StreamSource:
    """Drives a stream from a queue of payload words; ``pause`` idles it between beats.

    A beat once offered stays on the bus until accepted (the producer never withdraws ``valid``).
    """

    def __init__(self, tb: TB, port: PortSpec, *, name: str = "source", pause=None):
        self.tb, self.port = tb, port
        self.valid = _sig(tb.dut, port.valid)
        self.ready = _sig(tb.dut, port.ready)
        self.payload = _sig(tb.dut, port.payload)
        self.pause = pause if pause is not None else never()
        self.log = logging.getLogger(f"cosim.{name}")
        self.queue: deque = deque()
        self.sent = 0
        self._holding = False
        self._accepted = False
        self.valid.value = 0
        self._task = cocotb.start_soon(self._run())

    def send_frame(self, coords, feats) -> None:
        self.queue.extend(self.port.frame_beats(coords, feats))

    def send_beats(self, words) -> None:
        self.queue.extend(words)

    @property
    def idle(self) -> bool:
        return not self.queue and not self._holding

    async def _run(self):
        ro = ReadOnly()
        edge = RisingEdge(self.tb.clk)
        while True:
            await edge
            if self._holding and self._accepted:
                self._holding = False
                self.sent += 1
            paused = next(self.pause)
            if not self._holding:
                if self.queue and not paused:
                    self.payload.value = self.queue.popleft()
                    self.valid.value = 1
                    self._holding = True
                else:
                    self.valid.value = 0
            await ro
            self._accepted = self._holding and self.ready.value == 1


class StreamSink:
    """Drives ``ready`` of a stream with a backpressure ``pause`` generator."""

    def __init__(self, tb: TB, port: PortSpec, *, name: str = "sink", pause=None):
        self.tb, self.port = tb, port
        self.ready = _sig(tb.dut, port.ready)
        self.pause = pause if pause is not None else never()
        self.log = logging.getLogger(f"cosim.{name}")
        self.ready.value = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        edge = RisingEdge(self.tb.clk)
        while True:
            await edge
            self.ready.value = 0 if next(self.pause) else 1


class TB:
    """Clock, reset and a cycle counter for a DUT described by a manifest.

    Parameters
    ----------
    dut : cocotb handle
        The HDL top.
    clock, reset : str
        Port names; ``reset_active`` is ``"high"`` or ``"low"``.
    period_ns : int
        Clock period of the simulation (cycle counts do not depend on it).
    count_cycles : bool
        Keep ``cycle`` up to date (a coroutine woken every edge; off for the fast path).
    """

    def __init__(self, dut, *, clock="clk", reset="rst", reset_active="high", period_ns=10,
                 count_cycles=True):
        self.dut = dut
        self.clk = _sig(dut, clock)
        self.rst = _sig(dut, reset) if reset else None
        self.rst_on = 1 if reset_active == "high" else 0
        self.period_ns = period_ns
        self.log = logging.getLogger("cosim.tb")
        self.cycle = -1
        self.progress = Event()
        Clock(self.clk, period_ns, unit="ns").start(start_high=False)
        self._counter = None if count_cycles else False

    async def reset(self, cycles: int = 4) -> None:
        """Hold reset for ``cycles`` edges; afterwards edge 0 is the first with reset released."""
        if self.rst is None:
            return
        self.rst.value = self.rst_on
        for _ in range(cycles):
            await RisingEdge(self.clk)
        self.rst.value = 1 - self.rst_on
        self.cycle = -1
        if self._counter is None:
            self._counter = cocotb.start_soon(self._count())

    async def _count(self):
        edge = RisingEdge(self.clk)
        while True:
            await edge
            self.cycle += 1

    async def wait_until(self, done, *, watch, timeout_cycles: int, poll_cycles: int = 256):
        """Wait until ``done()``; return ``None`` or the name of the stream that stopped moving.

        ``watch`` is a list of ``(name, monitor, pending)`` with ``pending()`` true while that
        stream still has beats to move; the first pending one with no transfer for
        ``timeout_cycles`` is reported.
        """
        while not done():
            await Timer(poll_cycles * self.period_ns, unit="ns")
            for name, mon, pending in watch:
                if pending() and self.cycle - max(mon.last_cycle, 0) > timeout_cycles:
                    return name
        return None
