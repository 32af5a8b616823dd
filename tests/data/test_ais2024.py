import h5py
import numpy as np
import pytest

from models.data.ais2024 import (
    EYE_CLIP,
    eye_windows,
    load_labels,
    load_recording,
    recording_frames,
)
from models.data.events import DataError, polarity_histogram, scale_counts, window_events

RAW_DTYPE = np.dtype([("t", "<u8"), ("x", "<u8"), ("y", "<u8"), ("p", "<u8")])


def _events(n=3000, dur_us=200_000, seed=0, t_first=1_000_000):
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, RAW_DTYPE)
    ev["t"] = np.sort(rng.integers(0, dur_us, n)) + t_first
    ev["t"][0] = t_first
    ev["t"][-1] = t_first + dur_us - 1
    ev["x"] = rng.integers(0, 640, n)
    ev["y"] = rng.integers(0, 480, n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def _write(root, name="rec1", events=None, labels=None, n_labels=20):
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    with h5py.File(d / f"{name}.h5", "w") as f:
        f.create_dataset("events", data=_events() if events is None else events)
    if labels is None:
        labels = "".join(f"({100 + i}, {200 + 2 * i}, {int(i == 7)})\n" for i in range(n_labels))
    (d / "label.txt").write_text(labels)
    return d


def test_round_trip(tmp_path):
    raw = _events()
    d = _write(tmp_path, events=raw)
    ev, xy, closed = load_recording(d)
    assert len(ev) == len(raw)
    for k in "txyp":
        assert np.array_equal(ev[k].astype(np.int64), raw[k].astype(np.int64))
    assert xy.shape == (20, 2) and xy.dtype == np.float32
    assert xy[3].tolist() == [103, 206]
    assert closed.tolist() == [int(i == 7) for i in range(20)]
    # the .h5 path works too
    assert len(load_recording(d / "rec1.h5")[0]) == len(raw)


def test_frames_alignment(tmp_path):
    raw = _events()
    d = _write(tmp_path, events=raw)
    x, lab, closed = recording_frames(d)
    # 200 ms of events -> 4 windows of 50 ms (labels: 20 -> indices 0, 5, 10, 15)
    assert x.shape == (4, 2, 60, 80) and x.dtype == np.float32
    assert np.allclose(lab, np.array([[100, 200], [105, 210], [110, 220], [115, 230]]) / 8)
    assert closed.tolist() == [0, 0, 0, 0]
    ev = load_recording(d)[0]
    t0 = int(raw["t"][0])
    for j in range(4):
        w = window_events(ev, t0 + 50_000 * j, t0 + 50_000 * (j + 1))
        expect = scale_counts(polarity_histogram(w, 480, 640, downsample=8), EYE_CLIP)
        assert np.array_equal(x[j], expect)
    # 10 ms stride: one window per label, limited by the events' end
    x2, lab2, c2 = recording_frames(d, stride_us=10_000)
    assert len(x2) == 16 and c2[7] == 1 and lab2[7].tolist() == [107 / 8, 214 / 8]
    # fewer labels than windows: labels limit
    d2 = _write(tmp_path, "rec2", events=raw, n_labels=6)
    assert len(recording_frames(d2)[0]) == 2
    with pytest.raises(ValueError, match="multiple of 10000"):
        eye_windows(ev, lab, closed, t0=t0, stride_us=15_000)


def test_missing_files(tmp_path):
    with pytest.raises(DataError, match="event file not found"):
        load_recording(tmp_path / "nope")
    d = _write(tmp_path)
    (d / "label.txt").unlink()
    with pytest.raises(DataError, match=r"label\.txt: label file not found"):
        load_recording(d)


def test_not_hdf5(tmp_path):
    d = _write(tmp_path)
    (d / "rec1.h5").write_bytes(b"this is not an hdf5 file at all" * 10)
    with pytest.raises(DataError, match=r"rec1\.h5: not a readable HDF5"):
        load_recording(d)


def test_truncated_hdf5(tmp_path):
    d = _write(tmp_path)
    p = d / "rec1.h5"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"rec1\.h5"):
        load_recording(d)


