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
from .spec import ClassifierSpec, ModelSpec
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

    def evaluate(self, formats=None, split="val", mode="int") -> dict:
        """Metrics of the model quantized with ``formats`` (None: the float model)."""
        if formats is None:
            return self.spec.evaluate(self.model, split=split, mode="float")
        model = self.quantized(formats)
        return self.spec.evaluate(model, split=split, mode=mode)

    def frames(self, n: int, seed: int = 0, split: str = "test"):
        return self.spec.frames(self.model, n, seed=seed, split=split)


def load(name_or_path, *, train_if_missing: bool = True, progress: bool = True,
         calib=None) -> Bundle:
    """A :class:`Bundle` from a registry name (cached, trained on demand), a checkpoint path, or
    a user's ``file.py:factory`` with its calibration inputs ``calib`` (imported on demand into
    the cache, :mod:`models.user`)."""
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
        path = user.qonnx_checkpoint_path(name_or_path, calib, cache_dir())
        if not path.is_file():
            user.import_qonnx(name_or_path, calib, path, version=CHECKPOINT_VERSION)
        looks_like_path = True
    elif user.is_user_ref(name_or_path):
        if calib is None:
            raise ModelError(f"{name_or_path} is a PyTorch model: give its calibration inputs "
                             "with --calib (.npz with x [and y], .npy, or file.py:function)")
        path = user.user_checkpoint_path(name_or_path, calib, cache_dir())
        if not path.is_file():
            user.import_model(name_or_path, calib, path, version=CHECKPOINT_VERSION)
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
