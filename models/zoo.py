"""Model zoo: the registry, checkpoints and the cache of trained models, behind one name.

Every later command (``dse``, ``build``, ``sim``, ``flow``) names a model by registry name (the
cached checkpoint, trained on demand) or by checkpoint path. The cache lives in ``$CODESIGN_CACHE``
(default ``~/.cache/codesign``), one folder per ``<model>-<format>[-qat]``.

A :class:`ModelSpec` describes one network: how to build it, its data, how to train and evaluate it,
and which part of it is the hardware's :class:`~models.qnet.QNet`. :class:`ClassifierSpec` covers
image-like classifiers (dense or sparse); the eye tracker defines its own spec.

This module adds :class:`Bundle` and :func:`load` on top of :mod:`models.spec`,
:mod:`models.registry`, :mod:`models.checkpoint` and :mod:`models.train`, and re-exports their
names; none of those imports this module.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from . import user
from .checkpoint import (
    CHECKPOINT_VERSION,
    cache_dir,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from .qnet import QNet
from .quant.formats import FormatError
from .registry import REGISTRY, ModelError, model_names, register, spec
from .spec import HELD_OUT, ClassifierSpec, ModelSpec, pool_metrics
from .train import TrainConfig, train

__all__ = [
    "ModelError",
    "ModelSpec",
    "ClassifierSpec",
    "REGISTRY",
    "register",
    "spec",
    "model_names",
    "cache_dir",
    "checkpoint_path",
    "save_checkpoint",
    "load_checkpoint",
    "CHECKPOINT_VERSION",
    "Bundle",
    "load",
]


@dataclass
class Bundle:
    """A trained model with what the rest of the flow needs from it."""

    spec: ModelSpec
    model: torch.nn.Module
    checkpoint: Path
    meta: dict

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def qnet_base(self) -> QNet:
        return self.spec.qnet(self.model)

    def layer_names(self) -> list[str]:
        return list(self.qnet_base.layers())

    def quantized(self, formats):
        """A copy of the model quantized with ``formats`` (one name or ``{layer: format}``)."""
        base = self.qnet_base
        wanted = base.resolve_formats(formats)
        model = copy.deepcopy(self.model)
        qnet = self.spec.qnet(model)
        if wanted != qnet.formats:
            qnet.set_formats(wanted)
        return model

    def qgraph(self, formats="int8"):
        model = self.quantized(formats)
        return self.spec.qnet(model).to_qgraph(self.spec.example_input(model))

    def cv_bundles(self) -> list[Bundle]:
        """This bundle and the models of its spec's other cross-validation folds (trained with the
        same configuration on demand, cached beside its checkpoint as ``<slot>-cv<k>``)."""
        if self.spec.cv_folds <= 1 or self.spec.cv_fold != 0 or not self.meta.get("config"):
            return [self]
        cached = self.__dict__.get("_cv")
        if cached is None:
            cached = [self]
            for k in range(1, self.spec.cv_folds):
                slot = self.checkpoint.parent
                path = slot.with_name(f"{slot.name}-cv{k}") / "model.pt"
                if not path.is_file():
                    cfg = {**self.meta["config"], "cv_fold": k}
                    train(TrainConfig.from_json(cfg), path.parent, progress=False)
                s, model, blob = load_checkpoint(path)
                cached.append(Bundle(s, model, path, blob))
            self.__dict__["_cv"] = cached
        return cached

    def _members(self, split: str) -> list:
        """``(bundle, data split)`` pairs a metric on ``split`` is measured over: every
        cross-validation fold's model on its own split for a held-out set, else this one."""
        if split in HELD_OUT:
            return [(b, b.spec.held_out[split]) for b in self.cv_bundles()]
        return [(self, split)]

    def evaluate_outputs(self, formats, split: str):
        """``(metrics, [N, K] float64 outputs)`` of the QNet quantized with ``formats`` on ``split``
        (a held-out set pools every cross-validation fold's model), each spec computing the two in
        one pass where it can (:meth:`models.spec.ModelSpec.evaluate_outputs`)."""
        import numpy as np

        got = [b.spec.evaluate_outputs(b.quantized(formats), split=data)
               for b, data in self._members(split)]
        return pool_metrics([g[0] for g in got]), np.concatenate([g[1] for g in got])

    def metrics_from_outputs(self, outputs, split: str) -> dict:
        """The metrics on ``split`` of outputs laid out as :meth:`evaluate_outputs` returns them
        (the cross-validation folds' models' outputs one after another), pooled like
        :meth:`evaluate`."""
        import numpy as np

        outputs = np.asarray(outputs)
        parts, at = [], 0
        for b, data in self._members(split):
            n = b.spec.output_rows(data)
            parts.append(b.spec.metrics_from_outputs(b.model, outputs[at : at + n], split=data))
            at += n
        if at != len(outputs):
            raise ValueError(f"{len(outputs)} output rows for {at} samples of {split!r}")
        return pool_metrics(parts)

    def evaluate(self, formats=None, split="val", mode="int") -> dict:
        """Metrics of the model quantized with ``formats`` (None: the float model). A held-out
        set (``sens``, ``eval``) pools every cross-validation fold's model on its own split,
        weighted by sample count."""
        if split in HELD_OUT:
            return pool_metrics([b._evaluate(formats, data, mode)
                                 for b, data in self._members(split)])
        return self._evaluate(formats, split, mode)

    def _evaluate(self, formats, split, mode) -> dict:
        if formats is None:
            return self.spec.evaluate(self.model, split=split, mode="float")
        model = self.quantized(formats)
        return self.spec.evaluate(model, split=split, mode=mode)

    def frames(self, n: int, seed: int = 0, split: str = "test"):
        return self.spec.frames(self.model, n, seed=seed, split=split)


