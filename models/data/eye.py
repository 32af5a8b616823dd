"""Synthetic event-based eye tracking: a near-eye 640x480 event camera watching a moving eye.

Scene (sensor pixel units, pixel index coordinates, y down). Per sequence the eye centre, the sizes
and the textures are drawn at random:

- sclera (bright, shaded towards the corners) inside the palpebral aperture, bounded by an upper
  and a lower eyelid curve ``y = cy + a (1 - ((x - cx) / w)^2)`` that meet at the eye corners;
- iris (darker, with a separable texture) and pupil (dark), both ellipses
  foreshortened as the eyeball rotates (eyeball radius ~300 px), plus one corneal glint from the IR
  illuminator that moves half as much as the pupil;
- skin outside the aperture with a static texture; the upper lid's skin, its margin and its
  eyelashes move with the lid, which also follows vertical gaze;
- gaze: fixations (150-600 ms) with drift and microsaccades, saccades (minimum-jerk profile,
  duration 20 ms + 0.35 ms per pixel of amplitude), smooth pursuit (30-150 px/s); blinks (about
  one every 4 s: lid closes in 60-90 ms, stays 20-80 ms, reopens in 100-180 ms); slow pupil
  dilation.

Sensor. The scene is rendered on a 160x120 grid (one render pixel per 4x4 sensor block) every
:data:`STEP_US`; a render pixel emits :data:`EVENTS_PER_CROSSING` events (at distinct sensor pixels
of its block) each time its log-intensity crosses its contrast threshold (per-pixel mismatch), at
the interpolated crossing time, with a refractory period. Noise: uniform background activity and a
few hot pixels, at full 640x480 resolution.

Labels: pupil centre (x, y) in sensor pixels and ``closed`` (the upper lid lies below the pupil
centre) at 100 Hz, label ``i`` at ``t = 10 i ms``. Windows: 50 ms, window ``j`` spans
``[50 j, 50 (j + 1)) ms`` and takes label ``5 j``, the same alignment as
:mod:`models.data.ais2024` with ``t0 = 0``. Input maps are the same as for the real data: 2-channel
polarity histograms downsampled by 8 to 80x60, counts scaled by
:data:`~models.data.ais2024.EYE_CLIP`; labels in 80x60 units (sensor pixels / 8).

The parameters are tuned so that the mean fraction of active 80x60 sites per window is near 0.2,
that of the real AIS2024 data; ``benchmarks/eye_density.py`` measures it.

Split (fixed, independent of ``seed``): sequences are i.i.d.; a permutation of the sequence
indices drawn with ``numpy.random.default_rng(SPLIT_SEED)``; its first 20 % are ``test``, the next
10 % ``val``, the rest ``train``. :func:`models.nets.eye.eye_data` trains on that ``train`` split
plus every sequence (``split="all"``) of data seeds from 1000 on, which it reserves as extra
training recordings; val and test stay those of the data seed.
"""

from __future__ import annotations

import zlib

import numpy as np

from .ais2024 import DOWNSAMPLE, EYE_CLIP, LABEL_PERIOD_US, SENSOR_HEIGHT, SENSOR_WIDTH, WINDOW_US
from .events import EVENT_DTYPE, cache_dir, load_npz, save_npz, scale_counts, window_histograms

__all__ = [
    "N_SEQUENCES",
    "SEQ_LEN",
    "SPLIT_SEED",
    "make_eye_dataset",
    "eye_frames",
    "split_indices",
]

N_SEQUENCES = 60
SEQ_LEN = 40
SPLIT_SEED = 20_240_418
_VERSION = 1

RENDER_SCALE = 4
RW, RH = SENSOR_WIDTH // RENDER_SCALE, SENSOR_HEIGHT // RENDER_SCALE
STEP_US = 2_000
CONTRAST = 0.15
CONTRAST_SPREAD = 0.1
REFRACTORY_US = 1_000
EVENTS_PER_CROSSING = 4
MAX_CROSSINGS_PER_STEP = 3
BACKGROUND_HZ = 0.03  # per sensor pixel
HOT_PIXELS = (2, 7)
HOT_HZ = (20.0, 200.0)
EYEBALL_PX = 300.0
BLINK_HZ = 0.25
_BATCH = 4

