"""In-order scoreboard: received output beats against the golden model's expected frames.

Plain Python (no cocotb import), so the same checker serves the Python-driven benches (fed live by a
monitor) and the fast path (fed from the wrapper's trace after the run).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .manifest import Beat, PortSpec

__all__ = ["Mismatch", "Scoreboard"]


@dataclass(frozen=True)
class Mismatch:
    """The first wrong thing seen in one output frame."""

    frame: int
    kind: str
    site: tuple | None = None
    channel: int | None = None
    got: object = None
    expected: object = None
    cycle: int | None = None

    def __str__(self) -> str:
        where = f"frame {self.frame}"
        if self.site is not None:
            where += f" site (y={self.site[0]}, x={self.site[1]})"
        if self.channel is not None:
            where += f" channel {self.channel}"
        at = "" if self.cycle is None else f" at cycle {self.cycle}"
        return f"{where}: {self.kind}: got {self.got}, expected {self.expected}{at}"


class Scoreboard:
    """Checks output beats in order against expected frames; one :class:`Mismatch` per bad frame.

    Parameters
    ----------
    port : PortSpec
        The output stream (payload layout, lanes, channels).
    name : str
        Logger name suffix.
    """

    def __init__(self, port: PortSpec, *, name: str = "scoreboard"):
        self.port = port
        self.log = logging.getLogger(f"cosim.{name}")
        self.expected: list = []
        self.mismatches: list = []
        self.frames_done = 0
        self.beats_seen = 0
        self.eof_cycles: list = []
        self._beat = 0
        self._bad = False
        self._extra = False

    def expect(self, coords, feats) -> None:
        """Queue one expected output frame (token view)."""
        self.expected.append([self.port.unpack(w) for w in self.port.frame_beats(coords, feats)])

    def expect_beats(self, words) -> None:
        self.expected.append([self.port.unpack(w) for w in words])

    @property
    def complete(self) -> bool:
        return self.frames_done >= len(self.expected)

    def _fail(self, kind, site=None, channel=None, got=None, expected=None, cycle=None):
        if not self._bad:
            mm = Mismatch(self.frames_done, kind, site, channel, got, expected, cycle)
            self.mismatches.append(mm)
            self.log.error("%s", mm)
        self._bad = True

    def receive(self, word: int, cycle: int | None = None) -> None:
        """Check one received beat (the raw payload word)."""
        got: Beat = self.port.unpack(word)
        self.beats_seen += 1
        if self.frames_done >= len(self.expected):
            if not self._extra:
                self.mismatches.append(Mismatch(self.frames_done, "extra beat after the last frame",
                                                (got.y, got.x), None, got, None, cycle))
            self._extra = True
            return
        frame = self.expected[self.frames_done]
        j = self._beat
        exp = frame[j] if j < len(frame) else None
        bpt = self.port.beats_per_token
        if got.eof:
            if exp is None or not exp.eof:
                self._fail("frame ended early", None, None, f"{j} data beats",
                           f"{len(frame) - 1} data beats", cycle)
            self.frames_done += 1
            self.eof_cycles.append(cycle)
            self._beat = 0
            self._bad = False
            return
        self._beat += 1
        if self._bad:
            return
        if exp is None or exp.eof:
            self._fail("extra data beat", (got.y, got.x), None, f">= {j + 1} data beats",
                       f"{len(frame) - 1} data beats", cycle)
            return
        if (got.y, got.x) != (exp.y, exp.x):
            self._fail("wrong site", (exp.y, exp.x), (j % bpt) * self.port.lanes,
                       (got.y, got.x), (exp.y, exp.x), cycle)
            return
        for lane, (g, e) in enumerate(zip(got.data, exp.data, strict=True)):
            if g != e:
                self._fail("wrong value", (exp.y, exp.x), (j % bpt) * self.port.lanes + lane,
                           g, e, cycle)
                return

    def finish(self) -> list:
        """Flag frames never received; return all mismatches."""
        for f in range(self.frames_done, len(self.expected)):
            self.mismatches.append(Mismatch(f, "frame never completed", got="nothing",
                                            expected=f"{len(self.expected[f])} beats"))
        self.frames_done = max(self.frames_done, len(self.expected))
        return self.mismatches