def load(name_or_path, *, train_if_missing: bool = True, progress: bool = True,
         calib=None, val=None) -> Bundle:
    """A :class:`Bundle` from a registry name (cached, trained on demand), a checkpoint path, or
    a user's ``file.py:factory`` or QONNX ``.onnx`` with its calibration inputs ``calib`` and
    optional held-out inputs ``val`` (the DSE's ``sens`` and ``eval`` sets), imported on demand
    into the cache (:mod:`models.user`)."""
    name_or_path = str(name_or_path)
    looks_like_path = name_or_path.endswith(".pt") or os.sep in name_or_path
    if name_or_path.endswith(".json"):
        raise ModelError(f"{name_or_path}: a QGraph .json is taken only by `codesign build` (it "
                         "has no data); give a PyTorch model as file.py:factory or a QONNX "
                         ".onnx with --calib")
    if user.is_qonnx_ref(name_or_path):
        if calib is None:
            raise ModelError(f"{name_or_path} is a QONNX model: give its inputs with --calib "
                             "(.npz with x [and y], .npy, or file.py:function)")
        path = user.qonnx_checkpoint_path(name_or_path, calib, cache_dir(), val=val)
        if not path.is_file():
            user.import_qonnx(name_or_path, calib, path, version=CHECKPOINT_VERSION, val=val)
        looks_like_path = True
    elif user.is_user_ref(name_or_path):
        if calib is None:
            raise ModelError(f"{name_or_path} is a PyTorch model: give its calibration inputs "
                             "with --calib (.npz with x [and y], .npy, or file.py:function)")
        path = user.user_checkpoint_path(name_or_path, calib, cache_dir(), val=val)
        if not path.is_file():
            user.import_model(name_or_path, calib, path, version=CHECKPOINT_VERSION, val=val)
    elif val is not None:
        raise ModelError(f"--val is for a file.py:factory or .onnx model, not {name_or_path!r} "
                         "(a built-in model has its own held-out sets)")
    elif looks_like_path:
        path = Path(name_or_path)
        if path.is_dir():
            path = path / "model.pt"
    else:
        s = spec(name_or_path)
        path = checkpoint_path(s.name)
        if not path.is_file():
            if not train_if_missing:
                raise ModelError(f"no cached checkpoint for {s.name!r} at {path}")
            train(TrainConfig(model=s.name), path.parent, progress=progress)
    s, model, blob = load_checkpoint(path)
    if not looks_like_path and not user.is_user_ref(name_or_path) and s.name != name_or_path:
        raise ModelError(f"the cache slot {path} of {name_or_path!r} holds a checkpoint of "
                         f"{s.name!r}; delete {path.parent} and run again")
    qnet = s.qnet(model)
    if not qnet.folded:
        raise FormatError(f"checkpoint {path} is not BatchNorm-folded; retrain it")
    return Bundle(s, model, path, blob)
