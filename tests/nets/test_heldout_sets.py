"""The DSE's held-out sets: more recordings of the held-out digits and eye sequences, never the
training data (the generators are stubbed: each recording is tagged with its data seed)."""

import numpy as np
import pytest


def test_eventdigits_held_out_sets_record_the_held_out_digits_again(monkeypatch):
    from models.data import eventdigits as data
    from models.nets import eventdigits as net

    def frames(*, seed=0, split="train"):
        idx = data.split_indices(split)
        return np.full((len(idx), 2, 34, 34), seed, np.float32), idx

    monkeypatch.setattr(data, "eventdigits_frames", frames)
    x, y = net.eventdigits_data("sens")
    assert len(y) == 6 * 180 and sorted(set(x[:, 0, 0, 0].tolist())) == list(range(6))
    assert set(y.tolist()) == set(data.split_indices("val").tolist())
    x, y = net.eventdigits_data("eval")
    assert len(y) == 3 * 359 and set(y.tolist()) == set(data.split_indices("test").tolist())
    assert set(y.tolist()).isdisjoint(data.split_indices("train").tolist())


def test_eye_held_out_sets_add_recordings_from_unused_data_seeds(monkeypatch):
    from models.data import eye as data
    from models.nets import eye as net

    def frames(*, seed=0, split="train"):
        n = {"all": 60, "val": 6, "test": 12, "train": 42}[split]
        return (np.full((n, 2, 2, 60, 80), seed, np.float32), np.zeros((n, 2, 2), np.float32),
                np.zeros((n, 2), bool))

    monkeypatch.setattr(data, "eye_frames", frames)
    x, _, _ = net.eye_data("sens")
    assert x.shape[0] == 6 + 20 and set(x[:, 0, 0, 0, 0].tolist()) == {0.0, 900.0}
    x, _, _ = net.eye_data("eval")
    assert x.shape[0] == 12 + 14 and set(x[:, 0, 0, 0, 0].tolist()) == {0.0, 901.0}
    train_seeds = set(net.extra_train_seeds(0)) | {0}
    assert not {900, 901} & train_seeds
    with pytest.raises(ValueError, match="unknown split"):
        net.eye_data("nope")
