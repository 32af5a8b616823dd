"""One registry of number formats: weight formats and activation formats.

Weights: ``int8`` [-127, 127], ``int4`` [-7, 7], ``dybit4`` and ``dybit8`` (signed magnitudes from
:mod:`models.quant.dybit`). Activations: signed, symmetric, ``int8`` or ``int4``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from . import dybit

__all__ = [
    "WeightFormat",
    "ActFormat",
    "WEIGHT_FORMATS",
    "ACT_FORMATS",
    "TRAIN_FORMATS",
    "weight_format",
    "act_format",
    "FormatError",
]


class FormatError(ValueError):
    """An unknown or unsupported number format."""


@dataclass(frozen=True)
class WeightFormat:
    """A weight number format: the set of integer values a weight may take, and its codes."""

    name: str
    kind: str  # "int" or "dybit"
    bits: int

    @cached_property
    def levels(self) -> torch.Tensor:
        """Sorted tensor of every representable signed integer value."""
        if self.kind == "int":
            q = self.qmax
            return torch.arange(-q, q + 1, dtype=torch.int64)
        mags = dybit.magnitudes(self.bits)
        vals = sorted({-m for m in mags} | set(mags))
        return torch.tensor(vals, dtype=torch.int64)

    @property
    def qmax(self) -> int:
        """Largest representable magnitude."""
        if self.kind == "int":
            return (1 << (self.bits - 1)) - 1
        return dybit.magnitudes(self.bits)[-1]

    @property
    def uses_multiplier(self) -> bool:
        """Whether the hardware multiplies (DSP) or shift-adds (LUT only)."""
        return self.kind == "int"

    def round(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest representable value of a float tensor (in units of the scale), as float.

        Integer formats round half to even (``torch.round``) and saturate; DyBit rounds to the
        nearest magnitude, ties toward zero (as :func:`models.quant.dybit.encode`).
        """
        if self.kind == "int":
            return torch.clamp(torch.round(x), -self.qmax, self.qmax)
        mags = torch.tensor(dybit.magnitudes(self.bits), dtype=x.dtype, device=x.device)
        a = x.abs().clamp(max=float(mags[-1]))
        idx = torch.bucketize(a, mags)  # mags[idx-1] < a <= mags[idx]
        hi = mags[idx.clamp(max=len(mags) - 1)]
        lo = mags[(idx - 1).clamp(min=0)]
        pick = torch.where((a - lo) <= (hi - a), lo, hi)
        return torch.sign(x) * pick

    def encode(self, values):
        """Hardware codes of integer weight values (two's complement for int formats)."""
        if self.kind == "dybit":
            return dybit.encode(values, self.bits)
        mask = (1 << self.bits) - 1
        if isinstance(values, torch.Tensor):
            return values.long() & mask
        return np.asarray(values, dtype=np.int64) & mask

    def decode(self, codes):
        """Integer weight values of hardware codes."""
        if self.kind == "dybit":
            return dybit.decode(codes, self.bits)
        half = 1 << (self.bits - 1)
        if isinstance(codes, torch.Tensor):
            c = codes.long()
        else:
            c = np.asarray(codes, dtype=np.int64)
        return ((c + half) & ((1 << self.bits) - 1)) - half


@dataclass(frozen=True)
class ActFormat:
    """Signed symmetric activation format with zero point 0."""

    name: str
    bits: int

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def bounds(self, relu: bool) -> tuple[int, int]:
        """Clamp range ``(lo, hi)``: after ReLU [0, qmax], otherwise [-qmax, qmax]."""
        return (0 if relu else -self.qmax), self.qmax


WEIGHT_FORMATS: dict[str, WeightFormat] = {
    "int8": WeightFormat("int8", "int", 8),
    "int4": WeightFormat("int4", "int", 4),
    "dybit4": WeightFormat("dybit4", "dybit", 4),
    "dybit8": WeightFormat("dybit8", "dybit", 8),
}
ACT_FORMATS: dict[str, ActFormat] = {
    "int8": ActFormat("int8", 8),
    "int4": ActFormat("int4", 4),
    # 9-bit signed streams: they carry an imported model's 8-bit unsigned activations [0, 255]
    "int9": ActFormat("int9", 9),
}
#: What ``codesign train --format`` accepts: no quantization, or a weight format.
TRAIN_FORMATS = ("fp32", *WEIGHT_FORMATS)


def weight_format(name) -> WeightFormat:
    """Look up a weight format by name, with the valid names in the error."""
    if isinstance(name, WeightFormat):
        return name
    try:
        return WEIGHT_FORMATS[name]
    except (KeyError, TypeError):
        raise FormatError(
            f"unknown weight format {name!r}; valid formats: {', '.join(WEIGHT_FORMATS)}"
        ) from None


def act_format(bits) -> ActFormat:
    """Look up an activation format by bit width (4 or 8) or name."""
    key = bits if isinstance(bits, str) else f"int{bits}"
    try:
        return ACT_FORMATS[key]
    except KeyError:
        raise FormatError(
            f"unsupported activation bits {bits!r}; valid: "
            + ", ".join(str(f.bits) for f in ACT_FORMATS.values())
        ) from None
