"""Accuracy predictor: per-layer quantization noise, summed, mapped to a drop calibrated on
measured design points.

:func:`measure_sensitivity` evaluates the integer model on a held-out set (``sens``) once with
every layer in the reference format (``int8``), then once per (layer, format) with only that layer
changed. Two things are kept per (layer, format):

- the metric's **drop** (the additive predictor of earlier versions: the drops of an assignment
  summed);
- the **noise**: the output's mean squared deviation from the all-reference output, relative to
  the output's variance (1 / SQNR at the network's output, as HAWQ-style methods use). Noise from
  independent layers adds in power, and unlike a drop it has no resolution floor of one sample.

Then a set of mixed **calibration assignments** (random per-layer mixes, plus every layer in each
format) is measured (:func:`calibrate`), and two models are fitted to it:

- **noise**: ``drop = g(summed noise) = a * noise ** b`` (``a >= 0``, ``b`` in [0.3, 2], least
  absolute deviation; monotone, so a bound on the drop is a linear bound on the summed noise and
  the integer program stays linear);
- **linear**: per-(layer, format) drops fitted to the mixes by ridge regression towards the
  single-layer drops (:func:`fit_linear`): what a layer costs *in company*, which is what the
  single-layer drops miss.

and a third that is not linear in the assignment:

- **superposition**: the network's outputs on the calibration set with each layer alone in each
  format are measured once; an assignment's outputs are predicted as the all-reference outputs
  plus ``alpha`` times the sum of its layers' deviations, sample by sample, and scored with the
  real metric (:meth:`Bundle.metrics_from_outputs`). Interactions that flip a sample only
  together, and the per-sample structure the other models average away, are kept.

The integer program sums linear costs, so it uses the one of additive, noise and linear with the
smallest leave-one-out error on the calibration points (``fit["ilp_use"]``). The predicted
accuracy of a design point (what the front reports and what the check compares) comes from the
model with the smallest leave-one-out error of all four (``fit["use"]``); every error is kept.
:func:`check_predictions` compares predictions with the measured metric of other assignments
(the front's points and random mixes of another seed: design points the fit never saw). Tables
are cached as JSON because measuring them is the slow part.

Measured drops are kept as measured, including small negative ones (a format change that happens to
help on the held-out set), so the predictor is unbiased rather than conservative.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from models.quant.formats import weight_format

__all__ = [
    "Sensitivity",
    "metric_name",
    "measure_sensitivity",
    "synthetic_sensitivity",
    "check_predictions",
    "load_or_measure",
    "fit_noise_model",
    "calibration_assignments",
    "PREDICTOR_VERSION",
    "Superposition",
]

#: Bumped when what a cached table holds or how it is measured changes.
PREDICTOR_VERSION = 2
#: Random mixed assignments measured to calibrate the predictors.
CALIBRATION_POINTS = 64
#: Bumped when the calibration's models change (a cached table is then calibrated again).
CALIBRATION_VERSION = 9
#: The superposition's scale of the summed deviations of ``n`` changed layers,
#: ``alpha ** (1 - 1 / n) * n ** -gamma`` (1 for one layer: its deviation is measured), is chosen
#: from these by the calibration points.
ALPHAS = tuple(round(0.8 + 0.2 * i, 1) for i in range(7))
GAMMAS = tuple(round(0.1 * i, 1) for i in range(6))

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
    noise : dict or None
        ``{layer: {format: relative output noise power with only that layer in format}}``.
    fit : dict or None
        The noise-to-drop map ``{"a", "b"}`` and the calibration errors of both predictors
        (``mae_noise``, ``mae_additive``, in metric units); ``use`` is the one predictions use.
    calibration : list
        The calibration assignments: ``{"formats", "noise", "measured_drop"}`` each.
    n : int
        Samples in the split.
    """

    model: str
    metric: str
    reference: str
    base: float
    drops: dict
    split: str = "val"
    noise: dict | None = None
    fit: dict | None = None
    calibration: list = field(default_factory=list)
    n: int = 0
    fitted: dict | None = None
    #: path of the :class:`Superposition` tables (``.npz``) when they were measured
    superposition: str | None = None

    @property
    def ilp_model(self) -> str:
        """The linear model the integer program sums: additive, noise or linear."""
        fit = self.fit or {}
        return fit.get("ilp_use", fit.get("use", "additive"))

    @property
    def uses_noise(self) -> bool:
        return bool(self.noise) and self.ilp_model == "noise"

    @property
    def uses_fitted(self) -> bool:
        return bool(self.fitted) and self.ilp_model == "linear"

    @property
    def predictor(self) -> str:
        """The model a design point's predicted accuracy comes from."""
        return (self.fit or {}).get("use", "additive")

    def calibration_key(self, assignment: dict) -> str:
        """How :attr:`calibration` names an assignment (formats in layer order)."""
        return "/".join(str(assignment.get(layer, self.reference)) for layer in self.drops)

    @cached_property
    def _measured(self) -> dict:
        return {c["formats"]: float(c["measured_drop"]) for c in self.calibration or ()}

    def measured_drop(self, assignment: dict) -> float | None:
        """The drop measured for ``assignment`` when it is one of the calibration points (on the
        calibration's split, the same samples the front is measured on), else None."""
        return self._measured.get(self.calibration_key(assignment))

    def point_drop(self, assignment: dict, bundle=None) -> float:
        """Predicted drop of one design point: its measurement when it is a calibration point
        (no model beats it; such a point is not counted as held out), else by :attr:`predictor`:
        the superposition of per-layer output deviations when it won (needs ``bundle`` to score
        outputs), else the linear model's :meth:`predict_drop`."""
        measured = self.measured_drop(assignment)
        if measured is not None:
            return measured
        if self.predictor == "superposition" and bundle is not None and self.superposition:
            return Superposition.load(self.superposition).predict_drop(bundle, assignment)
        return self.predict_drop(assignment)

    def coefficient(self, layer: str, fmt: str) -> float:
        """The linear accuracy cost of ``layer`` in ``fmt`` the integer program sums: its noise
        under the noise model, its fitted drop under the calibrated linear model, else its
        measured drop."""
        if self.uses_fitted:
            return self._lookup(self.fitted, layer, fmt, "fitted drop")
        if self.uses_noise:
            return self._lookup(self.noise, layer, fmt, "noise")
        return self.drop(layer, fmt)

    def _lookup(self, table: dict, layer: str, fmt: str, what: str) -> float:
        """``table[layer][fmt]``; 0 for the reference format when the table leaves it out."""
        try:
            return float(table[layer][fmt])
        except KeyError:
            if fmt == self.reference:
                return 0.0
            raise KeyError(f"no {what} measured for layer {layer!r} in {fmt!r}") from None

    def drop_of(self, cost: float) -> float:
        """Predicted drop of a summed linear cost (:meth:`coefficient`)."""
        if not self.uses_noise:
            return float(cost)
        return _power(self.fit["a"], self.fit["b"], cost)

    def cost_of(self, drop: float) -> float:
        """The summed linear cost whose predicted drop is ``drop`` (inverse of :meth:`drop_of`)."""
        if not self.uses_noise:
            return float(drop)
        a, b = self.fit["a"], self.fit["b"]
        if drop <= 0 or a <= 0:
            return 0.0
        return (drop / a) ** (1.0 / b)

    def predict_drop(self, assignment: dict) -> float:
        return self.drop_of(sum(self.coefficient(layer, f) for layer, f in assignment.items()))

    def additive_drop(self, assignment: dict) -> float:
        """The additive predictor's drop: the sum of the layers' single-layer drops."""
        return sum(self.drop(layer, fmt) for layer, fmt in assignment.items())

    def drop(self, layer: str, fmt: str) -> float:
        return self._lookup(self.drops, layer, fmt, "sensitivity")

    def predict(self, assignment: dict) -> float:
        """Predicted metric of ``{layer: format}``: base minus the predicted drop."""
        return self.base - self.predict_drop(assignment)

    def formats(self) -> set[str]:
        return {f for d in self.drops.values() for f in d} | {self.reference}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Sensitivity:
        return cls(**{**d, "calibration": list(d.get("calibration", []))})

    def save(self, path) -> None:
        from common.fsutil import write_json

        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path) -> Sensitivity:
        return cls.from_dict(json.loads(Path(path).read_text()))