_XR = np.arange(RW, dtype=np.float32) * RENDER_SCALE + (RENDER_SCALE - 1) / 2
_YR = np.arange(RH, dtype=np.float32) * RENDER_SCALE + (RENDER_SCALE - 1) / 2


# ----------------------------------------------------------------------------- motion


def _minjerk(u):
    return u * u * u * (10 - 15 * u + 6 * u * u)


def _clamp_gaze(g, ax, ay):
    r = np.sqrt((g[..., 0] / ax) ** 2 + (g[..., 1] / ay) ** 2)
    f = np.where(r > 1, 1 / np.maximum(r, 1e-9), 1.0)
    return g * f[..., None]


def _gaze_track(rng, n_ms, ax, ay):
    """Gaze offset (x, y) in px from the eye centre, one sample per ms, ``[n_ms + 1, 2]``."""
    out = np.empty((n_ms + 1, 2))
    pos = _clamp_gaze(rng.uniform(-1, 1, 2) * [ax, ay], ax, ay)
    t = 0
    while t <= n_ms:
        if rng.random() < 0.2:
            dur = int(rng.uniform(300, 1000))
            ang = rng.uniform(0, 2 * np.pi)
            v = rng.uniform(30, 150) / 1000 * np.array([np.cos(ang), np.sin(ang)])
            seg = pos + v * np.arange(1, dur + 1)[:, None]
            seg = _clamp_gaze(seg, ax, ay)
        else:
            dur = int(rng.uniform(150, 600))
            drift = np.cumsum(rng.normal(0, 0.2, (dur, 2)), axis=0)
            seg = pos + drift
            for _ in range(rng.poisson(2.0 * dur / 1000)):
                t_ms = int(rng.integers(0, dur))
                amp = rng.uniform(3, 14) * np.array([np.cos(a := rng.uniform(0, 6.3)), np.sin(a)])
                ramp = _minjerk(np.clip((np.arange(dur) - t_ms) / 15, 0, 1))
                seg = seg + ramp[:, None] * amp
            seg = _clamp_gaze(seg, ax, ay)
        pos = seg[-1]
        target = _clamp_gaze(rng.uniform(-1, 1, 2) * [ax, ay], ax, ay)
        amp = float(np.hypot(*(target - pos)))
        sdur = max(1, int(20 + 0.35 * amp))
        u = _minjerk(np.arange(1, sdur + 1) / sdur)
        sac = pos + (target - pos) * u[:, None]
        seg = np.concatenate([seg, sac])
        pos = target
        k = min(len(seg), n_ms + 1 - t)
        out[t:t + k] = seg[:k]
        t += k
    return out


def _closure_track(rng, n_ms):
    """Eyelid closure in [0, 1] per ms (0 open, 1 shut), ``[n_ms + 1]``."""
    c = np.zeros(n_ms + 1)
    t = rng.exponential(1000 / BLINK_HZ) * rng.random()
    while t < n_ms:
        close, hold, reopen = rng.uniform(60, 90), rng.uniform(20, 80), rng.uniform(100, 180)
        s = np.arange(n_ms + 1) - t
        down = 0.5 - 0.5 * np.cos(np.pi * np.clip(s / close, 0, 1))
        up = 0.5 - 0.5 * np.cos(np.pi * np.clip((s - close - hold) / reopen, 0, 1))
        c = np.maximum(c, down - up)
        t += close + hold + reopen + rng.exponential(1000 / BLINK_HZ)
    return c


# ----------------------------------------------------------------------------- scene


