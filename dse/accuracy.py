"""Accuracy predictor: per-layer format sensitivity, summed.

:func:`measure_sensitivity` evaluates the integer model on held-out data once with every layer in
the reference format (``int8``), then once per (layer, format) with only that layer changed; the
sensitivity is the metric's drop. :meth:`Sensitivity.predict` adds the drops of an assignment (the
additive predictor) and :func:`check_predictions` compares it with the measured metric of sampled
assignments. Sensitivity tables are cached as JSON because measuring them is the slow part.

Measured drops are kept as measured, including small negative ones (a format change that happens to
help on the held-out set), so the predictor is unbiased rather than conservative.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from models.quant.formats import weight_format

__all__ = [
    "Sensitivity",
    "metric_name",
    "measure_sensitivity",
    "synthetic_sensitivity",
    "check_predictions",
    "load_or_measure",
]

#: Metrics tried in order as "accuracy" (higher is better).
_METRICS = ("accuracy", "p10", "p5")


def metric_name(metrics: dict) -> str:
    """The higher-is-better metric the predictor uses from a ``Bundle.evaluate`` result."""
    for m in _METRICS:
        if m in metrics:
            return m
    raise ValueError(f"no accuracy-like metric in {sorted(metrics)}; expected one of {_METRICS}")


@dataclass(frozen=True)
class Sensitivity:
    """Per-layer accuracy drops of each format against the reference format.

    Attributes
    ----------
    model : str
        Model name.
    metric : str
        The metric (``accuracy`` for classifiers).
    reference : str
        Format of every other layer while one layer is changed.
    base : float
        The metric with every layer in ``reference``.
    drops : dict
        ``{layer: {format: base - metric with only that layer in format}}``; the reference format
        has drop 0.
    split : str
        Held-out split the drops were measured on.
    """

    model: str
    metric: str
    reference: str
    base: float
    drops: dict
    split: str = "val"

    def drop(self, layer: str, fmt: str) -> float:
        try:
            return float(self.drops[layer][fmt])
        except KeyError:
            if fmt == self.reference:
                return 0.0
            raise KeyError(f"no sensitivity measured for layer {layer!r} in {fmt!r}") from None

    def predict(self, assignment: dict) -> float:
        """Predicted metric of ``{layer: format}``: base minus the sum of the layers' drops."""
        return self.base - sum(self.drop(layer, fmt) for layer, fmt in assignment.items())

    def formats(self) -> set[str]:
        return {f for d in self.drops.values() for f in d} | {self.reference}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Sensitivity:
        return cls(**d)

    def save(self, path) -> None:
        from common.fsutil import write_json

        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path) -> Sensitivity:
        return cls.from_dict(json.loads(Path(path).read_text()))


def measure_sensitivity(bundle, formats, *, layers=None, reference: str = "int8",
                        split: str = "val", progress=None) -> Sensitivity:
    """Measure the drop of every (layer, format) with only that layer in the format."""
    formats = [weight_format(f).name for f in formats]
    layers = list(layers or bundle.layer_names())
    base_metrics = bundle.evaluate(dict.fromkeys(layers, reference), split=split)
    metric = metric_name(base_metrics)
    base = float(base_metrics[metric])
    drops = {}
    for layer in layers:
        drops[layer] = {reference: 0.0}
        for fmt in formats:
            if fmt == reference:
                continue
            assignment = dict.fromkeys(layers, reference)
            assignment[layer] = fmt
            value = float(bundle.evaluate(assignment, split=split)[metric])
            drops[layer][fmt] = base - value
            if progress:
                progress(layer, fmt, base - value)
    return Sensitivity(model=bundle.name, metric=metric, reference=reference, base=base,
                       drops=drops, split=split)


def load_or_measure(bundle, formats, path, **kw) -> Sensitivity:
    """The cached table at ``path`` if it covers ``formats`` for this model, else measure it."""
    path = Path(path)
    wanted = {weight_format(f).name for f in formats}
    if path.is_file():
        try:
            sens = Sensitivity.load(path)
        except (ValueError, KeyError, TypeError):
            sens = None
        if sens is not None and sens.model == bundle.name and wanted <= sens.formats() and \
                set(sens.drops) == set(bundle.layer_names()):
            return sens
    sens = measure_sensitivity(bundle, sorted(wanted), **kw)
    sens.save(path)
    return sens


def synthetic_sensitivity(workload, formats, *, seed: int = 0, base: float = 0.95,
                          reference: str = "int8") -> Sensitivity:
    """Made-up drops for workloads without a trained model (benchmarks): larger for fewer bits,
    and larger for layers with fewer weights (first and last layers are the sensitive ones)."""
    rng = random.Random(seed)
    scale = {"int8": 0.0, "dybit8": 0.0002, "dybit4": 0.0015, "int4": 0.003}
    drops = {}
    for layer in workload.layers:
        small = 1.0 + 2.0 / max(layer.weight_count, 1) ** 0.25
        drops[layer.name] = {f: (0.0 if f == reference else
                                 scale.get(f, 0.002) * small * rng.uniform(0.5, 1.5))
                             for f in formats}
    return Sensitivity(model=workload.name, metric="accuracy", reference=reference, base=base,
                       drops=drops, split="synthetic")


def check_predictions(bundle, sens: Sensitivity, assignments, *, split: str | None = None):
    """Predicted against measured metric for each ``{layer: format}`` in ``assignments``.

    Returns a pandas DataFrame with columns ``predicted``, ``measured``, ``error`` (predicted minus
    measured) and ``formats`` (the assignment, compact).
    """
    import pandas as pd

    rows = []
    for a in assignments:
        measured = float(bundle.evaluate(dict(a), split=split or sens.split)[sens.metric])
        predicted = sens.predict(a)
        rows.append({"predicted": predicted, "measured": measured, "error": predicted - measured,
                     "formats": ",".join(f"{k}={v}" for k, v in a.items())})
    return pd.DataFrame(rows)
