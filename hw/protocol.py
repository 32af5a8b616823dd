"""The byte protocol between a host and the board top (:mod:`hw.board`), over a UART.

Both directions carry frames in the token view, in raster order, one record per active site and
one end-of-frame record (docs/BOARD.md):

- host -> board, per frame: for each active site ``0x00``, ``y``, ``x``, then its ``C_in``
  activations, one byte each (two's complement, channel 0 first); then ``0x01``.
- board -> host, per frame: for each output site ``flags``, ``y``, ``x``, then its ``C_out``
  values, ``value_bytes`` bytes each, little endian, two's complement; then ``flags | 0x01``.
  ``flags`` bit 1 (:data:`FLAG_LOST`) is set once the receiver has lost a byte (its FIFO was
  full, or a stop bit was low): the results from then on are not those of the frames sent.

``y`` and ``x`` take :func:`coord_bytes` bytes each, little endian (one for maps up to 256 wide).
This module holds the encoding on the host side; the board's loader and sender implement the
same layout in hardware, and the board co-simulation checks both against each other bit for bit.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FLAG_EOF", "FLAG_LOST", "coord_bytes", "value_bytes", "encode_frames",
           "decode_results", "ProtocolError"]

FLAG_EOF = 0x01
FLAG_LOST = 0x02


class ProtocolError(ValueError):
    """Bytes from the board that are not a whole number of well-formed records."""


def coord_bytes(bits: int) -> int:
    """Bytes of a coordinate of ``bits`` bits."""
    return max(1, -(-int(bits) // 8))


def value_bytes(bits: int) -> int:
    """Bytes of an output value of ``bits`` bits."""
    return max(1, -(-int(bits) // 8))


def _le(value: int, n: int) -> bytes:
    return int(value & ((1 << (8 * n)) - 1)).to_bytes(n, "little")


def encode_frames(frames, *, y_bits: int, x_bits: int, channels: int,
                  data_bits: int = 8, signed: bool = True) -> bytes:
    """The host's bytes for ``frames`` (``[(coords [N, 2], feats [N, C]), ...]``) of a network
    whose input values are ``data_bits``-bit integers, ``signed`` or not."""
    if signed:
        lo, hi = -(1 << (data_bits - 1)), (1 << (data_bits - 1)) - 1
    else:
        lo, hi = 0, (1 << data_bits) - 1
    ny, nx = coord_bytes(y_bits), coord_bytes(x_bits)
    out = bytearray()
    for coords, feats in frames:
        coords = np.asarray(coords, dtype=np.int64).reshape(-1, 2)
        feats = np.asarray(feats, dtype=np.int64)
        if feats.size != len(coords) * channels:
            raise ValueError(f"a frame has {feats.size} values for {len(coords)} sites of "
                             f"{channels} channels (the network's input)")
        feats = feats.reshape(len(coords), channels)
        if feats.size and (feats.min() < lo or feats.max() > hi):
            raise ValueError(f"activations outside [{lo}, {hi}] ({data_bits}-bit input)")
        for (y, x), f in zip(coords.tolist(), feats.tolist(), strict=True):
            out += b"\x00" + _le(y, ny) + _le(x, nx) + bytes(v & 0xFF for v in f)
        out.append(FLAG_EOF)
    return bytes(out)


def decode_results(data: bytes, *, y_bits: int, x_bits: int, channels: int,
                   value_bits: int) -> tuple[list, bool]:
    """``(frames, lost)`` from the board's bytes: every complete frame as ``(coords [N, 2],
    values [N, C])`` and whether any record carried :data:`FLAG_LOST`. Bytes after the last
    end-of-frame record (a frame still coming) are left out; a malformed record raises
    :class:`ProtocolError`."""
    ny, nx, nv = coord_bytes(y_bits), coord_bytes(x_bits), value_bytes(value_bits)
    site = 1 + ny + nx + channels * nv
    frames, coords, values, lost = [], [], [], False
    i = 0
    while i < len(data):
        flags = data[i]
        if flags & ~(FLAG_EOF | FLAG_LOST):
            raise ProtocolError(f"byte {i}: record flags {flags:#04x} are not a record start")
        lost |= bool(flags & FLAG_LOST)
        if flags & FLAG_EOF:
            frames.append((np.asarray(coords, dtype=np.int64).reshape(-1, 2),
                           np.asarray(values, dtype=np.int64).reshape(len(coords), channels)))
            coords, values = [], []
            i += 1
            continue
        if i + site > len(data):
            break
        rec = data[i + 1:i + site]
        y = int.from_bytes(rec[:ny], "little")
        x = int.from_bytes(rec[ny:ny + nx], "little")
        vals = []
        for c in range(channels):
            raw = int.from_bytes(rec[ny + nx + c * nv:ny + nx + (c + 1) * nv], "little")
            if raw >= 1 << (8 * nv - 1):
                raw -= 1 << (8 * nv)
            vals.append(raw)
        coords.append((y, x))
        values.append(vals)
        i += site
    return frames, lost
