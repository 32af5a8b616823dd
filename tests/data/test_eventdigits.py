import numpy as np
import pytest

from models.data import eventdigits as ed
from models.data.events import EVENT_DTYPE, polarity_histogram, validate_events


@pytest.fixture(scope="module")
def twelve():
    return ed.make_eventdigits(seed=3, n=12)


def test_events_sane(twelve, tmp_path, monkeypatch):
    evs, labels = twelve
    assert len(evs) == 12 and labels.tolist() == list(range(10)) + [0, 1]
    for ev in evs:
        assert ev.dtype == EVENT_DTYPE
        validate_events(ev, height=ed.SENSOR, width=ed.SENSOR)  # sorted, in range
        assert 1500 < len(ev) < 10_000
        n_on = int(ev["p"].sum())
        assert 0.25 * len(ev) < n_on < 0.75 * len(ev)
        assert 0 <= ev["t"][0] and ev["t"][-1] < ed.DURATION_US
        # all three saccades produce events
        counts = np.histogram(ev["t"], bins=3, range=(0, ed.DURATION_US))[0]
        assert counts.min() > 0.15 * len(ev)
        # the digit is in the middle: events' centre of mass near the sensor centre
        h = polarity_histogram(ev, ed.SENSOR, ed.SENSOR).sum(0)
        yy, xx = np.mgrid[: ed.SENSOR, : ed.SENSOR] + 0.5
        cy, cx = (h * yy).sum() / h.sum(), (h * xx).sum() / h.sum()
        assert abs(cy - 17) < 4 and abs(cx - 17) < 4


def test_deterministic_and_prefix(twelve):
    evs, _ = twelve
    again, _ = ed.make_eventdigits(seed=3, n=4)
    assert all(np.array_equal(a, b) for a, b in zip(again, evs[:4], strict=False))
    other, _ = ed.make_eventdigits(seed=4, n=4)
    assert not np.array_equal(other[0], evs[0])


def test_split_partition():
    parts = {s: ed.split_indices(s) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [1258, 180, 359]
    allidx = np.concatenate(list(parts.values()))
    assert np.array_equal(np.sort(allidx), np.arange(ed.N_DIGITS))
    assert np.array_equal(ed.split_indices("all"), np.arange(ed.N_DIGITS))
    with pytest.raises(ValueError, match="split must be one of"):
        ed.split_indices("dev")


def test_bad_args():
    with pytest.raises(ValueError, match="n must be"):
        ed.make_eventdigits(n=0)
    with pytest.raises(ValueError, match="seed must be"):
        ed.make_eventdigits(seed=-1, n=1)


def test_cache_written_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path))
    images, labels = ed._digits()
    monkeypatch.setattr(ed, "_digits", lambda: (images[:7], labels[:7]))
    monkeypatch.setattr(ed, "N_DIGITS", 7)
    evs, lab = ed.make_eventdigits(seed=1)
    files = [p.name for p in tmp_path.iterdir()]
    assert len(files) == 1 and files[0].startswith("eventdigits_v1_")
    assert files[0].endswith("_seed1.npz")

    def boom(*a, **k):
        raise AssertionError("regenerated despite the cache")

    monkeypatch.setattr(ed, "_generate", boom)
    evs2, lab2 = ed.make_eventdigits(seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(evs, evs2, strict=True))
    assert np.array_equal(lab, lab2)
    few, _ = ed.make_eventdigits(seed=1, n=3)  # served from the cache
    assert all(np.array_equal(a, b) for a, b in zip(few, evs[:3], strict=True))


@pytest.mark.slow
def test_frames_full_set(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path))
    x, y = ed.eventdigits_frames(seed=0, split="val")
    assert x.shape == (180, 2, 34, 34) and x.dtype == np.float32 and y.shape == (180,)
    assert x.min() == 0 and x.max() == 1
    assert 0.3 < (x.sum(1) > 0).mean() < 0.8
    evs, labels = ed.make_eventdigits(seed=0)
    idx = ed.split_indices("val")
    assert np.array_equal(labels[idx], y)
    k = int(idx[5])
    expect = np.minimum(polarity_histogram(evs[k], 34, 34), ed.CLIP) / ed.CLIP
    assert np.array_equal(x[5], expect.astype(np.float32))
