"""Loader for the AIS2024 Event-based Eye Tracking recordings (3ET+, 640x480 DVS).

One recording is a directory ``<rec>/`` holding ``<rec>.h5`` with a dataset ``events`` of a compound
type with fields ``t`` (microseconds), ``x``, ``y``, ``p`` (0/1), and ``label.txt`` with one line
``(x, y, closed)`` per 10 ms (100 Hz): the pupil centre in sensor pixels and 1 if the eye is closed.

Alignment (the challenge baseline's convention): with ``t0`` the first event's timestamp,
label ``i`` belongs to the 10 ms slice ``[t0 + 10 i ms, t0 + 10 (i + 1) ms)``. A window of
``window_us`` starting at ``t0 + j * stride_us`` takes the label of the slice it starts in, index
``j * stride_us / 10 ms`` (``stride_us`` must be a multiple of 10 ms). With the defaults (50 ms
windows, 50 ms stride) window j spans slices ``5j .. 5j + 4`` and takes label ``5j``: the
baseline's 20 Hz ``labels[::5]``. Only complete windows are made, while both events and labels
last.

Input maps: :func:`~models.data.events.polarity_histogram` downsampled by 8 to 80x60, counts scaled
by :func:`~models.data.events.scale_counts` with :data:`EYE_CLIP`; labels divided by 8 (80x60
pixel units). :mod:`models.data.eye` produces the same representation from synthetic data.

Every problem with a file raises one :class:`~models.data.events.DataError` naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .events import EVENT_DTYPE, DataError, scale_counts, validate_events, window_histograms

__all__ = [
    "SENSOR_HEIGHT",
    "SENSOR_WIDTH",
    "DOWNSAMPLE",
    "LABEL_PERIOD_US",
    "WINDOW_US",
    "EYE_CLIP",
    "load_events",
    "load_labels",
    "load_recording",
    "eye_windows",
    "recording_frames",
]

SENSOR_WIDTH = 640
SENSOR_HEIGHT = 480
DOWNSAMPLE = 8
LABEL_PERIOD_US = 10_000
WINDOW_US = 50_000
#: Per-site event count at which an input map saturates to 1.0.
EYE_CLIP = 8.0

_NUM = r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
_LABEL_RE = re.compile(rf"^\s*\({_NUM},{_NUM},{_NUM}\)\s*$")


def _rec_paths(path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix == ".h5":
        return path, path.parent / "label.txt"
    return path / f"{path.name}.h5", path / "label.txt"


def load_events(h5path) -> np.ndarray:
    """The events of one ``.h5`` file as an :data:`~models.data.events.EVENT_DTYPE` array."""
    import h5py

    h5path = Path(h5path)
    if not h5path.is_file():
        raise DataError(f"{h5path}: event file not found")
    try:
        f = h5py.File(h5path, "r")
    except OSError as e:
        raise DataError(f"{h5path}: not a readable HDF5 file ({e})") from None
    with f:
        if "events" not in f:
            raise DataError(f"{h5path}: no dataset 'events' (has {sorted(f.keys())})")
        ds = f["events"]
        if not isinstance(ds, h5py.Dataset):
            raise DataError(f"{h5path}: 'events' is a group, not a dataset")
        names = ds.dtype.names or ()
        missing = [k for k in ("t", "x", "y", "p") if k not in names]
        if missing:
            raise DataError(
                f"{h5path}: dataset 'events' lacks field(s) {missing} (has {list(names)})"
            )
        if ds.ndim != 1:
            raise DataError(f"{h5path}: dataset 'events' must be 1-D, not shape {ds.shape}")
        try:
            raw = ds[()]
        except (OSError, RuntimeError, ValueError) as e:
            raise DataError(f"{h5path}: truncated or corrupt 'events' data ({e})") from None
    ev = np.empty(len(raw), dtype=EVENT_DTYPE)
    for k in ("t", "x", "y", "p"):
        col = raw[k]
        if col.dtype == np.bool_:
            col = col.astype(np.int8)
        if not np.issubdtype(col.dtype, np.integer):
            raise DataError(f"{h5path}: event field {k!r} is {col.dtype}, not an integer type")
        if len(col) and (col.min() < 0 or col.max() > np.iinfo(EVENT_DTYPE[k]).max):
            raise DataError(f"{h5path}: event field {k!r} out of range [{col.min()}, {col.max()}]")
        ev[k] = col
    try:
        validate_events(ev, height=SENSOR_HEIGHT, width=SENSOR_WIDTH)
    except DataError as e:
        raise DataError(f"{h5path}: {e}") from None
    return ev


def load_labels(txtpath) -> tuple[np.ndarray, np.ndarray]:
    """``(xy float32 [N, 2], closed int64 [N])`` from a label file of ``(x, y, closed)`` lines."""
    txtpath = Path(txtpath)
    if not txtpath.is_file():
        raise DataError(f"{txtpath}: label file not found")
    try:
        text = txtpath.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{txtpath}: unreadable label file ({e})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    xy = np.empty((len(lines), 2), dtype=np.float32)
    closed = np.empty(len(lines), dtype=np.int64)
    for i, line in enumerate(lines):
        m = _LABEL_RE.match(line)
        if m is None:
            raise DataError(f"{txtpath}:{i + 1}: expected '(x, y, closed)', got {line!r}")
        x, y, c = (float(g) for g in m.groups())
        if c not in (0.0, 1.0):
            raise DataError(f"{txtpath}:{i + 1}: closed flag must be 0 or 1, got {line!r}")
        if not (0.0 <= x < SENSOR_WIDTH and 0.0 <= y < SENSOR_HEIGHT):  # NaN and inf fail too
            raise DataError(f"{txtpath}:{i + 1}: pupil ({x}, {y}) lies outside the "
                            f"{SENSOR_WIDTH}x{SENSOR_HEIGHT} sensor, got {line!r}")
        xy[i] = x, y
        closed[i] = int(c)
    if not lines:
        raise DataError(f"{txtpath}: no labels")
    return xy, closed


def load_recording(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(events, labels float32 [N, 2] (x, y) sensor pixels, closed int64 [N])`` of a recording.

    ``path`` is the recording directory ``<rec>`` (or its ``<rec>/<rec>.h5``).
    """
    h5path, txtpath = _rec_paths(path)
    return (load_events(h5path), *load_labels(txtpath))


