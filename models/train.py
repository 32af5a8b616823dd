"""Training, quantization (PTQ or QAT) and evaluation of a zoo model into a checkpoint directory.

Order: float training -> BatchNorm folding -> activation calibration on the ``val`` split -> weight
format with MSE scales -> optional QAT fine-tuning with frozen scales -> metrics. ``metrics.json``
reports the test-split accuracy of the fake-quant model and of the integer reference (they agree by
construction; both are measured).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .checkpoint import save_checkpoint
from .quant.formats import TRAIN_FORMATS, FormatError, act_format
from .registry import spec

__all__ = ["TrainConfig", "train", "finetune"]


@dataclass(frozen=True)
class TrainConfig:
    """What ``codesign train`` does. ``epochs``/``qat_epochs`` of None use the model's defaults."""

    model: str
    format: str = "fp32"
    qat: bool = False
    epochs: int | None = None
    qat_epochs: int | None = None
    seed: int = 0
    lr: float | None = None
    abits: int = 8
    cv_fold: int = 0

    def __post_init__(self):
        spec(self.model).for_cv_fold(self.cv_fold)  # validates the name and the fold
        if self.format not in TRAIN_FORMATS:
            raise FormatError(
                f"unknown format {self.format!r}; valid formats: {', '.join(TRAIN_FORMATS)}"
            )
        act_format(self.abits)
        if self.qat and self.format == "fp32":
            raise FormatError("--qat needs a quantized format, not fp32")
        for k in ("epochs", "qat_epochs"):
            v = getattr(self, k)
            if v is not None and (not isinstance(v, int) or v < 0):
                raise ValueError(f"{k} must be a non-negative integer, not {v!r}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> TrainConfig:
        return cls(**d)


def train(config: TrainConfig, out_dir, *, progress: bool = True) -> dict:
    """Train, quantize and evaluate; write ``out_dir/model.pt`` and ``out_dir/metrics.json``."""
    from common.fsutil import write_json

    s = spec(config.model).for_cv_fold(config.cv_fold)
    epochs = s.default_epochs if config.epochs is None else config.epochs
    qat_epochs = max(1, epochs // 3) if config.qat_epochs is None else config.qat_epochs
    lr = getattr(s, "lr", 1e-2) if config.lr is None else config.lr
    torch.manual_seed(config.seed)
    t0 = time.time()
    model = s.build()
    s.fit(model, epochs=epochs, lr=lr, seed=config.seed, progress=progress)
    float_metrics = s.evaluate(model, split="test", mode="float")
    qnet = s.qnet(model)
    qnet.fold_bn()
    qnet.calibrate(s.calibration_batches(model), abits=config.abits)
    metrics = {"model": s.name, "format": config.format, "qat": config.qat, "epochs": epochs,
               "seed": config.seed, "abits": config.abits,
               "float_accuracy": float_metrics.get("accuracy")}
    if config.format == "fp32":
        metrics.update(_prefixed(float_metrics, ""))
        ptq = _quantized_copy(s, model, "int8")
        metrics.update(_prefixed(s.evaluate(ptq, split="test", mode="int"), "integer_"))
        metrics["integer_format"] = "int8"
    else:
        qnet.set_formats(config.format)
        if config.qat and qat_epochs:
            qnet.set_mode("fake")
            s.fit(model, epochs=qat_epochs, lr=lr / 10, seed=config.seed + 1, progress=progress)
        metrics["qat_epochs"] = qat_epochs if config.qat else 0
        metrics.update(_prefixed(s.evaluate(model, split="test", mode="fake"), ""))
        metrics.update(_prefixed(s.evaluate(model, split="test", mode="int"), "integer_"))
        metrics["integer_format"] = config.format
    qnet.set_mode("float")
    metrics["train_seconds"] = round(time.time() - t0, 1)
    out_dir = Path(out_dir)
    save_checkpoint(out_dir / "model.pt", spec_name=s.name, model=model, fmt=config.format,
                    qat=config.qat, metrics=metrics, config=config.to_json())
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def _quantized_copy(s, model, fmt):
    import copy

    m = copy.deepcopy(model)
    s.qnet(m).set_formats(fmt)
    return m


def _prefixed(d: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in d.items() if k != "n"}


def finetune(bundle, formats: dict, *, epochs: int, metric: str, out_dir=None, seed: int = 1,
             split: str = "eval", before: float | None = None, progress: bool = False) -> dict:
    """Quantization-aware fine-tuning of one mixed-precision design point.

    Every model ``bundle`` measures ``split`` with (each cross-validation fold's model on its own
    held-out data, see :meth:`models.zoo.Bundle.evaluate`) is quantized with ``formats``
    (``{layer: format}``), fine-tuned for ``epochs`` epochs in fake-quant mode with its weight and
    activation scales frozen, on the data its spec trains on (:meth:`ModelSpec.fine_tune`: the
    training split, or an imported model's calibration half), at a tenth of the spec's learning
    rate, and measured again with the integer model. Returns ``{"before", "after", "gain", "n",
    "epochs", "metric"}`` for ``metric`` (pooled over the folds, weighted by sample count);
    ``before``, when the caller has already measured the point on ``split``, is taken as given.

    ``out_dir``: also write the fine-tuned model (the first fold's: the one that goes to hardware)
    as ``out_dir/model.pt``, a checkpoint every command takes (``codesign build --model``), whose
    layers keep the fine-tuned weights and scales in ``formats``, and ``metrics.json``.
    """
    from .spec import pool_metrics

    if epochs < 1:
        raise ValueError(f"fine-tuning needs at least 1 epoch, not {epochs!r}")
    members = bundle._members(split)
    measured, after, tuned = [], [], []
    for i, (b, data) in enumerate(members):
        model = b.quantized(formats)
        if before is None:
            measured.append(b.spec.evaluate(model, split=data, mode="int"))
        qnet = b.spec.qnet(model)
        qnet.set_mode("fake")
        lr = getattr(b.spec, "lr", 1e-2) / 10
        torch.manual_seed(seed + i)
        b.spec.fine_tune(model, epochs=epochs, lr=lr, seed=seed + i, progress=progress)
        model.eval()
        after.append(b.spec.evaluate(model, split=data, mode="int"))
        qnet.set_mode("float")  # the formats and their (frozen) scales stay the fine-tuned ones
        tuned.append(model)
    pa = pool_metrics(after)
    if before is None:
        before = pool_metrics(measured)[metric]
    res = {"metric": metric, "before": before, "after": pa[metric],
           "gain": pa[metric] - before, "n": int(pa["n"]), "epochs": epochs,
           "folds": len(members), "formats": dict(formats)}
    if out_dir is not None:
        from common.fsutil import atomic_path, write_json

        out_dir = Path(out_dir)
        model = tuned[0]
        metrics = {**(bundle.meta.get("metrics") or {}), "finetune": res}
        if bundle.meta.get("model") == "user":
            blob = {**bundle.meta, "qnet": model, "qat": True, "metrics": metrics}
            with atomic_path(out_dir / "model.pt") as tmp:
                torch.save(blob, tmp)
        else:
            # no training config: the fine-tuned weights are not what the recipe would retrain
            save_checkpoint(out_dir / "model.pt", spec_name=bundle.spec.name, model=model,
                            fmt="mixed", qat=True, metrics=metrics, config=None)
        write_json(out_dir / "metrics.json", metrics)
    return res