class Superposition:
    """Per-sample superposition of per-layer output deviations (see the module docstring).

    ``ref`` is the all-reference network's outputs on ``split`` (``[N, K]``, as
    :meth:`models.zoo.Bundle.evaluate_outputs` lays them out), ``deltas[(layer, format)]`` the
    outputs with only that layer in that format minus ``ref``, ``base`` the metric of ``ref``.
    An assignment that changes ``n`` layers gets ``ref + scale(n) * sum(deltas)`` with
    ``scale(n) = alpha ** (1 - 1 / n) * n ** -gamma``: exactly the measured outputs for one layer;
    ``alpha > 1`` when a few layers' deviations hurt more together than their sum (a later
    layer's rounding of an already-deviated input), ``gamma > 0`` when many hurt less (errors that
    partly cancel, or saturate in a ReLU); eventdigits has both.
    """

    def __init__(self, *, split: str, metric: str, base: float, ref, deltas: dict,
                 alpha: float = 1.0, gamma: float = 0.0):
        self.split, self.metric, self.base = split, metric, float(base)
        self.ref, self.deltas = ref, deltas
        self.alpha, self.gamma = float(alpha), float(gamma)

    def outputs(self, assignment: dict, alpha: float | None = None,
                gamma: float | None = None):
        alpha = self.alpha if alpha is None else alpha
        gamma = self.gamma if gamma is None else gamma
        changed = [d for d in (self.deltas.get((layer, fmt)) for layer, fmt in assignment.items())
                   if d is not None]
        out = self.ref.copy()
        if changed:
            n = len(changed)
            out += alpha ** (1.0 - 1.0 / n) * n ** -gamma * sum(changed)
        return out

    def predict_drop(self, bundle, assignment: dict, alpha: float | None = None,
                     gamma: float | None = None) -> float:
        got = bundle.metrics_from_outputs(self.outputs(assignment, alpha, gamma), self.split)
        return self.base - float(got[self.metric])

    @classmethod
    def measure(cls, bundle, layers, formats, *, reference: str, split: str, metric: str,
                progress=None) -> Superposition:
        import numpy as np

        ref_assign = dict.fromkeys(layers, reference)
        got, ref = bundle.evaluate_outputs(ref_assign, split)
        ref = np.asarray(ref, dtype=np.float64)
        deltas = {}
        for layer in layers:
            for fmt in formats:
                if fmt == reference:
                    continue
                _, out = bundle.evaluate_outputs({**ref_assign, layer: fmt}, split)
                deltas[(layer, fmt)] = np.asarray(out, dtype=np.float64) - ref
                if progress:
                    progress(f"superposition: outputs with {layer} in {fmt} on '{split}'")
        return cls(split=split, metric=metric, base=float(got[metric]), ref=ref, deltas=deltas)

    def save(self, path) -> None:
        import numpy as np

        from common.fsutil import atomic_path

        keys = sorted(self.deltas)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, ref=self.ref, deltas=np.stack([self.deltas[k] for k in keys]),
                         keys=np.array([f"{layer}|{fmt}" for layer, fmt in keys]),
                         meta=np.array([self.split, self.metric, repr(self.base),
                                        repr(self.alpha), repr(self.gamma)]))

    @classmethod
    def load(cls, path) -> Superposition:
        import numpy as np

        path = Path(path)
        key = (str(path), path.stat().st_mtime_ns)
        if key not in _SUPERPOSITIONS:
            with np.load(path) as z:
                split, metric, base, alpha, gamma = (str(v) for v in z["meta"])
                deltas = {tuple(str(k).split("|", 1)): d
                          for k, d in zip(z["keys"], z["deltas"], strict=True)}
                _SUPERPOSITIONS[key] = cls(split=split, metric=metric, base=float(base),
                                           ref=z["ref"], deltas=deltas, alpha=float(alpha),
                                           gamma=float(gamma))
        return _SUPERPOSITIONS[key]