def eye_windows(events, labels, closed, *, t0: int, window_us: int = WINDOW_US,
                stride_us: int = WINDOW_US, clip: float = EYE_CLIP):
    """Windowed 80x60 input maps aligned with 100 Hz labels, as documented in this module.

    Returns ``(x float32 [T, 2, 60, 80], labels float32 [T, 2] in 80x60 units, closed [T])``.
    """
    if stride_us <= 0 or stride_us % LABEL_PERIOD_US:
        raise ValueError(f"stride_us must be a positive multiple of {LABEL_PERIOD_US}, "
                         f"not {stride_us!r}")
    if window_us <= 0:
        raise ValueError(f"window_us must be positive, not {window_us!r}")
    labels = np.asarray(labels, dtype=np.float32)
    step = stride_us // LABEL_PERIOD_US
    n_lab = (len(labels) - 1) // step + 1 if len(labels) else 0
    t_end = int(events["t"][-1]) + 1 if len(events) else t0
    n_ev = max(0, (t_end - t0 - window_us) // stride_us + 1)
    n = int(min(n_lab, n_ev))
    starts = t0 + np.arange(n, dtype=np.int64) * stride_us
    hist = window_histograms(events, starts, window_us, SENSOR_HEIGHT, SENSOR_WIDTH,
                             downsample=DOWNSAMPLE)
    idx = np.arange(n) * step
    return (scale_counts(hist, clip), labels[idx] / np.float32(DOWNSAMPLE),
            np.asarray(closed)[idx])


def recording_frames(path, *, window_us: int = WINDOW_US, stride_us: int = WINDOW_US,
                     clip: float = EYE_CLIP):
    """One recording as windowed input maps with their labels.

    Parameters
    ----------
    path : path-like
        The recording directory ``<rec>`` (or ``<rec>/<rec>.h5``).
    window_us, stride_us : int
        Window length and start-to-start stride in microseconds; the stride is a multiple of 10 ms.
    clip : float
        Count at which a site saturates (see :func:`~models.data.events.scale_counts`).

    Returns
    -------
    x : float32 [T, 2, 60, 80]
    labels : float32 [T, 2]
        Pupil centre (x, y) in 80x60 pixel units (sensor pixels / 8).
    closed : int64 [T]
    """
    events, labels, closed = load_recording(path)
    if len(events) == 0:
        raise DataError(f"{_rec_paths(path)[0]}: no events")
    return eye_windows(events, labels, closed, t0=int(events["t"][0]), window_us=window_us,
                       stride_us=stride_us, clip=clip)
