"""Synthetic event digits: N-MNIST's recording procedure applied to scikit-learn's digits.

N-MNIST was recorded by an ATIS sensor on a pan-tilt unit making three saccades in front of a
monitor showing each MNIST digit. Here each of the 1,797 8x8 digits of
``sklearn.datasets.load_digits`` (bundled, no download) is rendered bilinearly at 28x28 in the
middle of a 34x34 sensor and moved along the same kind of path: three ~100 ms saccades along a
triangle of about 3 pixels, with a smooth (raised-cosine) velocity profile, amplitude and start
jittered per sample. The scene is sampled every millisecond; each pixel emits an event whenever its
log-intensity has moved by its contrast threshold (0.22, per-pixel spread 8 %) from its reference
level, at the linearly interpolated crossing time, unless it fired less than a refractory period
(0.5 ms) before; a few uniform background-noise events are added (Poisson, mean 20 per recording).
Polarity 1 = brighter (ON). A recording lasts 300 ms and its timestamps are sorted.

Sample ``i`` depends only on ``(seed, i)``, so ``make_eventdigits(n=k)`` is a prefix of the full
set. Input maps (:func:`eventdigits_frames`) are the polarity histograms of the whole recording,
counts clipped at :data:`CLIP` and scaled to [0, 1].

Split (fixed, independent of ``seed``): a permutation of the 1,797 indices drawn with
``numpy.random.default_rng(SPLIT_SEED)``; its first 359 (20 %) are ``test``, the next 180 (10 %)
``val`` and the remaining 1,258 (70 %) ``train``.
"""

from __future__ import annotations

import zlib

import numpy as np

from .events import EVENT_DTYPE, cache_dir, load_npz, polarity_histogram, save_npz, scale_counts

__all__ = [
    "SENSOR",
    "DURATION_US",
    "CLIP",
    "SPLIT_SEED",
    "N_DIGITS",
    "make_eventdigits",
    "eventdigits_frames",
    "split_indices",
]

SENSOR = 34
DIGIT_SIZE = 28
N_DIGITS = 1797
DURATION_US = 300_000
STEP_US = 1_000
CONTRAST = 0.22
CONTRAST_SPREAD = 0.08
REFRACTORY_US = 500
BACKGROUND = 0.12  # monitor black level relative to white: log contrast of about 2.1
NOISE_EVENTS = 20
MAX_EVENTS_PER_STEP = 3
#: Per-pixel count at which an input map saturates to 1.0.
CLIP = 8.0
SPLIT_SEED = 20_240_417
_VERSION = 1
# saccade path (x, y) in pixels: a triangle, one leg per ~100 ms saccade
_PATH = np.array([[0.0, 0.0], [1.5, 3.0], [3.0, 0.0], [0.0, 0.0]])


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float32) / 16.0, d.target.astype(np.int64)


def _tent_matrix(offset):
    """``[B, SENSOR, 8]``: weight of digit row/column i on sensor pixel y, digit shifted by offset.

    Digit pixel i covers ``[top + i s, top + (i + 1) s)`` sensor pixels (``s = 28 / 8``); sampling
    its bilinear interpolation at sensor pixel centres.
    """
    s = DIGIT_SIZE / 8
    top = (SENSOR - DIGIT_SIZE) / 2
    pix = np.arange(SENSOR, dtype=np.float64) + 0.5
    u = (pix[None, :, None] - top - offset[:, None, None]) / s - 0.5
    return np.maximum(0.0, 1.0 - np.abs(u - np.arange(8)[None, None, :])).astype(np.float32)


def _path(u, amp, start):
    """Displacement (x, y) at recording fraction ``u`` in [0, 1] for per-sample amplitude/start."""
    legs = len(_PATH) - 1
    k = np.minimum((u * legs).astype(np.int64), legs - 1)
    f = u * legs - k
    ease = 0.5 - 0.5 * np.cos(np.pi * f)
    p = _PATH[k] + (_PATH[k + 1] - _PATH[k]) * ease[..., None]
    centre = _PATH[:-1].mean(axis=0)
    return (p - centre) * amp[:, None] + start