_SUPERPOSITIONS: dict = {}


def fit_superposition(bundle, sp: Superposition, calib,
                      assignments) -> tuple[float, float, float]:
    """The ``(alpha, gamma)`` of :data:`ALPHAS` x :data:`GAMMAS` with the smallest mean absolute
    error on the calibration points, and the leave-one-out error of that choice (each point
    predicted with the pair chosen on the others): ``(alpha, gamma, loo)``."""
    import numpy as np

    grid = [(a, g) for a in ALPHAS for g in GAMMAS]
    measured = np.array([c["measured_drop"] for c in calib])
    err = np.zeros((len(grid), len(assignments)))
    for i, (a, m) in enumerate(zip(assignments, measured, strict=True)):
        if sum(k in sp.deltas for k in a.items()) <= 1:
            # no or one layer changed: the prediction is the measured outputs for every pair
            err[:, i] = abs(sp.predict_drop(bundle, a) - m)
            continue
        err[:, i] = [abs(sp.predict_drop(bundle, a, alpha, gamma) - m) for alpha, gamma in grid]
    total = err.sum(1)
    loo = [err[int(np.argmin(total - err[:, i])), i] for i in range(err.shape[1])]
    alpha, gamma = grid[int(np.argmin(total))]
    return float(alpha), float(gamma), float(np.mean(loo))


