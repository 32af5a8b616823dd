"""A small reference DUT with the contract's stream ports, for testing cosim/ itself.

``ToyRequant`` applies a per-channel requantization (the contract's ``clamp((v*M[c] + 2^(S-1)) >> S,
lo, hi)``) to every token, optionally taking ``ii`` cycles per beat, so cosim can be tested without
the real network generator. ``write_toy_build`` writes ``verilog/<top>.v`` and ``manifest.json``
exactly as ``hw/build.py`` does, and ``toy_golden`` is its integer model. ``bug`` injects one fault
(``"channel"``: wrong multiplier on the last channel; ``"stall"``: stops accepting after 8 beats;
``"drop_eof"``: swallows end-of-frame beats) so that the checks are shown to fail.
"""

from __future__ import annotations

import json
from pathlib import Path

from amaranth import Const, Module, Mux, Signal, signed
from amaranth.back import verilog
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from common.fsutil import write_text
from hw.build import write_design
from hw.stream import TokenShape

__all__ = ["ToyRequant", "write_toy_build", "toy_golden"]

_BUGS = (None, "channel", "stall", "drop_eof")


class ToyRequant(wiring.Component):
    """Per-channel requant of a token stream, one pipeline register, ``ii`` cycles per beat.

    Parameters
    ----------
    height, width, channels, lanes : int
        Feature-map geometry and beat width.
    mult : list of int
        ``M[c]`` per channel.
    shift : int
        ``S``.
    lo, hi : int
        Output clamp.
    ii : int
        Cycles per accepted beat (initiation interval).
    bug : str or None
        Fault to inject (see module docstring).
    """

    def __init__(self, *, height, width, channels, lanes, mult, shift, lo=-127, hi=127, ii=1,
                 bug=None):
        for name, v in (("height", height), ("width", width), ("channels", channels),
                        ("lanes", lanes), ("ii", ii), ("shift", shift)):
            if not isinstance(v, int) or v < 1:
                raise TypeError(f"{name} must be a positive integer, not {v!r}")
        if channels % lanes:
            raise ValueError(f"lanes {lanes} must divide channels {channels}")
        if len(mult) != channels:
            raise ValueError(f"mult has {len(mult)} entries, expected {channels}")
        if bug not in _BUGS:
            raise ValueError(f"bug must be one of {_BUGS}, not {bug!r}")
        self.height, self.width, self.channels, self.lanes = height, width, channels, lanes
        self.mult, self.shift, self.lo, self.hi, self.ii, self.bug = (
            list(mult), shift, lo, hi, ii, bug)
        self.shape = TokenShape(height=height, width=width, channels=channels, lanes=lanes)
        self.layout = self.shape.layout()
        super().__init__({"i": In(stream.Signature(self.layout)),
                          "o": Out(stream.Signature(self.layout))})

    def elaborate(self, platform):
        m = Module()
        beats = self.channels // self.lanes
        beat = Signal(range(max(2, beats)))
        wait = Signal(range(max(2, self.ii)))
        seen = Signal(4)
        can_take = ~self.o.valid | self.o.ready
        take = Signal()
        m.d.comb += self.i.ready.eq(can_take & (wait == 0))
        if self.bug == "stall":
            m.d.comb += self.i.ready.eq(can_take & (wait == 0) & (seen < 8))
        m.d.comb += take.eq(self.i.valid & self.i.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(wait != 0):
            m.d.sync += wait.eq(wait - 1)
        with m.If(take):
            if self.ii > 1:
                m.d.sync += wait.eq(self.ii - 1)
            m.d.sync += seen.eq(seen + (seen != 15))
            drop = self.i.payload.eof if self.bug == "drop_eof" else Const(0)
            m.d.sync += self.o.valid.eq(~drop)
            m.d.sync += [self.o.payload.y.eq(self.i.payload.y),
                         self.o.payload.x.eq(self.i.payload.x),
                         self.o.payload.eof.eq(self.i.payload.eof)]
            with m.If(self.i.payload.eof):
                m.d.sync += beat.eq(0)
                for lane in range(self.lanes):
                    m.d.sync += self.o.payload.data[lane].eq(0)
            with m.Else():
                m.d.sync += beat.eq(Mux(beat == beats - 1, 0, beat + 1))
                for b in range(beats):
                    with m.If(beat == b):
                        for lane in range(self.lanes):
                            c = b * self.lanes + lane
                            mult = self.mult[c]
                            if self.bug == "channel" and c == self.channels - 1:
                                mult += 1
                            v = self.i.payload.data[lane]
                            acc = v * mult + (1 << (self.shift - 1))
                            q = Signal(signed(32), name=f"q{c}")
                            m.d.comb += q.eq(acc >> self.shift)
                            res = Signal(signed(8), name=f"r{c}")
                            with m.If(q < self.lo):
                                m.d.comb += res.eq(self.lo)
                            with m.Elif(q > self.hi):
                                m.d.comb += res.eq(self.hi)
                            with m.Else():
                                m.d.comb += res.eq(q)
                            m.d.sync += self.o.payload.data[lane].eq(res)
        return m


def toy_golden(*, mult, shift, lo=-127, hi=127):
    """The integer model of ``ToyRequant``: ``(coords, feats) -> (coords, feats)``."""
    def golden(coords, feats):
        out = []
        for row in _tolist(feats):
            out.append([max(lo, min(hi, (v * mult[c] + (1 << (shift - 1))) >> shift))
                        for c, v in enumerate(row)])
        return coords, out
    return golden


def _tolist(t):
    return t.tolist() if hasattr(t, "tolist") else list(t)


def write_toy_build(build_dir, *, top="toy", height=8, width=8, channels=4, lanes=2,
                    mult=None, shift=7, lo=-127, hi=127, ii=1, bug=None):
    """Write ``verilog/<top>.v`` and ``manifest.json`` for a ``ToyRequant``; return its golden."""
    build_dir = Path(build_dir)
    if mult is None:
        mult = [97 + 31 * c for c in range(channels)]
    dut = ToyRequant(height=height, width=width, channels=channels, lanes=lanes, mult=mult,
                     shift=shift, lo=lo, hi=hi, ii=ii, bug=bug)
    manifest = write_design(build_dir, top=top, text=verilog.convert(dut, name=top),
                            i_shape=dut.shape, o_shape=dut.shape, clock_mhz=200,
                            layers=[{"name": "toy", "op": "requant", "lanes": lanes, "pe": lanes,
                                     "pred_cycles": None, "ii": ii}])
    write_text(build_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return toy_golden(mult=mult, shift=shift, lo=lo, hi=hi)
