"""Small CNN on scikit-learn's bundled handwritten digits (1,797 real 8x8 images, no download).

Images are upsampled 2x to 16x16 (nearest) and scaled to [0, 1]. Split: a fixed seeded permutation,
80 % train / 20 % test; the last 10 % of the train part is held out as ``val`` (activation
calibration) and not trained on.

Cross-validation folds (:data:`CV_FOLDS`): fold ``k`` rotates the permutation by ``k`` fifths, so
the five folds' test splits are disjoint and together hold 1,795 of the 1,797 images; fold 0 is
the split above (the model that goes to hardware). The DSE's held-out sets (``sens``, ``eval``)
pool the five fold models' test splits, so one image is 0.056 accuracy points rather than 0.28
(:meth:`models.zoo.Bundle.evaluate`).

Network (MobileNet-style, every conv "same" padded so the hardware's sparse semantics equal the
dense ones): stem 3x3 1->16, depthwise 3x3 s2 + pointwise 16->32, depthwise 3x3 + pointwise
32->32 with a residual add, depthwise 3x3 s2 + pointwise 32->64, global average pool, linear 64->10.
"""

from __future__ import annotations

import numpy as np
import torch

from ..qnet import QNet
from ..quant.layers import QAdd, QConv2d, QGlobalAvgPool, QInput, QLinear
from ..spec import ClassifierSpec

__all__ = ["SPLITS", "INPUT_SHAPE", "CV_FOLDS", "digits_data", "build_digits", "SPEC"]

SPLITS = ("train", "val", "test")
INPUT_SHAPE = (1, 16, 16)
CV_FOLDS = 5
_SPLIT_SEED = 1797


def digits_data(split: str, *, cv_fold: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x float32 [N, 1, 16, 16] in [0, 1], labels int64 [N])`` of one split of fold
    ``cv_fold`` (0 to :data:`CV_FOLDS` - 1)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if cv_fold not in range(CV_FOLDS):
        raise ValueError(f"cv_fold must be in 0..{CV_FOLDS - 1}, not {cv_fold!r}")
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]
    x = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    y = torch.from_numpy(d.target.astype(np.int64))
    perm = np.random.default_rng(_SPLIT_SEED).permutation(len(y))
    perm = torch.from_numpy(np.roll(perm, round(cv_fold * len(y) / CV_FOLDS)))
    n_test = round(0.2 * len(y))
    n_train = len(y) - n_test
    n_val = round(0.1 * n_train)
    idx = {
        "train": perm[: n_train - n_val],
        "val": perm[n_train - n_val : n_train],
        "test": perm[n_train:],
    }[split]
    return x[idx], y[idx]


def build_digits() -> QNet:
    net = QNet("digits")
    net.add("input", QInput(nonneg=True))
    net.add("stem", QConv2d(1, 16, 3, relu=True, bn=True), "input")
    net.add("dw1", QConv2d(16, 16, 3, stride=2, groups=16, relu=True, bn=True), "stem")
    net.add("pw1", QConv2d(16, 32, 1, relu=True, bn=True), "dw1")
    net.add("dw2", QConv2d(32, 32, 3, groups=32, relu=True, bn=True), "pw1")
    net.add("pw2", QConv2d(32, 32, 1, relu=False, bn=True), "dw2")
    net.add("add1", QAdd(relu=True), "pw2", "pw1")
    net.add("dw3", QConv2d(32, 32, 3, stride=2, groups=32, relu=True, bn=True), "add1")
    net.add("pw3", QConv2d(32, 64, 1, relu=True, bn=True), "dw3")
    net.add("gap", QGlobalAvgPool(), "pw3")
    net.add("fc", QLinear(64, 10, requant_out=False), "gap")
    return net


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 2 pixels (zero fill), one per image."""
    out = torch.zeros_like(x)
    shifts = torch.randint(-2, 3, (len(x), 2), generator=gen)
    for i, (dy, dx) in enumerate(shifts.tolist()):
        h, w = x.shape[2:]
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[i, :, yd, xd] = x[i, :, ys, xs]
    return out


#: The zoo entry (collected by :mod:`models.registry`).
SPEC = ClassifierSpec("digits", build_digits, digits_data, augment=_augment, default_epochs=30,
                      cv_folds=CV_FOLDS)