def _power(a: float, b: float, x: float) -> float:
    return a * x ** b if x > 0 else 0.0


def _relative_noise(out, ref) -> float:
    """Mean squared deviation of ``out`` from ``ref`` over the variance of ``ref``."""
    import numpy as np

    ref = np.asarray(ref, dtype=np.float64)
    var = float(((ref - ref.mean(0)) ** 2).sum(-1).mean())
    dev = float(((np.asarray(out, dtype=np.float64) - ref) ** 2).sum(-1).mean())
    return dev / var if var > 0 else 0.0


def fit_noise_model(noise, drops) -> dict:
    """Least-absolute-deviation ``drop = a * noise ** b`` (``a >= 0``, ``b`` in [0.3, 2]) and its
    mean absolute error on the points. Absolute rather than squared error: one calibration point
    far off the trend (a held-out set's sampling noise, or a layer mix that breaks the network)
    must not drag the map for all the others."""
    import numpy as np

    x = np.asarray(noise, dtype=np.float64)
    d = np.asarray(drops, dtype=np.float64)
    best = None
    for b in np.arange(0.30, 2.0001, 0.01):
        xb = np.where(x > 0, np.abs(x) ** b, 0.0)
        use = xb > 0
        if not use.any():
            a = 0.0
        else:
            # for a fixed b, the a minimising sum |a * xb - d| is the xb-weighted median of d / xb
            r, w = d[use] / xb[use], xb[use]
            order = np.argsort(r)
            cum = np.cumsum(w[order])
            a = max(0.0, float(r[order][np.searchsorted(cum, cum[-1] / 2)]))
        err = float(np.abs(a * xb - d).sum())
        if best is None or err < best[0] - 1e-15:
            best = (err, a, float(b))
    _, a, b = best
    mae = float(np.mean([abs(_power(a, b, xi) - di) for xi, di in zip(x, d, strict=True)]))
    return {"a": a, "b": round(b, 2), "mae_noise": mae}


def calibration_assignments(layers, formats, reference, count, seed=0):
    """Every layer in each non-reference format, then ``count`` random mixes whose share of
    changed layers spreads from few to all."""
    rng = random.Random(seed)
    others = [f for f in formats if f != reference]
    if not others:
        return []  # the reference alone: nothing to mix
    out = [dict.fromkeys(layers, f) for f in others]
    for i in range(count):
        share = (i + 1) / (count + 1)
        out.append({layer: (rng.choice(others) if rng.random() < share else reference)
                    for layer in layers})
    return out


def measure_sensitivity(bundle, formats, *, layers=None, reference: str = "int8",
                        split: str = "val", progress=None,
                        calibration: int = CALIBRATION_POINTS,
                        calib_split: str | None = None,
                        superposition_path=None) -> Sensitivity:
    """Measure the drop and the output noise of every (layer, format) with only that layer in the
    format on ``split``, then calibrate the noise-to-drop map on mixed assignments measured on
    ``calib_split`` (default ``split``; :func:`calibrate`). A bundle without ``evaluate_outputs``
    gets the additive predictor alone."""
    formats = [weight_format(f).name for f in formats]
    layers = list(layers or bundle.layer_names())
    ref_assign = dict.fromkeys(layers, reference)
    has_outputs = callable(getattr(bundle, "evaluate_outputs", None))

    def run(assignment):
        if has_outputs:
            return bundle.evaluate_outputs(assignment, split)
        return bundle.evaluate(assignment, split=split), None

    base_metrics, ref_out = run(ref_assign)
    metric = metric_name(base_metrics)
    base = float(base_metrics[metric])
    drops, noise = {}, ({} if has_outputs else None)
    for layer in layers:
        drops[layer] = {reference: 0.0}
        if has_outputs:
            noise[layer] = {reference: 0.0}
        for fmt in formats:
            if fmt == reference:
                continue
            assignment = dict(ref_assign)
            assignment[layer] = fmt
            got, out = run(assignment)
            value = float(got[metric])
            drops[layer][fmt] = base - value
            if has_outputs:
                noise[layer][fmt] = _relative_noise(out, ref_out)
            if progress:
                progress(f"sensitivity: {layer} in {fmt}: drop {100 * (base - value):+.2f} "
                         f"points on '{split}'")
    sens = Sensitivity(model=bundle.name, metric=metric, reference=reference, base=base,
                       drops=drops, split=split, noise=noise,
                       n=int(base_metrics.get("n", 0)))
    if not has_outputs or len(formats) < 2 or calibration <= 0:
        return sens
    return calibrate(bundle, sens, formats, split=calib_split or split, count=calibration,
                     superposition_path=superposition_path, progress=progress)


