"""Model registry, checkpoints and the cache of trained models.

Every later command (``dse``, ``build``, ``sim``, ``flow``) names a model by registry name (the
cached checkpoint, trained on demand) or by checkpoint path. The cache lives in ``$CODESIGN_CACHE``
(default ``~/.cache/codesign``), one folder per ``<model>-<format>[-qat]``.

A :class:`ModelSpec` describes one network: how to build it, its data, how to train and evaluate it,
and which part of it is the hardware's :class:`~models.qnet.QNet`. :class:`ClassifierSpec` covers
image-like classifiers (dense or sparse); the eye tracker registers its own spec.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .qnet import QNet
from .quant.formats import FormatError

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
    "Bundle",
    "load",
]

CHECKPOINT_VERSION = 1


class ModelError(ValueError):
    """Unknown model, missing or corrupt checkpoint."""


class ModelSpec:
    """One network of the zoo. Subclasses implement the task-specific parts."""

    name: str = ""
    default_epochs: int = 10
    sparse: bool = False

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

    def evaluate(self, model, *, split: str, mode: str) -> dict:
        raise NotImplementedError

    def frames(self, model, n: int, *, seed: int = 0, split: str = "test") -> list:
        """``n`` input frames ``(coords [N, 2], feats int64 [N, C])`` in the token view."""
        raise NotImplementedError

    def example_input(self, model):
        """One float input batch for :meth:`QNet.to_qgraph`."""
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
                 sparse=False, batch_size=64, lr=1e-2):
        self.name = name
        self._build = build
        self._data = data
        self._to_input = to_input or (lambda x: x)
        self._augment = augment
        self.default_epochs = default_epochs
        self.sparse = sparse
        self.batch_size = batch_size
        self.lr = lr

    def build(self):
        return self._build()

    def data(self, split):
        return self._data(split)

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
            if self.sparse:
                active = torch.nonzero(xb[0].abs().sum(0) > 0)
            else:
                active = torch.nonzero(torch.ones(xb.shape[2:], dtype=torch.bool))
            q = qnet.input_node.quantize_feats(xb[0][:, active[:, 0], active[:, 1]].t())
            out.append((active, q))
        return out


REGISTRY: dict[str, ModelSpec] = {}


def register(s: ModelSpec) -> ModelSpec:
    REGISTRY[s.name] = s
    return s


def _ensure_registered():
    # import the network modules, which register themselves
    from .nets import digits  # noqa: F401

    for mod in ("eventdigits", "eye"):
        try:
            __import__(f"models.nets.{mod}")
        except ImportError as exc:
            if getattr(exc, "name", "") != f"models.nets.{mod}":
                raise


def model_names() -> list[str]:
    _ensure_registered()
    return sorted(REGISTRY)


def spec(name: str) -> ModelSpec:
    _ensure_registered()
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; valid models: {', '.join(sorted(REGISTRY))} "
            "(or a checkpoint path)"
        ) from None


def cache_dir() -> Path:
    return Path(os.environ.get("CODESIGN_CACHE", Path.home() / ".cache" / "codesign"))


def checkpoint_path(name: str, fmt: str = "fp32", qat: bool = False) -> Path:
    tag = f"{name}-{fmt}" + ("-qat" if qat else "")
    return cache_dir() / "checkpoints" / tag / "model.pt"


def save_checkpoint(path, *, spec_name, model, fmt, qat, metrics, config) -> None:
    from common.fsutil import atomic_path

    qnet = REGISTRY[spec_name].qnet(model)
    blob = {
        "version": CHECKPOINT_VERSION,
        "model": spec_name,
        "format": fmt,
        "qat": qat,
        "folded": qnet.folded,
        "state_dict": model.state_dict(),
        "quant_state": qnet.quant_state(),
        "metrics": metrics,
        "config": config,
    }
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_checkpoint(path):
    """``(spec, model, blob)`` from a checkpoint file; :class:`ModelError` if missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist; train one with `codesign train`")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(blob, dict) or blob.get("version") != CHECKPOINT_VERSION:
            raise ValueError("not a codesign checkpoint")
        s = spec(blob["model"])
        model = s.build()
        if blob["folded"]:
            s.qnet(model).fold_bn()
        model.load_state_dict(blob["state_dict"])
        s.qnet(model).load_quant_state(blob["quant_state"])
    except ModelError:
        raise
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise ModelError(
            f"checkpoint {path} is corrupt or not a codesign checkpoint ({type(exc).__name__}); "
            "delete it and train again"
        ) from None
    model.eval()
    return s, model, blob


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


def load(name_or_path, *, train_if_missing: bool = True, progress: bool = True) -> Bundle:
    """A :class:`Bundle` from a registry name (cached, trained on demand) or a checkpoint path."""
    name_or_path = str(name_or_path)
    looks_like_path = name_or_path.endswith(".pt") or os.sep in name_or_path
    if looks_like_path:
        path = Path(name_or_path)
        if path.is_dir():
            path = path / "model.pt"
    else:
        s = spec(name_or_path)
        path = checkpoint_path(s.name)
        if not path.is_file():
            if not train_if_missing:
                raise ModelError(f"no cached checkpoint for {s.name!r} at {path}")
            from .train import TrainConfig, train

            train(TrainConfig(model=s.name), path.parent, progress=progress)
    s, model, blob = load_checkpoint(path)
    qnet = s.qnet(model)
    if not qnet.folded:
        raise FormatError(f"checkpoint {path} is not BatchNorm-folded; retrain it")
    return Bundle(s, model, path, blob)
