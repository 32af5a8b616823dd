"""Every numeric command-line option, validated in one place before any work starts.

Each ``check_*`` function takes the option's name and its value (text from the command line, or a
number from a configuration), and returns the value converted, or raises :class:`CodesignError`
with one line naming the option, the value and the range it must lie in. :func:`arg` turns one
into an ``argparse`` type, so a bad value stops at parsing (``codesign.cli`` prints that one
line and exits with code 2). ``codesign.pipeline.FlowConfig`` calls the same functions.
"""

from __future__ import annotations

import argparse
import math

from common.errors import CodesignError

__all__ = ["MAX_SEED", "arg", "check_count", "check_fraction", "check_mhz",
           "check_probability", "check_seed", "check_seconds", "check_abits", "check_drop"]

#: Largest seed: the simulation wrapper keeps ``seed + 1`` in a 32-bit register read with ``%d``.
MAX_SEED = 2**31 - 2
#: Largest count an option takes (frames, points, epochs, cycles): beyond it a run would not end.
MAX_COUNT = 10**9


def _number(name: str, value, kind=float):
    if isinstance(value, bool):
        raise CodesignError(f"{name} must be a number, not {value!r}")
    try:
        if kind is int:
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                return int(value)
            return int(str(value).strip())
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        what = "an integer" if kind is int else "a number"
        raise CodesignError(f"{name} must be {what}, not {value!r}") from None
    if not math.isfinite(v):
        raise CodesignError(f"{name} must be a finite number, not {value!r}")
    return v


def check_count(name: str, value, *, low: int = 1, high: int = MAX_COUNT) -> int:
    """An integer in ``[low, high]`` (frames, points, epochs, lanes, cycles)."""
    v = _number(name, value, int)
    if not low <= v <= high:
        raise CodesignError(f"{name} must be an integer in [{low}, {high}], not {v}")
    return v


def check_seed(name: str, value) -> int:
    """A seed in ``[0, MAX_SEED]`` (refused beyond, rather than wrapped onto another run)."""
    return check_count(name, value, low=0, high=MAX_SEED)


def check_probability(name: str, value, *, high: float | None = None) -> float:
    """A probability in ``[0, high]``; by default ``high`` is the largest stall probability the
    simulation wrapper takes (``cosim.wrapper.MAX_STALL``)."""
    if high is None:
        from cosim.wrapper import MAX_STALL as high
        from cosim.wrapper import STALL_RANGE as shown
    else:
        shown = f"[0, {high:g}]"
    v = _number(name, value)
    if not 0.0 <= v <= high:
        raise CodesignError(f"{name} must be a probability in {shown}, not {v!r}")
    return v


def check_fraction(name: str, value) -> float:
    """A fraction in ``(0, 1]`` (a utilisation ceiling)."""
    v = _number(name, value)
    if not 0.0 < v <= 1.0:
        raise CodesignError(f"{name} must lie in (0, 1], not {v!r}")
    return v


def check_drop(name: str, value) -> float:
    """An accuracy drop as a fraction in ``[0, 1]``."""
    v = _number(name, value)
    if not 0.0 <= v <= 1.0:
        raise CodesignError(f"{name} must be a fraction in [0, 1] (0.01 = 1 point), not {v!r}")
    return v


def check_mhz(name: str, value) -> float:
    """A clock frequency in MHz, in ``(0, 10000]``."""
    v = _number(name, value)
    if not 0.0 < v <= 10_000.0:
        raise CodesignError(f"{name} must be a clock in MHz in (0, 10000], not {v!r}")
    return v


def check_seconds(name: str, value) -> float:
    """A time limit in seconds, in ``(0, 86400]``."""
    v = _number(name, value)
    if not 0.0 < v <= 86_400.0:
        raise CodesignError(f"{name} must be a number of seconds in (0, 86400], not {v!r}")
    return v


def check_abits(name: str, value) -> int:
    """Activation bits of a format the models define (``models.quant.formats.ACT_FORMATS``)."""
    from models.quant.formats import ACT_FORMATS

    v = check_count(name, value, low=1, high=64)
    # what a model is trained or quantized with; 9-bit streams are only for imported models'
    # 8-bit unsigned activations
    valid = sorted(f.bits for f in ACT_FORMATS.values() if f.bits <= 8)
    if v not in valid:
        raise CodesignError(f"{name} must be one of {', '.join(map(str, valid))}, not {v}")
    return v


def arg(check, name: str, **kw):
    """``check`` as an ``argparse`` type for option ``name``."""
    def convert(text):
        try:
            return check(name, text, **kw)
        except CodesignError as exc:  # argparse names the option already
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{name} ")) from None
    convert.__name__ = name.lstrip("-").replace("-", "_")
    return convert
