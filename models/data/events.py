"""Event streams ``(t, x, y, p)`` and their per-window dense and sparse representations.

An event array is a structured numpy array of :data:`EVENT_DTYPE`: ``t`` in microseconds (int64),
pixel column ``x`` and row ``y`` (int16, sensors up to 32767 pixels a side), polarity ``p``
(int8, 1 = ON (brighter), 0 = OFF). Every function that takes events validates them first and raises
:class:`DataError` naming the problem.

Representations (all float32, ``[C, H, W]`` with H rows and W columns):

- :func:`polarity_histogram`: channel 0 counts OFF events, channel 1 counts ON events, per pixel or
  per ``downsample x downsample`` block.
- :func:`voxel_grid`: ``bins`` time slices, each event adds ``+1`` (ON) or ``-1`` (OFF) split
  bilinearly between the two nearest bin centres.
- :func:`to_sparse_coords`: the active sites (any channel non-zero) of a dense map in raster order,
  the coordinate/feature pair a submanifold sparse tensor is built from.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from common.fsutil import atomic_path

__all__ = [
    "EVENT_DTYPE",
    "DataError",
    "make_events",
    "validate_events",
    "window_events",
    "polarity_histogram",
    "voxel_grid",
    "window_histograms",
    "scale_counts",
    "to_sparse_coords",
    "cache_dir",
    "save_npz",
    "load_npz",
]

EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.int8)])


class DataError(ValueError):
    """Malformed event data or data file; the message names the file or the problem."""


def make_events(t, x, y, p) -> np.ndarray:
    """Build a validated event array of :data:`EVENT_DTYPE` from four equal-length sequences."""
    cols = [np.asarray(c).reshape(-1) for c in (t, x, y, p)]
    n = len(cols[0])
    if any(len(c) != n for c in cols):
        raise DataError(f"event fields differ in length: {[len(c) for c in cols]}")
    for name, c in zip(("t", "x", "y", "p"), cols, strict=True):
        if n and not np.issubdtype(c.dtype, np.integer):
            if not np.all(np.isfinite(c)) or np.any(c != np.round(c)):
                raise DataError(f"event field {name!r} must hold integers")
    ev = np.empty(n, dtype=EVENT_DTYPE)
    for name, c in zip(("t", "x", "y", "p"), cols, strict=True):
        info = np.iinfo(EVENT_DTYPE[name])
        if n and (c.min() < info.min or c.max() > info.max):
            raise DataError(
                f"event field {name!r} out of range for {EVENT_DTYPE[name]}: "
                f"[{c.min()}, {c.max()}]"
            )
        ev[name] = c
    validate_events(ev)
    return ev


def validate_events(events, *, height: int | None = None, width: int | None = None,
                    require_sorted: bool = True) -> np.ndarray:
    """Check an event array and return it; raise :class:`DataError` naming the first problem.

    Checks: the dtype has fields ``t, x, y, p`` with integer types, polarities are 0 or 1,
    coordinates are non-negative (and below ``width`` / ``height`` when given) and, unless
    ``require_sorted`` is False, timestamps are non-decreasing.
    """
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise DataError(f"events must be a structured numpy array, not {type(events).__name__}")
    missing = [f for f in ("t", "x", "y", "p") if f not in events.dtype.names]
    if missing:
        raise DataError(f"events lack field(s) {missing}; have {list(events.dtype.names)}")
    if events.ndim != 1:
        raise DataError(f"events must be one-dimensional, not shape {events.shape}")
    for f in ("t", "x", "y", "p"):
        if not np.issubdtype(events.dtype[f], np.integer):
            raise DataError(f"event field {f!r} must be an integer type, not {events.dtype[f]}")
    if len(events) == 0:
        return events
    p = events["p"]
    if np.any((p != 0) & (p != 1)):
        raise DataError(f"event polarities must be 0 or 1, found {np.unique(p)[:8].tolist()}")
    for f, limit in (("x", width), ("y", height)):
        c = events[f]
        if c.min() < 0:
            raise DataError(f"event {f} coordinates must be >= 0, found {c.min()}")
        if limit is not None and c.max() >= limit:
            raise DataError(f"event {f} coordinate {c.max()} outside the sensor (size {limit})")
    if require_sorted:
        dt = np.diff(events["t"])
        if np.any(dt < 0):
            i = int(np.argmax(dt < 0))
            raise DataError(
                f"event timestamps not monotonic: t[{i + 1}]={events['t'][i + 1]} < "
                f"t[{i}]={events['t'][i]}"
            )
    return events


def window_events(events, t0: int, t1: int) -> np.ndarray:
    """The events with ``t0 <= t < t1`` (a view; events must be sorted by time)."""
    validate_events(events)
    if t1 < t0:
        raise ValueError(f"window end {t1} precedes its start {t0}")
    lo, hi = np.searchsorted(events["t"], [t0, t1], side="left")
    return events[lo:hi]


def _check_size(height, width, downsample=1):
    for name, v in (("height", height), ("width", width), ("downsample", downsample)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, not {v!r}")


def polarity_histogram(events, height: int, width: int, *, downsample: int = 1) -> np.ndarray:
    """Per-polarity event counts, float32 ``[2, ceil(H/d), ceil(W/d)]`` (channel 0 OFF, 1 ON).

    ``height`` and ``width`` are the sensor's size; ``downsample`` d sums each ``d x d`` block
    (pixel ``(y, x)`` goes to ``(y // d, x // d)``).
    """
    _check_size(height, width, downsample)
    validate_events(events, height=height, width=width, require_sorted=False)
    h, w = -(-height // downsample), -(-width // downsample)
    idx = (events["p"].astype(np.int64) * h + events["y"] // downsample) * w
    idx += events["x"] // downsample
    counts = np.bincount(idx, minlength=2 * h * w)
    return counts.astype(np.float32).reshape(2, h, w)


def voxel_grid(events, height: int, width: int, bins: int, t0: int, t1: int) -> np.ndarray:
    """Signed event counts split bilinearly in time over ``bins`` slices, float32 ``[bins, H, W]``.

    Events with ``t0 <= t < t1`` count. Bin centres sit at ``t0 + b * (t1 - t0) / (bins - 1)``
    (the first at ``t0``, the last at ``t1``); an event at normalised time ``u = (bins - 1) *
    (t - t0) / (t1 - t0)`` adds ``s * max(0, 1 - |b - u|)`` to bin b, ``s = +1`` for ON and ``-1``
    for OFF. With one bin every event adds ``s`` to it.
    """
    _check_size(height, width)
    if not isinstance(bins, (int, np.integer)) or isinstance(bins, bool) or bins < 1:
        raise ValueError(f"bins must be a positive integer, not {bins!r}")
    if not t1 > t0:
        raise ValueError(f"voxel grid needs t1 > t0, got t0={t0}, t1={t1}")
    validate_events(events, height=height, width=width, require_sorted=False)
    ev = events[(events["t"] >= t0) & (events["t"] < t1)]
    size = bins * height * width
    sign = ev["p"].astype(np.float64) * 2 - 1
    pix = ev["y"].astype(np.int64) * width + ev["x"]
    if bins == 1:
        grid = np.bincount(pix, weights=sign, minlength=size)
    else:
        u = (bins - 1) * (ev["t"] - t0).astype(np.float64) / (t1 - t0)
        b0 = np.floor(u).astype(np.int64)
        frac = u - b0
        upper = b0 + 1 < bins
        idx = np.concatenate([b0 * height * width + pix, (b0[upper] + 1) * height * width
                              + pix[upper]])
        w = np.concatenate([sign * (1 - frac), sign[upper] * frac[upper]])
        grid = np.bincount(idx, weights=w, minlength=size)
    return grid.astype(np.float32).reshape(bins, height, width)


def window_histograms(events, starts, window: int, height: int, width: int, *,
                      downsample: int = 1) -> np.ndarray:
    """:func:`polarity_histogram` of each window ``[s, s + window)`` for s in ``starts``.

    Returns float32 ``[len(starts), 2, ceil(H/d), ceil(W/d)]``. Events must be sorted by time.
    """
    _check_size(height, width, downsample)
    if window < 1:
        raise ValueError(f"window must be a positive number of microseconds, not {window!r}")
    validate_events(events, height=height, width=width)
    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    h, w = -(-height // downsample), -(-width // downsample)
    out = np.zeros((len(starts), 2 * h * w), dtype=np.float32)
    t = events["t"]
    lo = np.searchsorted(t, starts, side="left")
    hi = np.searchsorted(t, starts + window, side="left")
    site = (events["p"].astype(np.int64) * h + events["y"] // downsample) * w
    site += events["x"] // downsample
    if np.all(lo[1:] >= hi[:-1]):
        # non-overlapping windows: one bincount over (window, site)
        owner = np.full(len(events), -1, dtype=np.int64)
        for k, (a, b) in enumerate(zip(lo, hi, strict=True)):
            owner[a:b] = k
        keep = owner >= 0
        flat = np.bincount(owner[keep] * (2 * h * w) + site[keep],
                           minlength=len(starts) * 2 * h * w)
        out[:] = flat.reshape(len(starts), 2 * h * w)
    else:
        for k, (a, b) in enumerate(zip(lo, hi, strict=True)):
            out[k] = np.bincount(site[a:b], minlength=2 * h * w)
    return out.reshape(len(starts), 2, h, w)


def scale_counts(hist, clip: float) -> np.ndarray:
    """Counts clipped to ``clip`` and scaled to [0, 1]: ``min(count, clip) / clip`` (float32).

    Keeps zero exactly zero, so the active sites of the scaled map are those of the counts.
    """
    if not clip > 0:
        raise ValueError(f"clip must be positive, not {clip!r}")
    return (np.minimum(np.asarray(hist, dtype=np.float32), clip) / np.float32(clip)).astype(
        np.float32
    )


def to_sparse_coords(dense) -> tuple[torch.Tensor, torch.Tensor]:
    """Active sites of a dense ``[C, H, W]`` map: ``(coords [N, 2] (y, x), feats [N, C])``.

    A site is active when any channel is non-zero. Coordinates are int64 in raster order (y, then
    x, increasing), the stream order of the hardware; ``feats`` keeps the input's dtype.
    """
    t = torch.as_tensor(dense)
    if t.dim() != 3:
        raise ValueError(f"dense map must be [C, H, W], not shape {tuple(t.shape)}")
    active = (t != 0).any(dim=0)
    coords = active.nonzero()  # row-major: raster order
    feats = t[:, coords[:, 0], coords[:, 1]].T.contiguous()
    return coords.to(torch.int64), feats


def cache_dir() -> Path:
    """Where generated data sets are cached: ``$CODESIGN_CACHE``, else ``~/.cache/codesign``."""
    env = os.environ.get("CODESIGN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "codesign"


def save_npz(path, **arrays) -> None:
    """Write ``arrays`` to an uncompressed ``.npz`` atomically (whole or not at all)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_npz(path, keys) -> dict | None:
    """The arrays ``keys`` of a cache file, or None when it is missing or unreadable.

    An unreadable cache (truncated, foreign) is treated as missing: the caller regenerates and
    overwrites it.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in keys}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
