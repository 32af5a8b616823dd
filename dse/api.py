"""Python entry point of ``codesign dse``: workload -> prices -> Pareto sweep -> files.

:func:`explore` writes, under ``out``:

- ``pareto.csv``: the non-dominated points (:data:`dse.pareto.FRONT_COLUMNS`), fastest first;
- ``pareto.png``: latency against predicted accuracy, each point labelled, the budget stated;
- ``point_<k>.json``: design points ``codesign build`` accepts
  (:class:`contract.point.DesignPoint`), each layer with its choice and ``pred_*`` cycles and
  resources, plus a ``dse`` summary;
- ``choices.csv``: every candidate the program chose from;
- ``accuracy_check.csv``: predicted against measured accuracy of ``check`` front points (trained
  models only), also in ``pareto.csv``'s ``accuracy_measured`` column;
- ``workload.json``, ``sensitivity.json``, ``budget.json``: the inputs, for reproduction.

Models named ``synthetic<N>`` (e.g. ``synthetic50``) are the made-up dense networks of
:func:`dse.workload.synthetic` with made-up sensitivities, for benchmarks.
"""

from __future__ import annotations

import re
from pathlib import Path

from common.errors import CodesignError
from common.fsutil import atomic_path, write_json, write_png, write_text
from models.quant.formats import WEIGHT_FORMATS

from . import accuracy, devices, ilp, pareto, workload
from .cost import resource_model
from .ilp import OBJECTIVES

__all__ = ["explore", "load_workload", "DEFAULT_FORMATS"]

DEFAULT_FORMATS = ("int8", "int4", "dybit4")


def _formats(formats) -> list[str]:
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",") if f.strip()]
    formats = list(dict.fromkeys(formats))
    if not formats:
        raise CodesignError("--formats is empty; give e.g. int8,int4,dybit4")
    for f in formats:
        if f not in WEIGHT_FORMATS:
            raise CodesignError(
                f"unknown format {f!r} in --formats; valid formats: {', '.join(WEIGHT_FORMATS)}")
    return formats


def load_workload(model: str, formats, *, frames: int = 32, log=None, precheck=None):
    """``(workload, sensitivity, bundle)`` of a zoo model / checkpoint path, or of
    ``synthetic<N>`` (bundle None). ``precheck(workload)`` runs before the sensitivity analysis
    (the slow part), to refuse a budget nothing fits before any work."""
    m = re.fullmatch(r"synthetic(\d+)", str(model))
    if m:
        w = workload.synthetic(int(m.group(1)))
        if precheck:
            precheck(w)
        return w, accuracy.synthetic_sensitivity(w, formats), None
    from models import zoo

    try:
        bundle = zoo.load(model)
    except (zoo.ModelError, FileNotFoundError) as exc:
        raise CodesignError(str(exc).splitlines()[0]) from None
    w = workload.from_bundle(bundle, frames=frames)
    if precheck:
        precheck(w)
    # keyed by the checkpoint's content and the quantizer version: a retrained model or a change
    # in how weights are quantized must not reuse old drops
    from common.digest import file_digest
    from models.quant import QUANT_VERSION

    tag = f"{file_digest(bundle.checkpoint)[:12]}-q{QUANT_VERSION}"
    cache = bundle.checkpoint.parent / f"dse_sensitivity-{tag}.json"
    if log:
        log(f"sensitivity of {len(w)} layers x {len(formats)} formats (cached in {cache})")
    sens = accuracy.load_or_measure(bundle, formats, cache)
    return w, sens, bundle