def calibrate(bundle, sens: Sensitivity, formats, *, split: str,
              count: int = CALIBRATION_POINTS, superposition_path=None,
              progress=None) -> Sensitivity:
    """``sens`` with its noise-to-drop map fitted on mixed assignments measured on ``split``
    (drops from the all-reference design measured there too); with ``superposition_path`` the
    :class:`Superposition` tables are measured on ``split`` too, saved there and fitted."""
    layers = list(sens.drops)
    ref = dict.fromkeys(layers, sens.reference)
    base = float(bundle.evaluate(ref, split=split)[sens.metric])
    calib = []
    assignments = calibration_assignments(layers, formats, sens.reference, count)
    for i, a in enumerate(assignments):
        measured = base - float(bundle.evaluate(a, split=split)[sens.metric])
        if progress:
            progress(f"calibration point {i + 1}/{len(assignments)}: drop "
                     f"{100 * measured:+.2f} points on '{split}'")
        cost = sum(sens.noise[layer][f] for layer, f in a.items())
        calib.append({"formats": "/".join(a[layer] for layer in layers), "noise": cost,
                      "measured_drop": measured,
                      "additive_drop": sens.additive_drop(a)})
    fit = fit_noise_model([c["noise"] for c in calib], [c["measured_drop"] for c in calib])
    fit["mae_additive"] = float(sum(abs(c["additive_drop"] - c["measured_drop"]) for c in calib)
                                / len(calib))
    fitted, lam, loo = fit_linear(sens, calib)
    fit["lambda"] = lam
    # each model's leave-one-out error on the calibration points (the additive sum fits nothing)
    fit["loo_additive"] = fit["mae_additive"]
    fit["loo_noise"] = _loo_noise(calib)
    fit["loo_linear"] = loo
    fit["ilp_use"] = min(("additive", "noise", "linear"), key=lambda k: fit[f"loo_{k}"])
    fit["use"] = fit["ilp_use"]
    sp_path = None
    if superposition_path is not None and callable(getattr(bundle, "metrics_from_outputs", None)):
        others = [f for f in formats if f != sens.reference]
        sp = Superposition.measure(bundle, layers, others, reference=sens.reference, split=split,
                                   metric=sens.metric, progress=progress)
        sp.alpha, sp.gamma, fit["loo_superposition"] = fit_superposition(bundle, sp, calib,
                                                                         assignments)
        fit["alpha"], fit["gamma"] = sp.alpha, sp.gamma
        sp.save(superposition_path)
        sp_path = str(superposition_path)
        if fit["loo_superposition"] < fit[f"loo_{fit['use']}"]:
            fit["use"] = "superposition"
    fit["points"] = len(calib)
    fit["split"] = split
    fit["version"] = CALIBRATION_VERSION
    return Sensitivity(**{**asdict(sens), "fit": fit, "calibration": calib, "fitted": fitted,
                          "superposition": sp_path})


def _loo_noise(calib) -> float:
    errs = []
    for i, c in enumerate(calib):
        rest = calib[:i] + calib[i + 1:]
        f = fit_noise_model([r["noise"] for r in rest], [r["measured_drop"] for r in rest])
        errs.append(abs(_power(f["a"], f["b"], c["noise"]) - c["measured_drop"]))
    return float(sum(errs) / len(errs))


