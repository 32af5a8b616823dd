"""DyBit weight format as this project defines it (see docs/CONTRACT.md).

``dybitN`` is 1 sign bit + N-1 magnitude bits. The magnitude bits start with a run of k ones
(0 <= k <= N-1), ended by a zero unless k = N-1; the r = N-2-k bits after the zero are a mantissa f.

- k = 0:            m = f
- 1 <= k <= N-2:    m = 2^(N-3+k) * (1 + f / 2^r)
- k = N-1:          m = 2^(2N-4)

A code is the N-bit unsigned integer ``sign << (N-1) | magnitude_bits``. The code with sign 1 and
magnitude 0 ("negative zero") decodes to 0; :func:`encode` never produces it.

Ties in :func:`encode` (a value exactly half way between two magnitudes) go to the smaller
magnitude, i.e. toward zero.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

__all__ = ["SUPPORTED_BITS", "magnitudes", "decode", "encode", "fields", "code_table"]

SUPPORTED_BITS = (4, 8)


def _check_bits(bits):
    if bits not in SUPPORTED_BITS:
        raise ValueError(
            f"DyBit width must be one of {', '.join(map(str, SUPPORTED_BITS))}, not {bits!r}"
        )


def fields(magbits: int, bits: int) -> tuple[int, int, int]:
    """Split N-1 magnitude bits into ``(k, r, f)``: run length of ones, mantissa width, mantissa."""
    n1 = bits - 1
    k = 0
    while k < n1 and (magbits >> (n1 - 1 - k)) & 1:
        k += 1
    r = max(bits - 2 - k, 0)
    f = magbits & ((1 << r) - 1)
    return k, r, f


def _magnitude(magbits: int, bits: int) -> int:
    k, r, f = fields(magbits, bits)
    if k == 0:
        return f
    if k == bits - 1:
        return 1 << (2 * bits - 4)
    return (1 << (bits - 3 + k)) + (f << (bits - 3 + k - r))


@cache
def code_table(bits: int) -> tuple[int, ...]:
    """Signed integer value of every code 0 .. 2^bits - 1."""
    _check_bits(bits)
    n1 = bits - 1
    table = []
    for code in range(1 << bits):
        m = _magnitude(code & ((1 << n1) - 1), bits)
        table.append(-m if code >> n1 else m)
    return tuple(table)


@cache
def magnitudes(bits: int) -> list[int]:
    """Sorted non-negative magnitudes representable by ``dybit<bits>``."""
    _check_bits(bits)
    return sorted({abs(v) for v in code_table(bits)})


@cache
def _encode_lut(bits: int) -> tuple[np.ndarray, int]:
    """Code for every integer value in [-max, max], index ``value + max``."""
    mags = magnitudes(bits)
    top = mags[-1]
    table = code_table(bits)
    code_of = {v: c for c, v in enumerate(table) if not (v == 0 and c != 0)}
    lut = np.empty(2 * top + 1, dtype=np.int64)
    for v in range(-top, top + 1):
        a = abs(v)
        # nearest magnitude, ties toward zero
        best = min(mags, key=lambda m: (abs(m - a), m))
        lut[v + top] = code_of[best if v >= 0 else -best]
    return lut, top


def decode(code, bits: int):
    """Signed integer value of a DyBit code (int, numpy array or integer torch tensor)."""
    _check_bits(bits)
    table = code_table(bits)
    if isinstance(code, torch.Tensor):
        if code.is_floating_point():
            raise TypeError("DyBit codes must be an integer tensor")
        if code.numel() and (int(code.min()) < 0 or int(code.max()) >= (1 << bits)):
            raise ValueError(f"DyBit{bits} codes must lie in [0, {(1 << bits) - 1}]")
        return torch.tensor(table, dtype=torch.int64)[code.long()]
    if isinstance(code, np.ndarray):
        if code.size and (code.min() < 0 or code.max() >= (1 << bits)):
            raise ValueError(f"DyBit{bits} codes must lie in [0, {(1 << bits) - 1}]")
        return np.asarray(table, dtype=np.int64)[code.astype(np.int64)]
    code = int(code)
    if not 0 <= code < (1 << bits):
        raise ValueError(f"DyBit{bits} code must lie in [0, {(1 << bits) - 1}], not {code}")
    return table[code]


def encode(value, bits: int):
    """Code of the representable value nearest to ``value`` (ties toward zero).

    Values beyond the largest magnitude saturate to it. Works on ints, numpy integer arrays and
    integer torch tensors.
    """
    _check_bits(bits)
    lut, top = _encode_lut(bits)
    if isinstance(value, torch.Tensor):
        if value.is_floating_point():
            raise TypeError("encode takes integer values; round floats first")
        idx = value.long().clamp(-top, top) + top
        return torch.from_numpy(lut)[idx]
    if isinstance(value, np.ndarray):
        idx = np.clip(value.astype(np.int64), -top, top) + top
        return lut[idx]
    return int(lut[min(max(int(value), -top), top) + top])
