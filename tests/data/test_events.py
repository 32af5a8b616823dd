import numpy as np
import pytest
import torch

from models.data.events import (
    EVENT_DTYPE,
    DataError,
    load_npz,
    make_events,
    polarity_histogram,
    save_npz,
    scale_counts,
    to_sparse_coords,
    validate_events,
    voxel_grid,
    window_events,
    window_histograms,
)


def _ev():
    # t, x, y, p
    rows = [
        (0, 0, 0, 1),
        (10, 0, 0, 1),
        (20, 3, 1, 0),
        (30, 3, 1, 1),
        (40, 2, 2, 0),
        (50, 7, 5, 1),
        (60, 7, 5, 1),
        (70, 7, 5, 0),
    ]
    t, x, y, p = zip(*rows, strict=True)
    return make_events(t, x, y, p)


def test_dtype_and_make():
    ev = _ev()
    assert ev.dtype == EVENT_DTYPE
    assert ev["t"].dtype == np.int64 and ev["p"].dtype == np.int8
    assert len(make_events([], [], [], [])) == 0


@pytest.mark.parametrize(
    "t, x, y, p, match",
    [
        ([0, 1], [0], [0, 0], [0, 1], "differ in length"),
        ([0, 1], [0, 0], [0, 0], [0, 2], "polarities must be 0 or 1"),
        ([0, 1], [0, -1], [0, 0], [0, 1], "x coordinates must be >= 0"),
        ([5, 1], [0, 0], [0, 0], [0, 1], "not monotonic"),
        ([0.5, 1], [0, 0], [0, 0], [0, 1], "must hold integers"),
        ([0, 1], [0, 40000], [0, 0], [0, 1], "out of range"),
    ],
)
def test_make_events_rejects(t, x, y, p, match):
    with pytest.raises(DataError, match=match):
        make_events(t, x, y, p)


def test_validate_rejects_plain_and_outside():
    with pytest.raises(DataError, match="structured"):
        validate_events(np.zeros(3))
    with pytest.raises(DataError, match="lack field"):
        validate_events(np.zeros(2, dtype=[("t", "i8"), ("x", "i2")]))
    with pytest.raises(DataError, match="outside the sensor"):
        validate_events(_ev(), height=5, width=8)
    assert issubclass(DataError, ValueError)


def test_window_events():
    ev = _ev()
    w = window_events(ev, 10, 40)
    assert w["t"].tolist() == [10, 20, 30]
    assert len(window_events(ev, 100, 200)) == 0


def test_polarity_histogram_exact():
    ev = _ev()
    h = polarity_histogram(ev, 6, 8)
    assert h.shape == (2, 6, 8) and h.dtype == np.float32
    expect = np.zeros((2, 6, 8), np.float32)
    expect[1, 0, 0] = 2
    expect[0, 1, 3] = 1
    expect[1, 1, 3] = 1
    expect[0, 2, 2] = 1
    expect[1, 5, 7] = 2
    expect[0, 5, 7] = 1
    assert np.array_equal(h, expect)
    assert h.sum() == len(ev)


def test_polarity_histogram_downsample():
    ev = _ev()
    h = polarity_histogram(ev, 6, 8, downsample=4)
    assert h.shape == (2, 2, 2)
    # (0,0),(1,3),(2,2) fall in block (0,0); (5,7) in block (1,1)
    assert h[1].tolist() == [[3, 0], [0, 2]]
    assert h[0].tolist() == [[2, 0], [0, 1]]
    # non-dividing size rounds the map up
    assert polarity_histogram(ev, 6, 8, downsample=5).shape == (2, 2, 2)
    with pytest.raises(ValueError, match="downsample"):
        polarity_histogram(ev, 6, 8, downsample=0)


def test_voxel_grid_exact():
    ev = make_events([0, 25, 50, 75, 100], [0, 4, 1, 3, 2], [0, 1, 0, 1, 0], [1, 0, 0, 1, 1])
    g = voxel_grid(ev, 2, 5, 3, 0, 100)
    assert g.shape == (3, 2, 5) and g.dtype == np.float32
    expect = np.zeros((3, 2, 5), np.float32)
    expect[0, 0, 0] = 1  # t=0 -> bin 0
    expect[1, 0, 1] = -1  # t=50 -> bin 1, OFF
    # t=100 is outside [0, 100)
    expect[1, 1, 3] = 0.5  # t=75 -> u=1.5
    expect[2, 1, 3] = 0.5
    expect[0, 1, 4] = -0.5  # t=25 -> u=0.5, OFF
    expect[1, 1, 4] = -0.5
    assert np.array_equal(g, expect)
    # one bin: signed count
    g1 = voxel_grid(ev, 2, 5, 1, 0, 101)
    assert g1.sum() == 1 + -1 + 1 + 1 - 1
    # total signed mass is preserved
    assert np.isclose(g.sum(), 1 - 1 + 1 - 1)
    with pytest.raises(ValueError, match="t1 > t0"):
        voxel_grid(ev, 2, 5, 3, 10, 10)


def test_window_histograms_match_single():
    ev = _ev()
    starts = [0, 20, 40, 60]
    hs = window_histograms(ev, starts, 20, 6, 8, downsample=2)
    for k, s in enumerate(starts):
        assert np.array_equal(hs[k], polarity_histogram(window_events(ev, s, s + 20), 6, 8,
                                                        downsample=2))
    # overlapping windows take the other path and must agree too
    ho = window_histograms(ev, [0, 10, 20], 30, 6, 8)
    for k, s in enumerate([0, 10, 20]):
        assert np.array_equal(ho[k], polarity_histogram(window_events(ev, s, s + 30), 6, 8))


def test_scale_counts():
    h = np.array([0, 1, 4, 9], np.float32)
    assert scale_counts(h, 4).tolist() == [0, 0.25, 1, 1]


def test_to_sparse_coords():
    d = np.zeros((2, 3, 4), np.float32)
    d[0, 2, 1] = 3
    d[1, 0, 3] = -1
    d[0, 0, 0] = 1
    d[1, 0, 0] = 2
    coords, feats = to_sparse_coords(d)
    assert coords.dtype == torch.int64
    assert coords.tolist() == [[0, 0], [0, 3], [2, 1]]
    assert feats.tolist() == [[1, 2], [0, -1], [3, 0]]
    c0, f0 = to_sparse_coords(np.zeros((2, 3, 4), np.float32))
    assert c0.shape == (0, 2) and f0.shape == (0, 2)
    # dense round trip
    back = torch.zeros(2, 3, 4)
    back[:, coords[:, 0], coords[:, 1]] = feats.T
    assert torch.equal(back, torch.from_numpy(d))


def test_npz_cache_roundtrip(tmp_path):
    p = tmp_path / "sub" / "a.npz"
    save_npz(p, a=np.arange(3))
    assert load_npz(p, ["a"])["a"].tolist() == [0, 1, 2]
    assert load_npz(tmp_path / "missing.npz", ["a"]) is None
    p.write_bytes(b"garbage")
    assert load_npz(p, ["a"]) is None
    assert list(tmp_path.glob("sub/*.tmp")) == []
