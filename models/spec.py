"""What the zoo knows about one network: :class:`ModelSpec` and :class:`ClassifierSpec`.

A spec describes one network: how to build it, its data, how to train and evaluate it, and which
part of it is the hardware's :class:`~models.qnet.QNet`. :class:`ClassifierSpec` covers image-like
classifiers (dense or sparse); the eye tracker defines its own spec. Each module under
:mod:`models.nets` defines its ``SPEC``; :mod:`models.registry` collects them.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import torch
import torch.nn.functional as F

from .qnet import QNet

__all__ = ["HELD_OUT", "ModelSpec", "ClassifierSpec", "pool_metrics"]

#: The DSE's held-out sets: ``sens`` (per-layer sensitivity and the accuracy predictor's
#: calibration) and ``eval`` (the measured accuracy of design points). Each spec maps them to data
#: splits of its own (:attr:`ModelSpec.held_out`), pooled over its cross-validation folds.
HELD_OUT = ("sens", "eval")


def pool_metrics(parts: list[dict]) -> dict:
    """Metrics of several models on disjoint samples as one: means weighted by sample count."""
    n = [int(p.get("n", 1)) for p in parts]
    out = {k: sum(float(p[k]) * w for p, w in zip(parts, n, strict=True)) / sum(n)
           for k in parts[0] if k != "n" and isinstance(parts[0][k], (int, float))}
    out["n"] = sum(n)
    return out


class ModelSpec:
    """One network of the zoo. Subclasses implement the task-specific parts.

    ``held_out`` maps each of :data:`HELD_OUT` to the data split it is measured on; with
    ``cv_folds`` > 1 it is measured on that split of every fold's model and pooled
    (:meth:`models.zoo.Bundle.evaluate`), for data sets too small to hold out enough samples once.
    """

    name: str = ""
    default_epochs: int = 10
    sparse: bool = False
    cv_folds: int = 1
    cv_fold: int = 0
    held_out: dict = {"sens": "val", "eval": "test"}

    def for_cv_fold(self, k: int) -> ModelSpec:
        """This spec with the data of cross-validation fold ``k`` (0 is the spec itself)."""
        if k == 0:
            return self
        raise ValueError(f"{self.name!r} has no cross-validation folds")

    def build(self) -> torch.nn.Module:
        raise NotImplementedError

    def qnet(self, model) -> QNet:
        """The part of ``model`` that goes to hardware."""
        return model

    def data(self, split: str):
        raise NotImplementedError

    def calibration_batches(self, model) -> list:
        raise NotImplementedError

    def fit(self, model, *, epochs: int, lr: float, seed: int, progress: bool) -> None:
        raise NotImplementedError

    def fine_tune(self, model, *, epochs: int, lr: float, seed: int, progress: bool) -> None:
        """Quantization-aware fine-tuning of a quantized ``model`` (fake-quant mode): the
        training of :meth:`fit`, on the data it trains on."""
        self.fit(model, epochs=epochs, lr=lr, seed=seed, progress=progress)

    def evaluate(self, model, *, split: str, mode: str) -> dict:
        raise NotImplementedError

    def frames(self, model, n: int, *, seed: int = 0, split: str = "test") -> list:
        """``n`` input frames ``(coords [N, 2], feats int64 [N, C])`` in the token view."""
        raise NotImplementedError

    def example_input(self, model):
        """One float input batch for :meth:`QNet.to_qgraph`."""
        raise NotImplementedError

    def evaluate_outputs(self, model, *, split: str):
        """``(evaluate(model, split, "int"), outputs(model, split))``; a spec whose two share
        the slow part computes them in one pass."""
        return self.evaluate(model, split=split, mode="int"), self.outputs(model, split=split)

    def metrics_from_outputs(self, model, outputs: np.ndarray, *, split: str) -> dict:
        """The metrics :meth:`evaluate` gives on ``split`` when the hardware part's outputs are
        ``outputs`` (``[N, K]``, as :meth:`outputs` returns them): what the accuracy predictor's
        superposition of per-layer output deviations is scored with."""
        raise NotImplementedError

    def output_rows(self, split: str) -> int:
        """How many rows :meth:`outputs` gives on ``split``."""
        raise NotImplementedError

    def outputs(self, model, *, split: str) -> np.ndarray:
        """``[N, K]`` float64 outputs of the hardware part (the QNet, fake-quant, exact) on every
        sample of ``split``: what the accuracy predictor measures quantization noise on."""
        raise NotImplementedError


def _progress(iterable, *, desc: str, enabled: bool, total=None):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)


class ClassifierSpec(ModelSpec):
    """An image classifier whose whole network is a :class:`QNet` (dense or sparse).

    Parameters
    ----------
    name : str
    build : callable returning the QNet
    data : callable ``split -> (x float [N, C, H, W], labels [N])``
    to_input : callable turning a dense float batch into the network's input map (identity for
        dense networks, :meth:`models.sparse.SparseTensor.from_dense` for sparse ones)
    augment : callable on a training batch (or None)
    """

    def __init__(self, name, build, data, *, to_input=None, augment=None, default_epochs=30,
                 sparse=False, batch_size=64, lr=1e-2, cv_folds=1, held_out=None):
        self.name = name
        self._build = build
        self._data = data
        self._fold_data = data
        self.cv_folds = cv_folds
        if held_out is not None:
            self.held_out = dict(held_out)
        elif cv_folds > 1:  # every fold's test split, pooled
            self.held_out = {"sens": "test", "eval": "test"}
        self._to_input = to_input or (lambda x: x)
        self._augment = augment
        self.default_epochs = default_epochs
        self.sparse = sparse
        self.batch_size = batch_size
        self.lr = lr

    def build(self):
        return self._build()

    def for_cv_fold(self, k):
        if k == 0:
            return self
        if k not in range(self.cv_folds):
            raise ValueError(f"{self.name!r} has cross-validation folds 0..{self.cv_folds - 1}, "
                             f"not {k!r}")
        other = copy.copy(self)
        other.cv_fold = k
        other._fold_data = functools.partial(self._data, cv_fold=k)
        return other

    def data(self, split):
        return self._fold_data(split)

    def to_input(self, x):
        return self._to_input(x)

    def calibration_batches(self, model):
        x, _ = self.data("val")
        return [self.to_input(x[i : i + 256]) for i in range(0, len(x), 256)]

    def example_input(self, model):
        x, _ = self.data("test")
        return self.to_input(x[:1])

    def fit(self, model, *, epochs, lr, seed, progress):
        x, y = self.data("train")
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
        steps = epochs * ((len(y) + self.batch_size - 1) // self.batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
        model.train()
        for _ in _progress(range(epochs), desc=f"train {self.name}", enabled=progress):
            perm = torch.randperm(len(y), generator=gen)
            for i in range(0, len(y), self.batch_size):
                idx = perm[i : i + self.batch_size]
                xb = x[idx]
                if self._augment is not None:
                    xb = self._augment(xb, gen)
                loss = F.cross_entropy(model(self.to_input(xb)), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        model.eval()

    @torch.no_grad()
    def logits(self, model, x, *, mode: str):
        """Logits in ``mode``: float (float32), fake (float64, exact) or int (int64 accumulator)."""
        model.eval()
        if mode == "float":
            return copy.deepcopy(model).set_mode("float")(self.to_input(x))
        if mode == "fake":
            m = copy.deepcopy(model).double().set_mode("fake")
            return m(self.to_input(x.double()))
        if mode == "int":
            m = copy.deepcopy(model).double().set_mode("int")
            return m(m.quantize_input(self.to_input(x.double())))
        raise ValueError(f"unknown mode {mode!r}")

    def outputs(self, model, *, split):
        x, _ = self.data(split)
        return np.concatenate([self.logits(model, x[i : i + 512], mode="fake").numpy()
                               for i in range(0, len(x), 512)])

    def output_rows(self, split):
        return len(self.data(split)[1])

    def metrics_from_outputs(self, model, outputs, *, split):
        _, y = self.data(split)
        pred = torch.as_tensor(np.asarray(outputs)).argmax(1)
        return {"accuracy": float((pred == y).double().mean()), "n": len(y)}

    def evaluate(self, model, *, split, mode):
        x, y = self.data(split)
        correct = 0
        for i in range(0, len(y), 512):
            correct += int((self.logits(model, x[i : i + 512], mode=mode).argmax(1)
                            == y[i : i + 512]).sum())
        return {"accuracy": correct / len(y), "n": len(y)}

    def frames(self, model, n, *, seed=0, split="test"):
        x, _ = self.data(split)
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
        qnet = self.qnet(model)
        out = []
        for i in idx.tolist():
            xb = x[i : i + 1].double()
            if xb.dim() == 2:  # a vector input: one site of F channels
                xb = xb[:, :, None, None]
            if self.sparse:
                active = torch.nonzero(xb[0].abs().sum(0) > 0)
            else:
                active = torch.nonzero(torch.ones(xb.shape[2:], dtype=torch.bool))
            q = qnet.input_node.quantize_feats(xb[0][:, active[:, 0], active[:, 1]].t())
            out.append((active, q))
        return out
