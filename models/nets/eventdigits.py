"""Submanifold sparse CNN classifier of the synthetic event digits (N-MNIST-like, 2 x 34 x 34).

Input: the polarity histograms of :func:`models.data.eventdigits.eventdigits_frames` (channel 0
OFF, 1 ON, in [0, 1]); a site is active where either polarity fired (about 57 % of the sites).
Splits are the data module's (train 1,258 / val 180 / test 359). The DSE's held-out sets are
more recordings of the held-out digits, as N-MNIST is a recording of MNIST: ``sens`` the val digits
recorded with data seeds 0 to 5 (1,080 recordings), ``eval`` the test digits recorded with data
seeds 0 to 2 (1,077); recording noise, thresholds, saccade amplitude and start differ per seed.

Network (every op a :mod:`models.sparse` layer, so the whole classifier is the hardware's
:class:`~models.qnet.QNet`): stem submanifold 3x3 2->16, depthwise 3x3 stride 2 (sparse, 17x17) +
pointwise 16->32, depthwise 3x3 + pointwise 32->32 with a residual add, depthwise 3x3 stride 2
(9x9) + pointwise 32->64, depthwise 3x3 + pointwise 64->64 with a residual add, depthwise 3x3
stride 2 (5x5) + pointwise 64->64, global average pool over the active sites, linear 64->10. The
third stride-2 stage gives a receptive field (about 31 pixels) that spans the 28-pixel digit, so
the pooled features see its whole shape.
"""

from __future__ import annotations

import numpy as np
import torch

from ..qnet import QNet
from ..quant.layers import QInput, QLinear
from ..sparse import SparseAdd, SparseConv2d, SparseGlobalAvgPool, SparseTensor, SubmanifoldConv2d
from ..spec import ClassifierSpec

__all__ = ["SPLITS", "INPUT_SHAPE", "eventdigits_data", "build_eventdigits", "SPEC"]

SPLITS = ("train", "val", "test", "sens", "eval")
INPUT_SHAPE = (2, 34, 34)
#: The DSE's held-out sets: (digit split, number of recordings of each digit).
HELD_OUT_RECORDINGS = {"sens": ("val", 6), "eval": ("test", 3)}


def eventdigits_data(split: str, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x float32 [N, 2, 34, 34] in [0, 1], labels int64 [N])`` of one split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    from ..data.eventdigits import eventdigits_frames

    if split in HELD_OUT_RECORDINGS:
        digits, n = HELD_OUT_RECORDINGS[split]
        parts = [eventdigits_frames(seed=seed + k, split=digits) for k in range(n)]
        x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    else:
        x, y = eventdigits_frames(seed=seed, split=split)
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)


def build_eventdigits() -> QNet:
    net = QNet("eventdigits")
    net.add("input", QInput(nonneg=True))
    net.add("stem", SubmanifoldConv2d(2, 16, 3, relu=True, bn=True), "input")
    net.add("dw1", SparseConv2d(16, 16, 3, groups=16, stride=2, relu=True, bn=True), "stem")
    net.add("pw1", SubmanifoldConv2d(16, 32, 1, relu=True, bn=True), "dw1")
    net.add("dw2", SubmanifoldConv2d(32, 32, 3, groups=32, relu=True, bn=True), "pw1")
    net.add("pw2", SubmanifoldConv2d(32, 32, 1, relu=False, bn=True), "dw2")
    net.add("add1", SparseAdd(relu=True), "pw2", "pw1")
    net.add("dw3", SparseConv2d(32, 32, 3, groups=32, stride=2, relu=True, bn=True), "add1")
    net.add("pw3", SubmanifoldConv2d(32, 64, 1, relu=True, bn=True), "dw3")
    net.add("dw4", SubmanifoldConv2d(64, 64, 3, groups=64, relu=True, bn=True), "pw3")
    net.add("pw4", SubmanifoldConv2d(64, 64, 1, relu=False, bn=True), "dw4")
    net.add("add2", SparseAdd(relu=True), "pw4", "pw3")
    net.add("dw5", SparseConv2d(64, 64, 3, groups=64, stride=2, relu=True, bn=True), "add2")
    net.add("pw5", SubmanifoldConv2d(64, 64, 1, relu=True, bn=True), "dw5")
    net.add("gap", SparseGlobalAvgPool(), "pw5")
    net.add("fc", QLinear(64, 10, requant_out=False), "gap")
    return net


def shift_augment(x: torch.Tensor, gen: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random translation of each map by up to ``max_shift`` pixels per axis, zero fill."""
    _, _, h, w = x.shape
    p = max_shift
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    s = torch.randint(0, 2 * p + 1, (len(x), 2), generator=gen).tolist()
    return torch.stack([padded[i, :, a : a + h, b : b + w] for i, (a, b) in enumerate(s)])


#: The zoo entry (collected by :mod:`models.registry`).
SPEC = ClassifierSpec("eventdigits", build_eventdigits, eventdigits_data,
                      to_input=SparseTensor.from_dense, augment=shift_augment,
                      default_epochs=8, sparse=True, batch_size=64, lr=1e-2,
                      held_out={"sens": "sens", "eval": "eval"})