class _Scene:
    """Per-sequence constants of a batch of sequences, stacked along axis 0."""

    def __init__(self, rngs, n_ms):
        b = len(rngs)
        f32 = np.float32
        self.cx = np.array([r.uniform(280, 360) for r in rngs], f32)
        self.cy = np.array([r.uniform(215, 265) for r in rngs], f32)
        self.w = np.array([r.uniform(230, 280) for r in rngs], f32)
        self.a_up = np.array([r.uniform(105, 135) for r in rngs], f32)
        self.a_lo = np.array([r.uniform(85, 115) for r in rngs], f32)
        self.r_iris = np.array([r.uniform(95, 115) for r in rngs], f32)
        self.r_pupil = np.array([r.uniform(30, 45) for r in rngs], f32)
        self.i_sclera = np.array([r.uniform(0.6, 0.8) for r in rngs], f32)
        self.i_iris = np.array([r.uniform(0.22, 0.38) for r in rngs], f32)
        self.i_pupil = np.array([r.uniform(0.03, 0.07) for r in rngs], f32)
        self.i_skin = np.array([r.uniform(0.4, 0.6) for r in rngs], f32)
        self.glint = np.array([r.uniform(-40, 40, 2) for r in rngs], f32)
        # separable textures: sum of products of sinusoids
        k = [r.uniform(0.03, 0.12, (3, 2)) for r in rngs]
        ph = [r.uniform(0, 2 * np.pi, (3, 2)) for r in rngs]
        self.skin_kx = np.array([kk[:, 0] for kk in k], f32)
        self.skin_ky = np.array([kk[:, 1] for kk in k], f32)
        self.skin_px = np.array([p[:, 0] for p in ph], f32)
        self.skin_py = np.array([p[:, 1] for p in ph], f32)
        self.iris_k = np.array([r.uniform(0.15, 0.3, 2) for r in rngs], f32)
        self.lash_k = np.array([r.uniform(0.25, 0.45) for r in rngs], f32)
        # static skin texture [B, RH, RW]
        sx = np.sin(self.skin_kx[:, :, None] * _XR + self.skin_px[:, :, None])  # [B,3,RW]
        sy = np.sin(self.skin_ky[:, :, None] * _YR + self.skin_py[:, :, None])  # [B,3,RH]
        self.tex0 = np.einsum("bky,bkx->byx", sy, sx).astype(f32)
        self.sx = sx.astype(f32)
        cy_ = np.cos(self.skin_ky[:, :, None] * _YR + self.skin_py[:, :, None])
        # [sin | -cos] of the rows, so that one matmul gives the moved lid texture
        self.syc = np.concatenate([sy, -cy_], axis=1).transpose(0, 2, 1).astype(f32).copy()
        self.sclera_k = np.array([r.uniform(0.06, 0.14, 2) for r in rngs], f32)
        u = (_XR[None, :] - self.cx[:, None]) / self.w[:, None]
        self.u2 = np.minimum(u * u, 1).astype(f32)  # [B, RW]
        # the aperture closes at the eye corners
        self.corner = np.clip((1 - u * u) * 8, 0, 1).astype(f32)[:, None, :]
        shade = 1 - 0.35 * np.minimum(u * u, 1)
        self.sclera = (self.i_sclera[:, None] * shade).astype(f32)[:, None, :]  # [B,1,RW]
        lash = 0.6 + 0.4 * np.sin(self.lash_k[:, None] * _XR[None, :]) ** 2
        self.lash = lash.astype(f32)[:, None, :]
        # motion tracks, per ms
        self.gaze = np.stack([_gaze_track(r, n_ms, 150.0, 80.0) for r in rngs]).astype(f32)
        self.closure = np.stack([_closure_track(r, n_ms) for r in rngs]).astype(f32)
        period = np.array([r.uniform(3000, 8000) for r in rngs])
        phase = np.array([r.uniform(0, 2 * np.pi) for r in rngs])
        t = np.arange(n_ms + 1)
        self.dilation = (1 + 0.12 * np.sin(2 * np.pi * t[None, :] / period[:, None]
                                           + phase[:, None])).astype(f32)
        self.b = b

    def upper_lid(self, gy, c):
        """Upper lid y per render column ``[B, RW]`` and the lid's shift from rest."""
        bulge = 1 - self.u2
        rest = self.cy[:, None] - self.a_up[:, None] * bulge
        opened = self.cy[:, None] + (0.6 * gy[:, None] - self.a_up[:, None]) * bulge
        shut = self.cy[:, None] + 0.5 * self.a_lo[:, None] * bulge
        y = opened + c[:, None] * (shut - opened)
        return y, y - rest

    def pupil(self, ms):
        """Pupil centre ``(x [B, L], y [B, L])`` at the times ``ms`` (array of ms)."""
        g = self.gaze[:, ms]
        return self.cx[:, None] + g[..., 0], self.cy[:, None] + g[..., 1]

    def closed(self, ms):
        """``[B, L]``: 1 where the upper lid lies below the pupil centre."""
        px, py = self.pupil(ms)
        gy = self.gaze[:, ms, 1]
        c = self.closure[:, ms]
        cy, a_up, a_lo = self.cy[:, None], self.a_up[:, None], self.a_lo[:, None]
        bulge = 1 - np.minimum(((px - self.cx[:, None]) / self.w[:, None]) ** 2, 1)
        opened = cy + (0.6 * gy - a_up) * bulge
        shut = cy + 0.5 * a_lo * bulge
        return (opened + c * (shut - opened) > py).astype(np.int8)

    def log_frame(self, ms):
        """Log intensity ``[B, RH, RW]`` at time ``ms``."""
        f32 = np.float32
        g = self.gaze[:, ms]
        c = self.closure[:, ms]
        px, py = self.cx + g[:, 0], self.cy + g[:, 1]
        # foreshortening of the iris/pupil disc as the eyeball turns
        fx = np.sqrt(np.maximum(0.2, 1 - (g[:, 0] / EYEBALL_PX) ** 2)).astype(f32)
        fy = np.sqrt(np.maximum(0.2, 1 - (g[:, 1] / EYEBALL_PX) ** 2)).astype(f32)
        dx = _XR[None, :] - px[:, None]  # [B, RW]
        dy = _YR[None, :] - py[:, None]  # [B, RH]
        ri = self.r_iris
        rp = self.r_pupil * self.dilation[:, ms]
        ex_i = (dx / (ri * fx)[:, None]) ** 2
        ey_i = (dy / (ri * fy)[:, None]) ** 2
        r2i = ey_i[:, :, None] + ex_i[:, None, :]
        m_iris = np.clip((1 - r2i) * (ri / 12)[:, None, None] + 0.5, 0, 1)
        q = (ri / rp) ** 2
        r2p = r2i * q[:, None, None]
        m_pupil = np.clip((1 - r2p) * (rp / 8)[:, None, None] + 0.5, 0, 1)
        tex = np.cos(self.iris_k[:, 0:1] * dx)[:, None, :] * np.cos(self.iris_k[:, 1:2] * dy)[
            :, :, None]
        iris = self.i_iris[:, None, None] * (1 + 0.3 * tex)
        # sclera texture (vessels, shading) turns with the eyeball
        sct = (np.cos(self.sclera_k[:, 1:2] * dy)[:, :, None]
               * np.cos(self.sclera_k[:, 0:1] * dx)[:, None, :])
        sclera = self.sclera * (1 + 0.15 * sct)
        eye = sclera + m_iris * (iris - sclera)
        eye += m_pupil * (self.i_pupil[:, None, None] - eye)
        # the glint sits at cx + g / 2 + offset: it moves half as much as the pupil
        glx = np.exp(-(((dx + 0.5 * g[:, 0:1] - self.glint[:, 0:1]) / 7) ** 2))
        gly = np.exp(-(((dy + 0.5 * g[:, 1:2] - self.glint[:, 1:2]) / 7) ** 2))
        eye += 0.9 * gly[:, :, None] * glx[:, None, :]
        # eyelids
        y_up, shift = self.upper_lid(g[:, 1], c)
        bulge = 1 - self.u2
        y_lo = self.cy[:, None] + self.a_lo[:, None] * bulge * (1 - 0.1 * c[:, None])
        d_up = _YR[None, :, None] - y_up[:, None, :]  # [B, RH, RW]
        aperture = np.clip(d_up * 0.25 + 0.5, 0, 1)
        aperture *= np.clip((y_lo[:, None, :] - _YR[None, :, None]) * 0.25 + 0.5, 0, 1)
        aperture *= self.corner
        # upper-lid skin: the static texture shifted down with the lid, fading 150 px above it
        ks = self.skin_ky[:, :, None] * shift[:, None, :]  # [B, 3, RW]
        a_ = self.sx * np.cos(ks)
        b_ = self.sx * np.sin(ks)
        moved = np.matmul(self.syc, np.concatenate([a_, b_], axis=1))
        fade = np.clip(1 + d_up / 150, 0, 1) * (d_up < 0)
        skin = self.i_skin[:, None, None] * (1 + 0.12 * (self.tex0 + fade * (moved - self.tex0)))
        img = skin + aperture * (eye - skin)
        band = np.clip(1 - np.abs(d_up + 6) / 9, 0, 1) * (self.lash * self.corner)
        img *= 1 - 0.7 * band
        return np.log(np.maximum(img, 1e-3) + 0.02, dtype=f32)