def _plot(path: Path, df, budget: devices.Budget, title: str, clock_mhz: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = df["latency_us"]
    y = df["accuracy_pred"]
    ax.plot(x, y, "o-", color="tab:blue")
    ax.margins(x=0.15, y=0.1)
    for _, r in df.iterrows():
        ax.annotate(f"{int(r['point'])}: II {int(r['ii_cycles'])}, {int(r['dsp'])} DSP",
                    (r["latency_us"], r["accuracy_pred"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=7)
    ax.set_xlabel(f"latency per frame [us] at {clock_mhz:g} MHz")
    ax.set_ylabel("predicted accuracy")
    ax.set_xscale("log")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{title}\nbudget: {budget.describe()}", fontsize=9)
    fig.tight_layout()
    write_png(path, fig, dpi=120)


def _point(model_name: str, w, sol, row, *, clock_mhz: float, budget, objective: str) -> dict:
    from contract.point import DesignPoint, LayerChoice

    layers = []
    for layer, ch, cost, drop in zip(w.layers, sol.choices, sol.costs, sol.drops, strict=True):
        pred = {"pred_cycles": cost.cycles, "pred_fill": cost.fill, "pred_dsp": cost.dsp,
                "pred_lut": cost.lut, "pred_ff": cost.ff, "pred_bram18": cost.bram18,
                "pred_acc_drop": round(drop, 6)}
        layers.append(LayerChoice(name=layer.name, format=ch.format, lanes=ch.lanes, pe=ch.pe,
                                  pred=tuple(pred.items())))
    point = DesignPoint(model=model_name, layers=tuple(layers), clock_mhz=clock_mhz)
    d = point.to_dict()
    d["dse"] = {
        "point": int(row["point"]), "device": budget.device, "util": budget.util,
        "objective": objective, "accuracy_pred": float(row["accuracy_pred"]),
        "acc_drop": float(row["acc_drop"]), "ii_cycles": sol.ii, "latency_cycles": sol.latency,
        "fps": float(row["fps"]), "dsp": sol.dsp, "lut": sol.lut, "ff": sol.ff,
        "bram18": sol.bram18, "converters": sol.converters, "budget": budget.to_dict(),
    }
    return d


def explore(model: str, device: str, *, out, util: float = 0.8, formats=DEFAULT_FORMATS,
            clock_mhz: float = 200.0, points: int = 10, objective: str = "ii",
            frames: int = 32, time_limit: float | None = 20.0, max_par: int = 64,
            activity: str = "mean", check: int = 3, log=None):
    """Run the design-space exploration and write its files; returns the front DataFrame."""
    out = Path(out)
    budget = devices.budget(device, util)
    formats = _formats(formats)
    if objective not in OBJECTIVES[:2]:
        raise CodesignError(f"--objective must be ii or latency, not {objective!r}")
    if not isinstance(points, int) or points < 1:
        raise CodesignError(f"--points must be a positive integer, not {points!r}")
    if not clock_mhz > 0:
        raise CodesignError(f"--clock-mhz must be positive, not {clock_mhz!r}")
    rmodel = resource_model()

    def fits(w):
        """Even the cheapest choice of every layer must fit the budget (resources only: the
        drops do not matter here, so placeholder ones stand in for the sensitivity)."""
        cands, _ = pareto.price(w, formats, accuracy.synthetic_sensitivity(w, formats),
                                model=rmodel, activity=activity, max_lanes=max_par,
                                max_pe=max_par)
        try:
            ilp.check_budget(pareto.make_problem(w, cands, budget, objective=objective,
                                                 model=rmodel))
        except ilp.Infeasible as exc:
            raise CodesignError(f"{exc}; raise --util, choose a larger device or allow cheaper "
                                "formats") from None

    w, sens, bundle = load_workload(model, formats, frames=frames, log=log, precheck=fits)
    cands, table = pareto.price(w, formats, sens, model=rmodel, activity=activity,
                                max_lanes=max_par, max_pe=max_par)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "choices.csv") as tmp:
        table.to_csv(tmp, index=False)
    write_text(out / "workload.json", w.to_json() + "\n")
    write_json(out / "sensitivity.json", sens.to_dict())
    write_json(out / "budget.json", {**budget.to_dict(), "resource_model": rmodel.status,
                                     "resource_model_provenance": rmodel.provenance})
    problem = pareto.make_problem(w, cands, budget, objective=objective, model=rmodel)
    front, rows, seconds = pareto.timed_sweep(problem, points=points, time_limit=time_limit,
                                              log=log)
    df = pareto.solutions_frame(front, base=sens.base, clock_mhz=clock_mhz)
    name = getattr(w, "name", str(model))
    model_ref = str(model)
    for old in out.glob("point_*.json"):
        old.unlink()
    for (_, sol), (_, row) in zip(front, df.iterrows(), strict=True):
        write_json(out / f"point_{int(row['point'])}.json",
                   _point(model_ref, w, sol, row, clock_mhz=clock_mhz, budget=budget,
                          objective=objective))
    df["accuracy_measured"] = float("nan")
    if bundle is not None and check > 0 and len(df):
        # Measure a few points spread over the front (always both ends) against the predictor.
        k = min(check, len(df))
        picks = sorted({round(i * (len(df) - 1) / max(k - 1, 1)) for i in range(k)})
        assignments = [{layer.name: c.format for layer, c in zip(w.layers, front[i][1].choices,
                                                                  strict=True)} for i in picks]
        chk = accuracy.check_predictions(bundle, sens, assignments)
        chk.insert(0, "point", picks)
        df.loc[picks, "accuracy_measured"] = chk["measured"].to_numpy()
        with atomic_path(out / "accuracy_check.csv") as tmp:
            chk.to_csv(tmp, index=False)
        if log:
            log(f"predictor check on {k} points ({sens.split} split): max |error| "
                f"{chk['error'].abs().max():.4f}")
    with atomic_path(out / "pareto.csv") as tmp:
        df.to_csv(tmp, index=False)
    _plot(out / "pareto.png", df, budget,
          f"{name}: {len(df)} Pareto points ({sens.metric}, formats {','.join(formats)})",
          clock_mhz)
    if log:
        log(f"{len(rows)} bounds solved in {seconds:.1f} s, {len(df)} non-dominated points")
    return df