def _generate(indices, seed, images):
    b = len(indices)
    img = images[indices]
    rngs = [np.random.default_rng(np.random.SeedSequence([seed, int(i)])) for i in indices]
    amp = np.array([r.uniform(0.85, 1.15) for r in rngs])
    start = np.array([r.uniform(-0.75, 0.75, 2) for r in rngs])
    contrast = np.stack([
        CONTRAST * (1 + CONTRAST_SPREAD * r.standard_normal((SENSOR, SENSOR))) for r in rngs
    ]).astype(np.float32)
    phase = np.stack([r.uniform(-0.5, 0.5, (SENSOR, SENSOR)) for r in rngs]).astype(np.float32)

    def log_frame(t_us):
        d = _path(np.full(b, t_us / DURATION_US), amp, start)
        ry, rx = _tent_matrix(d[:, 1]), _tent_matrix(d[:, 0])
        frame = ry @ img @ rx.transpose(0, 2, 1)
        return np.log(BACKGROUND + (1 - BACKGROUND) * np.clip(frame, 0, 1))

    prev = log_frame(0)
    ref = prev + phase * contrast
    last = np.full((b, SENSOR, SENSOR), -np.inf, dtype=np.float64)
    out = []
    for step in range(1, DURATION_US // STEP_US + 1):
        t1 = step * STEP_US
        cur = log_frame(t1)
        diff = cur - ref
        n = np.floor(np.abs(diff) / contrast).astype(np.int64)
        if n.any():
            sign = np.sign(diff)
            slope = cur - prev
            safe = np.where(slope == 0, 1, slope)
            for k in range(1, min(int(n.max()), MAX_EVENTS_PER_STEP) + 1):
                fire = n >= k
                level = ref + sign * k * contrast
                frac = np.clip((level - prev) / safe, 0, 1)
                t = (t1 - STEP_US) + frac * STEP_US
                fire &= t >= last + REFRACTORY_US
                bi, yi, xi = np.nonzero(fire)
                if len(bi):
                    tk = t[bi, yi, xi]
                    last[bi, yi, xi] = tk
                    out.append((bi, yi, xi, np.round(tk).astype(np.int64),
                                (sign[bi, yi, xi] > 0).astype(np.int8)))
            ref = ref + sign * n * contrast
        prev = cur
    for j, r in enumerate(rngs):
        m = r.poisson(NOISE_EVENTS)
        out.append((np.full(m, j), r.integers(0, SENSOR, m), r.integers(0, SENSOR, m),
                    np.sort(r.integers(0, DURATION_US, m)), r.integers(0, 2, m).astype(np.int8)))
    bi, yi, xi, ti, pi = (np.concatenate(c) for c in zip(*out, strict=True))
    order = np.lexsort((xi, yi, ti, bi))
    ev = np.empty(len(order), dtype=EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = ti[order], xi[order], yi[order], pi[order]
    offsets = np.searchsorted(bi[order], np.arange(b + 1))
    return ev, offsets


def _fingerprint():
    """Short hash of the generator's parameters: a changed generator never reads a stale cache."""
    params = (_VERSION, SENSOR, DIGIT_SIZE, DURATION_US, STEP_US, CONTRAST, CONTRAST_SPREAD,
              REFRACTORY_US, BACKGROUND, NOISE_EVENTS, MAX_EVENTS_PER_STEP, CLIP, _PATH.tolist())
    return f"{zlib.crc32(repr(params).encode()):08x}"


def _cache_file(seed):
    return cache_dir() / f"eventdigits_v{_VERSION}_{_fingerprint()}_seed{seed}.npz"


def _check_seed(seed):
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")


def _all_events(seed):
    """Concatenated events, offsets [N+1] and labels of the whole set, from cache if present."""
    path = _cache_file(seed)
    got = load_npz(path, ["events", "offsets", "labels"])
    if got is not None and got["events"].dtype == EVENT_DTYPE:
        return got["events"], got["offsets"], got["labels"]
    images, labels = _digits()
    parts, offsets, base = [], [0], 0
    for lo in range(0, len(images), 300):
        ev, off = _generate(np.arange(lo, min(lo + 300, len(images))), seed, images)
        parts.append(ev)
        offsets.extend((off[1:] + base).tolist())
        base += len(ev)
    events = np.concatenate(parts)
    offsets = np.asarray(offsets, dtype=np.int64)
    frames = _frames(events, offsets)
    save_npz(path, events=events, offsets=offsets, labels=labels, frames=frames)
    return events, offsets, labels


def _frames(events, offsets):
    return np.stack([
        scale_counts(polarity_histogram(events[a:b], SENSOR, SENSOR), CLIP)
        for a, b in zip(offsets[:-1], offsets[1:], strict=True)
    ])


def make_eventdigits(*, seed: int = 0, n: int | None = None):
    """Synthetic event recordings of the scikit-learn digits.

    Parameters
    ----------
    seed : int
        Seed of the recording noise (thresholds, jitter, background events).
    n : int or None
        Only the first ``n`` digits (generated without touching the cache unless it exists);
        None for all 1,797 (cached under :func:`~models.data.events.cache_dir`).

    Returns
    -------
    events_list : list of event arrays (:data:`~models.data.events.EVENT_DTYPE`), one per digit
    labels : int64 [n]
    """
    _check_seed(seed)
    if n is not None and (not isinstance(n, (int, np.integer)) or not 0 < n <= N_DIGITS):
        raise ValueError(f"n must be an integer in [1, {N_DIGITS}] or None, not {n!r}")
    if n is None or _cache_file(seed).is_file():
        events, offsets, labels = _all_events(seed)
        k = N_DIGITS if n is None else n
    else:
        images, labels = _digits()
        events, offsets = _generate(np.arange(n), seed, images)
        k = n
    evs = [events[offsets[i]:offsets[i + 1]] for i in range(k)]
    return evs, labels[:k].copy()


def split_indices(split: str) -> np.ndarray:
    """Sorted digit indices of ``split`` in {"train", "val", "test", "all"} (see module doc)."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(N_DIGITS)
    n_test, n_val = round(0.2 * N_DIGITS), round(0.1 * N_DIGITS)
    parts = {"test": perm[:n_test], "val": perm[n_test:n_test + n_val],
             "train": perm[n_test + n_val:], "all": perm}
    if split not in parts:
        raise ValueError(f"split must be one of {sorted(parts)}, not {split!r}")
    return np.sort(parts[split])


def eventdigits_frames(*, seed: int = 0, split: str = "train"):
    """Input maps of one split: ``(x float32 [N, 2, 34, 34] in [0, 1], labels int64 [N])``.

    ``x`` is the polarity histogram (channel 0 OFF, 1 ON) of the whole 300 ms recording, counts
    clipped at :data:`CLIP` and divided by it. Cached with the events.
    """
    _check_seed(seed)
    idx = split_indices(split)
    got = load_npz(_cache_file(seed), ["frames", "labels"])
    if got is None:
        _all_events(seed)
        got = load_npz(_cache_file(seed), ["frames", "labels"])
    return got["frames"][idx], got["labels"][idx]