# ----------------------------------------------------------------------------- events


def _hash_sub(b, y, x, t, salt):
    h = (x.astype(np.int64) * 73856093) ^ (y.astype(np.int64) * 19349663)
    h ^= t.astype(np.int64) * 83492791 + salt[b]
    h = (h ^ (h >> 13)) * 1274126177
    return (h ^ (h >> 16)) & 0xFFFF


def _render_events(rngs, n_ms, seeds):
    """Events of a batch of sequences: list of per-sequence event arrays, plus the scene."""
    b = len(rngs)
    scene = _Scene(rngs, n_ms)
    contrast = np.stack([
        CONTRAST * (1 + CONTRAST_SPREAD * r.standard_normal((RH, RW))) for r in rngs
    ]).astype(np.float32)
    contrast = np.maximum(contrast, 0.05)
    phase = np.stack([r.uniform(-0.5, 0.5, (RH, RW)) for r in rngs]).astype(np.float32)
    salt = np.asarray(seeds, dtype=np.int64) * 2654435761 % (1 << 31)
    prev = scene.log_frame(0).reshape(-1)
    ref = prev + (phase * contrast).reshape(-1)
    contrast = contrast.reshape(-1)
    last = np.full(b * RH * RW, -1e9, dtype=np.float64)
    step_ms = STEP_US // 1000
    out = []
    for ms in range(step_ms, n_ms + 1, step_ms):
        t1 = ms * 1000
        cur = scene.log_frame(ms).reshape(-1)
        diff = cur - ref
        idx = np.flatnonzero(np.abs(diff) >= contrast)
        if len(idx):
            d, c, p0 = diff[idx], contrast[idx], prev[idx]
            n = np.floor(np.abs(d) / c)
            sign = np.sign(d)
            r0 = ref[idx]
            slope = cur[idx] - p0
            slope[slope == 0] = 1
            for k in range(1, min(int(n.max()), MAX_CROSSINGS_PER_STEP) + 1):
                sel = np.flatnonzero(n >= k)
                frac = np.clip((r0[sel] + sign[sel] * (k * c[sel]) - p0[sel]) / slope[sel], 0, 1)
                t = (t1 - STEP_US) + frac * STEP_US
                where = idx[sel]
                ok = t >= last[where] + REFRACTORY_US
                where, t = where[ok], t[ok]
                last[where] = t
                out.append((where, np.round(t).astype(np.int64),
                            (sign[sel][ok] > 0).astype(np.int8)))
            ref[idx] = r0 + sign * n * c
        prev = cur
    if out:
        flat, ti, pi = (np.concatenate(c) for c in zip(*out, strict=True))
    else:
        flat, ti, pi = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int8)
    bi, yi, xi = np.unravel_index(flat, (b, RH, RW))
    # each crossing fires EVENTS_PER_CROSSING distinct sensor pixels of the 4x4 block
    sub = _hash_sub(bi, yi, xi, ti, salt)
    per = EVENTS_PER_CROSSING
    reps = [((sub + 5 * j) % 16) for j in range(per)]  # 5 is coprime to 16: distinct
    sub = np.concatenate(reps)
    bi, yi, xi, ti, pi = (np.tile(a, per) for a in (bi, yi, xi, ti, pi))
    jitter = _hash_sub(bi, yi, xi, ti + sub, salt) % 200
    ti = np.minimum(ti + jitter, n_ms * 1000 - 1)
    sx = xi.astype(np.int64) * RENDER_SCALE + sub % RENDER_SCALE
    sy = yi.astype(np.int64) * RENDER_SCALE + sub // RENDER_SCALE
    seqs = []
    dur_us = n_ms * 1000
    for j, r in enumerate(rngs):
        m = bi == j
        nb = r.poisson(BACKGROUND_HZ * SENSOR_WIDTH * SENSOR_HEIGHT * dur_us / 1e6)
        parts_t = [ti[m], r.integers(0, dur_us, nb)]
        parts_x = [sx[m], r.integers(0, SENSOR_WIDTH, nb)]
        parts_y = [sy[m], r.integers(0, SENSOR_HEIGHT, nb)]
        parts_p = [pi[m], (r.random(nb) < 0.6).astype(np.int8)]
        for _ in range(int(r.integers(HOT_PIXELS[0], HOT_PIXELS[1] + 1))):
            nh = r.poisson(r.uniform(*HOT_HZ) * dur_us / 1e6)
            parts_t.append(r.integers(0, dur_us, nh))
            parts_x.append(np.full(nh, r.integers(0, SENSOR_WIDTH)))
            parts_y.append(np.full(nh, r.integers(0, SENSOR_HEIGHT)))
            parts_p.append(r.integers(0, 2, nh).astype(np.int8))
        t_, x_, y_, p_ = (np.concatenate(c) for c in (parts_t, parts_x, parts_y, parts_p))
        order = np.argsort((t_ * SENSOR_HEIGHT + y_) * SENSOR_WIDTH + x_)
        ev = np.empty(len(order), EVENT_DTYPE)
        ev["t"], ev["x"], ev["y"], ev["p"] = t_[order], x_[order], y_[order], p_[order]
        seqs.append(ev)
    return seqs, scene


