"""Requantization parameters and the integer requantizer of the contract.

``y = clamp((acc * M[c] + 2^(S-1)) >> S, lo, hi)`` with an unsigned multiplier
``M[c] < 2^M_BITS`` per output channel, one shift ``S`` per layer and an arithmetic (floor)
shift: rounding is half up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["M_BITS", "S_MIN", "S_MAX", "Requant", "requant_params", "requant", "add_requant",
           "rounding_offsets"]

#: Multipliers are unsigned and below 2^M_BITS (fits the 18-bit signed DSP48E2 port).
M_BITS = 15
S_MIN = 1
S_MAX = 47


@dataclass(frozen=True)
class Requant:
    """Integer requantization of one layer: per-channel multipliers and one shift."""

    M: tuple[int, ...]
    S: int

    def __post_init__(self):
        if not S_MIN <= self.S <= S_MAX:
            raise ValueError(f"requant shift must lie in [{S_MIN}, {S_MAX}], not {self.S}")
        for m in self.M:
            if not 0 <= m < (1 << M_BITS):
                raise ValueError(f"requant multiplier must lie in [0, 2^{M_BITS}), not {m}")

    def tensor(self) -> torch.Tensor:
        return torch.tensor(self.M, dtype=torch.int64)


def requant_params(multipliers) -> Requant:
    """(M, S) approximating the float multipliers ``m[c]`` as ``M[c] / 2^S``.

    S is the largest shift (<= S_MAX) for which every ``round(m[c] * 2^S)`` stays below 2^M_BITS, so
    the channel with the largest multiplier keeps M_BITS significant bits.
    """
    m = [float(v) for v in np.asarray(multipliers, dtype=np.float64).reshape(-1)]
    if not m:
        raise ValueError("requant_params needs at least one multiplier")
    if any(not math.isfinite(v) or v < 0 for v in m):
        raise ValueError(f"requant multipliers must be finite and non-negative, got {m}")
    top = max(m)
    S = S_MAX
    if top > 0:
        # round(top * 2^S) < 2^M_BITS  <=  top * 2^S <= 2^M_BITS - 1
        S = min(S_MAX, math.floor(math.log2(((1 << M_BITS) - 1) / top)))
        while S > S_MIN and round(top * 2.0**S) >= (1 << M_BITS):
            S -= 1
    if S < S_MIN or round(top * 2.0**S) >= (1 << M_BITS):
        raise ValueError(
            f"requant multiplier {top:g} is too large for a {M_BITS}-bit M with shift >= {S_MIN}"
        )
    return Requant(tuple(int(round(v * 2.0**S)) for v in m), S)


def requant(acc: torch.Tensor, M, S: int, lo: int, hi: int, channel_dim: int = 1,
            R=None) -> torch.Tensor:
    """Integer requantizer: ``clamp((acc * M[c] + R[c]) >> S, lo, hi)`` in int64.

    ``M`` (and ``R``) broadcast along ``channel_dim`` of ``acc`` (a scalar applies to every
    channel). ``R`` is the rounding offset, ``2^(S-1)`` (round half up) unless given: a layer
    whose float bias falls between accumulator steps carries the fraction there
    (:func:`rounding_offsets`).
    """
    if acc.is_floating_point():
        raise TypeError("requant takes integer accumulators")

    def per_channel(v):
        v = torch.as_tensor(v, dtype=torch.int64)
        if v.dim() == 1 and acc.dim() > 1:
            shape = [1] * acc.dim()
            shape[channel_dim] = -1
            v = v.view(shape)
        return v

    R = (1 << (S - 1)) if R is None else per_channel(R)
    y = (acc.long() * per_channel(M) + R) >> S
    return y.clamp(lo, hi)


def rounding_offsets(M, S: int, fraction) -> tuple[int, ...]:
    """``R[c] = 2^(S-1) + round(fraction[c] * M[c])``: the requantizer's rounding offset that
    adds a bias fraction (in accumulator steps, within [-0.5, 0.5]) at the multiplier's
    resolution, so ``(acc * M + R) >> S`` rounds ``(acc + fraction) * M / 2^S``."""
    f = np.asarray(fraction, dtype=np.float64).reshape(-1)
    return tuple(int((1 << (S - 1)) + round(float(fc) * int(m)))
                 for fc, m in zip(f, M, strict=True))


def add_requant(a, b, Ma: int, Mb: int, S: int, lo: int, hi: int) -> torch.Tensor:
    """Residual add as one rounding step: ``clamp((a*Ma + b*Mb + 2^(S-1)) >> S, lo, hi)``."""
    y = (a.long() * Ma + b.long() * Mb + (1 << (S - 1))) >> S
    return y.clamp(lo, hi)