def fit_linear(sens: Sensitivity, calib, lambdas=(0.1, 0.3, 1.0, 3.0, 10.0, 30.0)):
    """Per-(layer, format) drops fitted to the calibration points by ridge regression towards the
    single-layer drops: ``min |X c - y|^2 + lam |c - d|^2`` with ``c >= d`` (``d`` the
    single-layer drops, floored at 0), ``lam`` by leave-one-out error.
    Returns ``(fitted {layer: {format: c}}, lam, leave-one-out mean absolute error)``."""
    import numpy as np

    layers = list(sens.drops)
    keys = [(layer, f) for layer in layers for f in sorted(sens.drops[layer])
            if f != sens.reference]
    col = {k: i for i, k in enumerate(keys)}
    X = np.zeros((len(calib), len(keys)))
    for r, c in enumerate(calib):
        for layer, f in zip(layers, c["formats"].split("/"), strict=True):
            if f != sens.reference:
                X[r, col[(layer, f)]] = 1.0
    y = np.array([c["measured_drop"] for c in calib])
    d = np.array([max(sens.drop(*k), 0.0) for k in keys])

    def solve(Xs, ys, lam):
        # c = d + e with e >= 0: a layer costs at least what it costs alone (in company it can
        # only cost more, as the mixes measure). Without that floor the integer program chases
        # the fitted coefficients that came out low. Coefficients of e that come out negative
        # are fixed at 0 and the rest solved again, until none is negative.
        r = ys - Xs @ d
        free = np.ones(len(keys), dtype=bool)
        e = np.zeros(len(keys))
        for _ in range(len(keys) + 1):
            Xf = Xs[:, free]
            e = np.zeros(len(keys))
            e[free] = np.linalg.solve(Xf.T @ Xf + lam * np.eye(int(free.sum())), Xf.T @ r)
            if (e >= 0).all():
                break
            free &= e > 0
        return d + np.maximum(e, 0.0)

    best = None
    for lam in lambdas:
        errs = [abs(float(X[i] @ solve(np.delete(X, i, 0), np.delete(y, i), lam)) - y[i])
                for i in range(len(y))]
        loo = float(np.mean(errs))
        if best is None or loo < best[1] - 1e-15:
            best = (lam, loo)
    lam, loo = best
    c = solve(X, y, lam)
    fitted = {layer: {} for layer in layers}
    for (layer, f), v in zip(keys, c, strict=True):
        fitted[layer][f] = float(v)
    return fitted, float(lam), loo


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
                set(sens.drops) == set(bundle.layer_names()) and \
                sens.split == kw.get("split", "val"):
            want = kw.get("calib_split") or sens.split
            fit = sens.fit or {}
            stale = fit.get("split") != want or fit.get("version") != CALIBRATION_VERSION
            if sens.superposition and not Path(sens.superposition).is_file():
                stale = True  # its tables were deleted
            # (a table of one format has no mix to calibrate on: measure_sensitivity's rule)
            if sens.noise and stale and len(sens.formats()) > 1 \
                    and kw.get("calibration", CALIBRATION_POINTS) > 0:
                sens = calibrate(bundle, sens, sorted(sens.formats()), split=want,
                                 count=kw.get("calibration", CALIBRATION_POINTS),
                                 superposition_path=_superposition_path(path),
                                 progress=kw.get("progress"))
                sens.save(path)
            return sens
    sens = measure_sensitivity(bundle, sorted(wanted), superposition_path=_superposition_path(path),
                               **kw)
    sens.save(path)
    return sens


def _superposition_path(path: Path) -> Path:
    """Where the :class:`Superposition` tables of the cached table ``path`` go."""
    return path.with_name(path.stem + ".superposition.npz")


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


def check_predictions(bundle, sens: Sensitivity, assignments, *, split: str | None = None,
                      base: float | None = None):
    """Predicted against measured metric for each ``{layer: format}`` in ``assignments``.

    ``base`` anchors the prediction: the reference design's measured metric on ``split`` (default
    the table's own base), so a prediction is ``base - predicted drop`` on the same samples as the
    measurement. Returns a pandas DataFrame with columns ``predicted``, ``measured``, ``error``
    (predicted minus measured), ``predicted_additive`` and ``error_additive`` (the additive
    predictor, for comparison), ``predicted_ilp`` (the linear model the integer program sums)
    and ``formats`` (the assignment, compact).
    """
    import pandas as pd

    base = sens.base if base is None else base
    rows = []
    for a in assignments:
        measured = float(bundle.evaluate(dict(a), split=split or sens.split)[sens.metric])
        predicted = base - sens.point_drop(a, bundle)
        additive = base - sens.additive_drop(a)
        rows.append({"predicted": predicted, "measured": measured, "error": predicted - measured,
                     "predicted_additive": additive, "error_additive": additive - measured,
                     "predicted_ilp": base - sens.predict_drop(a),
                     "formats": ",".join(f"{k}={v}" for k, v in a.items())})
    return pd.DataFrame(rows)
