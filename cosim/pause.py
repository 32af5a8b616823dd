"""Pause generators: per-cycle idle (source) and backpressure (sink) patterns.

A pause generator is an infinite iterator of booleans, one per clock cycle; ``True`` means "pause
this cycle" (the source does not offer a new beat, the sink deasserts ``ready``).
"""

from __future__ import annotations

import itertools
import random

__all__ = ["never", "bernoulli", "pattern", "make_pause"]


def never():
    """Never pause: full-rate stream."""
    return itertools.repeat(False)


def bernoulli(p: float, seed: int = 0):
    """Pause each cycle independently with probability ``p`` (seeded, reproducible)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"pause probability must be in [0, 1), not {p!r}")
    # a pause run of n cycles has probability p ** n: the benches' deadlock timeout grows with p
    # (cosim.session.stall_timeout)
    if p == 0.0:
        return never()
    rng = random.Random(seed)
    return (rng.random() < p for _ in itertools.count())


def pattern(bits):
    """Repeat a fixed pattern, e.g. ``pattern([0, 0, 0, 1])`` pauses every fourth cycle."""
    bits = [bool(b) for b in bits]
    if not bits:
        raise ValueError("pause pattern must not be empty")
    return itertools.cycle(bits)


def make_pause(spec, seed: int = 0):
    """A pause generator from a probability (float) or an explicit pattern (list of 0/1)."""
    if spec is None:
        return never()
    if isinstance(spec, (list, tuple)):
        return pattern(spec)
    return bernoulli(float(spec), seed)