def _check_int(name, v, lo):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, not {v!r}")


def make_eye_dataset(*, seed: int = 0, n_sequences: int = N_SEQUENCES,
                     seq_len: int = SEQ_LEN, keep_events: bool = True) -> dict:
    """Generate synthetic eye-tracking sequences (not cached; see :func:`eye_frames`).

    Parameters
    ----------
    seed : int
        Sequence ``i`` depends only on ``(seed, i)``.
    n_sequences : int
        Number of independent sequences (recordings).
    seq_len : int
        Windows of 50 ms per sequence (a sequence lasts ``seq_len * 50`` ms).
    keep_events : bool
        Return the events (about 400k per second of recording); False drops them once windowed.

    Returns
    -------
    dict with
        ``events``: all events (EVENT_DTYPE), sequence after sequence, each starting at t = 0
        (empty unless ``keep_events``);
        ``offsets`` int64 [S + 1]: sequence ``s`` is ``events[offsets[s]:offsets[s + 1]]``;
        ``labels`` float32 [S, 5 T, 2]: pupil centre (x, y), sensor pixels, 100 Hz;
        ``closed`` int8 [S, 5 T]: 100 Hz closed flag;
        ``counts`` float32 [S, T, 2, 60, 80]: event counts of the 50 ms windows (80x60 sites);
        ``x`` float32 [S, T, 2, 60, 80]: the input maps, ``scale_counts(counts, EYE_CLIP)``;
        ``win_labels`` float32 [S, T, 2]: window labels in 80x60 units;
        ``win_closed`` int8 [S, T].
    """
    _check_int("seed", seed, 0)
    _check_int("n_sequences", n_sequences, 1)
    _check_int("seq_len", seq_len, 1)
    n_ms = seq_len * WINDOW_US // 1000
    n_lab = seq_len * WINDOW_US // LABEL_PERIOD_US
    lab_ms = np.arange(n_lab) * (LABEL_PERIOD_US // 1000)
    starts = np.arange(seq_len, dtype=np.int64) * WINDOW_US
    events, offsets = [], [0]
    labels = np.empty((n_sequences, n_lab, 2), np.float32)
    closed = np.empty((n_sequences, n_lab), np.int8)
    counts = np.empty((n_sequences, seq_len, 2, SENSOR_HEIGHT // DOWNSAMPLE,
                       SENSOR_WIDTH // DOWNSAMPLE), np.float32)
    for lo in range(0, n_sequences, _BATCH):
        idx = list(range(lo, min(lo + _BATCH, n_sequences)))
        rngs = [np.random.default_rng(np.random.SeedSequence([seed, i])) for i in idx]
        seqs, scene = _render_events(rngs, n_ms, [seed * 100_003 + i for i in idx])
        for j, (i, ev) in enumerate(zip(idx, seqs, strict=True)):
            if keep_events:
                events.append(ev)
            offsets.append(offsets[-1] + (len(ev) if keep_events else 0))
            counts[i] = window_histograms(ev, starts, WINDOW_US, SENSOR_HEIGHT, SENSOR_WIDTH,
                                          downsample=DOWNSAMPLE)
            px, py = scene.pupil(lab_ms)
            labels[i, :, 0], labels[i, :, 1] = px[j], py[j]
            closed[i] = scene.closed(lab_ms)[j]
    win = np.arange(seq_len) * (WINDOW_US // LABEL_PERIOD_US)
    return {
        "events": np.concatenate(events) if events else np.zeros(0, EVENT_DTYPE),
        "offsets": np.asarray(offsets, np.int64),
        "labels": labels,
        "closed": closed,
        "x": scale_counts(counts, EYE_CLIP),
        "counts": counts,
        "win_labels": labels[:, win] / np.float32(DOWNSAMPLE),
        "win_closed": closed[:, win],
    }


def _fingerprint():
    """Short hash of the generator's parameters: a changed generator never reads a stale cache."""
    params = (_VERSION, RENDER_SCALE, STEP_US, CONTRAST, CONTRAST_SPREAD, REFRACTORY_US,
              EVENTS_PER_CROSSING, MAX_CROSSINGS_PER_STEP, BACKGROUND_HZ, HOT_PIXELS, HOT_HZ,
              EYEBALL_PX, BLINK_HZ, EYE_CLIP)
    return f"{zlib.crc32(repr(params).encode()):08x}"


def split_indices(split: str, n_sequences: int = N_SEQUENCES) -> np.ndarray:
    """Sorted sequence indices of ``split`` in {"train", "val", "test", "all"}."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n_sequences)
    n_test, n_val = round(0.2 * n_sequences), round(0.1 * n_sequences)
    parts = {"test": perm[:n_test], "val": perm[n_test:n_test + n_val],
             "train": perm[n_test + n_val:], "all": perm}
    if split not in parts:
        raise ValueError(f"split must be one of {sorted(parts)}, not {split!r}")
    return np.sort(parts[split])


def eye_frames(*, seed: int = 0, split: str = "train", n_sequences: int = N_SEQUENCES,
               seq_len: int = SEQ_LEN):
    """Input sequences of one split for a recurrent tracker, cached.

    Returns
    -------
    x : float32 [S, T, 2, 60, 80]
        Scaled polarity histograms of consecutive 50 ms windows.
    labels : float32 [S, T, 2]
        Pupil centre (x, y) in 80x60 pixel units at each window's start (see module doc).
    closed : int8 [S, T]
    """
    _check_int("seed", seed, 0)
    _check_int("n_sequences", n_sequences, 1)
    _check_int("seq_len", seq_len, 1)
    idx = split_indices(split, n_sequences)
    name = f"eye_v{_VERSION}_{_fingerprint()}_seed{seed}_n{n_sequences}_len{seq_len}.npz"
    path = cache_dir() / name
    got = load_npz(path, ["counts", "win_labels", "win_closed"])
    if got is None:
        d = make_eye_dataset(seed=seed, n_sequences=n_sequences, seq_len=seq_len,
                             keep_events=False)
        got = {"counts": np.minimum(d["counts"], 255).astype(np.uint8),
               "win_labels": d["win_labels"], "win_closed": d["win_closed"]}
        save_npz(path, **got)
    return (scale_counts(got["counts"][idx], EYE_CLIP), got["win_labels"][idx],
            got["win_closed"][idx])
