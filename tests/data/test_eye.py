import numpy as np
import pytest

from models.data import eye
from models.data.ais2024 import EYE_CLIP, eye_windows, load_recording
from models.data.events import (
    EVENT_DTYPE,
    polarity_histogram,
    scale_counts,
    validate_events,
    window_events,
)


@pytest.fixture(scope="module")
def small():
    return eye.make_eye_dataset(seed=5, n_sequences=3, seq_len=12)


def _seq(d, s):
    return d["events"][d["offsets"][s]:d["offsets"][s + 1]]


def test_shapes_and_events(small):
    d = small
    assert d["x"].shape == (3, 12, 2, 60, 80) and d["x"].dtype == np.float32
    assert d["labels"].shape == (3, 60, 2) and d["closed"].shape == (3, 60)
    assert d["win_labels"].shape == (3, 12, 2) and d["win_closed"].shape == (3, 12)
    assert d["events"].dtype == EVENT_DTYPE
    for s in range(3):
        ev = _seq(d, s)
        validate_events(ev, height=480, width=640)  # sorted, on the sensor, p in {0, 1}
        assert len(ev) > 10_000
        assert 0.2 < ev["p"].mean() < 0.8
        assert ev["t"][0] >= 0 and ev["t"][-1] < 12 * 50_000


def test_windows_are_histograms(small):
    d = small
    for s, j in ((0, 0), (1, 5), (2, 11)):
        w = window_events(_seq(d, s), 50_000 * j, 50_000 * (j + 1))
        h = polarity_histogram(w, 480, 640, downsample=8)
        assert np.array_equal(d["counts"][s, j], h)
        assert np.array_equal(d["x"][s, j], scale_counts(h, EYE_CLIP))
    assert np.array_equal(d["win_labels"], d["labels"][:, ::5] / 8)
    assert np.array_equal(d["win_closed"], d["closed"][:, ::5])


def test_density_near_real(small):
    density = (small["counts"].sum(axis=2) > 0).mean(axis=(2, 3))
    assert 0.12 <= density.mean() <= 0.3
    assert density.min() > 0.03  # background noise alone keeps a few percent active


def test_labels_on_sensor(small):
    lab = small["labels"]
    assert (lab[..., 0] >= 0).all() and (lab[..., 0] < 640).all()
    assert (lab[..., 1] >= 0).all() and (lab[..., 1] < 480).all()
    w = small["win_labels"]
    assert (w >= 0).all() and (w[..., 0] < 80).all() and (w[..., 1] < 60).all()
    # the pupil moves: saccades, drift
    assert np.ptp(lab[..., 0], axis=1).min() > 5
    assert set(np.unique(small["closed"])) <= {0, 1}


def test_pupil_is_where_the_label_says():
    # events of a moving pupil edge concentrate around the label: the label's 80x60 site and its
    # neighbours are active in most windows while the eye is open
    d = eye.make_eye_dataset(seed=2, n_sequences=1, seq_len=10)
    hits = 0
    for j in range(10):
        if d["win_closed"][0, j]:
            continue
        x, y = d["win_labels"][0, j]
        act = d["counts"][0, j].sum(0) > 0
        y0, x0 = int(y), int(x)
        hits += act[max(0, y0 - 6):y0 + 7, max(0, x0 - 6):x0 + 7].mean() > 0.3
    assert hits >= 7


def test_deterministic_prefix(small):
    d1 = eye.make_eye_dataset(seed=5, n_sequences=1, seq_len=12)
    assert np.array_equal(d1["events"], _seq(small, 0))
    assert np.array_equal(d1["labels"][0], small["labels"][0])
    other = eye.make_eye_dataset(seed=6, n_sequences=1, seq_len=12)
    assert not np.array_equal(other["labels"][0], small["labels"][0])


def test_blinks_and_closed_flag():
    rng = np.random.default_rng(0)
    c = eye._closure_track(rng, 60_000)
    assert 0 <= c.min() and c.max() <= 1
    starts = np.flatnonzero((c[1:] > 0.99) & (c[:-1] <= 0.99))
    assert 5 <= len(starts) <= 30  # about one blink every 4 s
    rngs = [np.random.default_rng(1)]
    scene = eye._Scene(rngs, 100)
    ms = np.arange(0, 100, 10)
    scene.closure[:] = 0
    assert scene.closed(ms).sum() == 0
    scene.closure[:] = 1
    assert scene.closed(ms).all()


def test_loader_reproduces_synthetic_windows(small, tmp_path):
    # the synthetic data written in the AIS2024 format reads back to the same input maps
    h5py = pytest.importorskip("h5py")
    d = small
    ev = _seq(d, 1)
    rec = tmp_path / "syn1"
    rec.mkdir()
    raw = np.zeros(len(ev), [("t", "<u8"), ("x", "<u8"), ("y", "<u8"), ("p", "<u8")])
    for k in "txyp":
        raw[k] = ev[k]
    with h5py.File(rec / "syn1.h5", "w") as f:
        f.create_dataset("events", data=raw)
    lines = [f"({float(x)!r}, {float(y)!r}, {int(c)})\n"
             for (x, y), c in zip(d["labels"][1], d["closed"][1], strict=True)]
    (rec / "label.txt").write_text("".join(lines))
    ev2, lab2, closed2 = load_recording(rec)
    assert np.array_equal(ev2, ev)
    assert np.array_equal(lab2, d["labels"][1]) and np.array_equal(closed2, d["closed"][1])
    x, wl, wc = eye_windows(ev2, lab2, closed2, t0=0)
    n = len(x)
    assert n >= 11
    assert np.array_equal(x, d["x"][1, :n])
    assert np.array_equal(wl, d["win_labels"][1, :n])
    assert np.array_equal(wc, d["win_closed"][1, :n])


def test_eye_frames_cache_and_split(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path))
    x, lab, closed = eye.eye_frames(seed=0, split="train", n_sequences=5, seq_len=3)
    # 5 sequences: test 1, val 0 (round(0.5) = 0), train 4
    assert x.shape == (4, 3, 2, 60, 80) and lab.shape == (4, 3, 2) and closed.shape == (4, 3)
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    names = [p.name for p in tmp_path.iterdir()]
    assert len(names) == 1 and names[0].startswith("eye_v1_")
    assert names[0].endswith("_seed0_n5_len3.npz")

    def boom(**kw):
        raise AssertionError("regenerated despite the cache")

    monkeypatch.setattr(eye, "make_eye_dataset", boom)
    x2, lab2, _ = eye.eye_frames(seed=0, split="train", n_sequences=5, seq_len=3)
    assert np.array_equal(x, x2) and np.array_equal(lab, lab2)
    xt, _, _ = eye.eye_frames(seed=0, split="test", n_sequences=5, seq_len=3)
    assert xt.shape[0] == 1


def test_split_partition_and_args():
    parts = [eye.split_indices(s, 60) for s in ("train", "val", "test")]
    assert [len(p) for p in parts] == [42, 6, 12]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(60))
    with pytest.raises(ValueError, match="split must be one of"):
        eye.split_indices("dev")
    with pytest.raises(ValueError, match="seq_len must be"):
        eye.make_eye_dataset(seq_len=0)