def test_corrupt_chunk(tmp_path):
    d = tmp_path / "rec1"
    d.mkdir()
    raw = _events()
    with h5py.File(d / "rec1.h5", "w") as f:
        f.create_dataset("events", data=raw, chunks=(500,), compression="gzip")
    (d / "label.txt").write_text("(1, 2, 0)\n")
    p = d / "rec1.h5"
    data = bytearray(p.read_bytes())
    # scribble over the middle of the file, where the compressed chunks live
    mid = len(data) // 2
    data[mid : mid + 2000] = bytes(2000)
    p.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"rec1\.h5"):
        load_recording(d)


def test_missing_dataset_and_fields(tmp_path):
    d = tmp_path / "rec1"
    d.mkdir()
    (d / "label.txt").write_text("(1, 2, 0)\n")
    with h5py.File(d / "rec1.h5", "w") as f:
        f.create_dataset("evts", data=_events())
    with pytest.raises(DataError, match="no dataset 'events'"):
        load_recording(d)
    bad = np.zeros(4, dtype=[("t", "<u8"), ("x", "<u8"), ("y", "<u8")])
    with h5py.File(d / "rec1.h5", "w") as f:
        f.create_dataset("events", data=bad)
    with pytest.raises(DataError, match=r"lacks field\(s\) \['p'\]"):
        load_recording(d)
    with h5py.File(d / "rec1.h5", "w") as f:
        f.create_dataset("events", data=np.zeros((4, 4)))
    with pytest.raises(DataError, match="lacks field"):
        load_recording(d)


def test_non_monotonic_and_out_of_sensor(tmp_path):
    raw = _events()
    raw["t"][10], raw["t"][11] = raw["t"][11] + 5, raw["t"][10]
    d = _write(tmp_path, events=raw)
    with pytest.raises(DataError, match=r"rec1\.h5: event timestamps not monotonic"):
        load_recording(d)
    raw = _events()
    raw["x"][3] = 640
    d = _write(tmp_path, "rec2", events=raw)
    with pytest.raises(DataError, match=r"rec2\.h5: event x coordinate 640 outside"):
        load_recording(d)
    raw = _events()
    raw["p"][3] = 2
    d = _write(tmp_path, "rec3", events=raw)
    with pytest.raises(DataError, match=r"rec3\.h5: event polarities"):
        load_recording(d)


@pytest.mark.parametrize(
    "text, match",
    [
        ("(1, 2, 0)\n(3, 4)\n", r"label\.txt:2: expected"),
        ("(1, 2, 0)\n(3, 4, 0)\nhello\n", r"label\.txt:3: expected"),
        ("(1, 2, 3)\n", r"label\.txt:1: closed flag"),
        ("(1, 2, 0)\n(1e999, -1e999, 0)\n", r"label\.txt:2: pupil \(inf, -inf\) lies outside"),
        ("(640, 10, 0)\n", r"label\.txt:1: pupil \(640.0, 10.0\) lies outside the 640x480"),
        ("(3, -0.5, 1)\n", r"label\.txt:1: pupil .* lies outside"),
        ("", "no labels"),
    ],
)
def test_malformed_labels(tmp_path, text, match):
    d = _write(tmp_path, labels=text)
    with pytest.raises(DataError, match=match):
        load_recording(d)


def test_label_formats(tmp_path):
    p = tmp_path / "label.txt"
    p.write_text("(1.5, 2e1, 0)\n  (3,4,1)  \n\n")
    xy, closed = load_labels(p)
    assert xy.tolist() == [[1.5, 20.0], [3, 4]] and closed.tolist() == [0, 1]


def test_field_types(tmp_path):
    raw = _events()
    raw["t"][-1] = np.uint64(1) << np.uint64(63)
    d = _write(tmp_path, events=raw)
    with pytest.raises(DataError, match=r"rec1\.h5: event field 't' out of range"):
        load_recording(d)
    fl = np.zeros(3, [("t", "<f8"), ("x", "<u2"), ("y", "<u2"), ("p", "<u1")])
    d = _write(tmp_path, "rec2", events=fl)
    with pytest.raises(DataError, match=r"rec2\.h5: event field 't' is float64"):
        load_recording(d)
    ok = np.zeros(3, [("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "?")])
    ok["t"] = [0, 5, 9]
    ok["p"] = [True, False, True]
    d = _write(tmp_path, "rec3", events=ok)
    assert load_recording(d)[0]["p"].tolist() == [1, 0, 1]
