"""Python entry point of ``codesign dse``: workload -> prices -> Pareto sweep -> files.

:func:`explore` writes, under ``out``:

- ``pareto.csv``: the non-dominated points (:data:`dse.pareto.FRONT_COLUMNS`), fastest first,
  each with its measured accuracy (integer golden model on the held-out `eval` set, every point by
  default) and ``bound_ok``: whether the measured drop stays within the point's accuracy bound;
- ``references.csv``: the all-int8 design (the program with int8 only) and the greedy folding
  design (FINN-style: raise the bottleneck's parallelism while the budget allows, int8), priced
  and measured the same way;
- ``pareto.png``: latency (linear, microseconds; cycles on the top axis) against accuracy, each
  point's predicted and measured accuracy joined by its gap, the references on the same axes, the
  budget stated (:func:`plot_front`; the flow marks its chosen point);
- ``point_<k>.json``: design points ``codesign build`` accepts
  (:class:`contract.point.DesignPoint`), each layer with its choice and ``pred_*`` cycles and
  resources, plus a ``dse`` summary;
- ``choices.csv``: every candidate the program chose from;
- ``accuracy_check.csv``: predicted against measured accuracy of ``check`` front points (all by
  default; trained models only), also in ``pareto.csv``'s ``accuracy_measured`` column;
- with ``finetune=N``: ``finetuned/point_<k>/model.pt``, each front point's weights after ``N``
  epochs of quantization-aware fine-tuning in its formats (:func:`models.train.finetune`), a
  checkpoint ``codesign build --model`` takes with ``point_<k>.json``; ``pareto.csv`` gains
  ``accuracy_finetuned`` and ``finetune_gain`` (measured on `eval` like ``accuracy_measured``);
- ``workload.json``, ``sensitivity.json``, ``budget.json``: the inputs, for reproduction.

Models named ``synthetic<N>`` (e.g. ``synthetic50``) are the made-up dense networks of
:func:`dse.workload.synthetic` with made-up sensitivities, for benchmarks.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

from common.errors import CodesignError
from common.fsutil import atomic_path, write_json, write_png, write_text
from models.quant.formats import WEIGHT_FORMATS

from . import accuracy, devices, fmax, ilp, pareto, workload
from .cost import for_budget
from .ilp import OBJECTIVES

#: How the DSE counts a design's clock (``--clock``): each design's estimated Fmax, or the one
#: assumed clock of ``--clock-mhz``.
CLOCKS = ("estimate", "assumed")
#: What a point keeps least of among the designs of its II (``--least``).
LEAST = ("resources", "multipliers")

__all__ = ["explore", "load_workload", "DEFAULT_FORMATS", "CLOCKS", "LEAST"]

DEFAULT_FORMATS = ("int8", "int4", "dybit4")
#: Random mixed assignments measured on the evaluation set to check the predictor beyond the front.
HOLDOUT = 12


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
    if any(layer.formats for layer in w.layers):
        # an imported model keeps its own formats: nothing to measure a drop against
        own = {layer.name: layer.formats[0] for layer in w.layers}
        if log:
            log(f"formats fixed by the model ({', '.join(sorted(set(own.values())))}); the DSE "
                "chooses parallelism only")
        base = bundle.evaluate(own, split="sens")
        metric = accuracy.metric_name(base)
        sens = accuracy.Sensitivity(model=bundle.name, metric=metric, reference="int8",
                                    base=float(base[metric]),
                                    drops={k: {f: 0.0} for k, f in own.items()}, split="sens",
                                    n=int(base.get("n", 0)))
        return w, sens, bundle
    # keyed by the checkpoint's content and the quantizer version: a retrained model or a change
    # in how weights are quantized must not reuse old drops
    from common.digest import file_digest
    from models.quant import QUANT_VERSION

    tag = (f"{file_digest(bundle.checkpoint)[:12]}-q{QUANT_VERSION}"
           f"-p{accuracy.PREDICTOR_VERSION}")
    cache = bundle.checkpoint.parent / f"dse_sensitivity-{tag}.json"
    if log:
        log(f"sensitivity of {len(w)} layers x {len(formats)} formats on the held-out 'sens' "
            f"set, the predictor's calibration points on 'eval' (cached in {cache})")
    sens = accuracy.load_or_measure(bundle, formats, cache, split="sens", calib_split="eval",
                                    progress=log)
    return w, sens, bundle


def with_layer_formats(w, formats) -> list[str]:
    """``formats``, or the workload's own when its layers keep theirs (an imported model)."""
    own = [f for layer in w.layers for f in layer.formats]
    return list(dict.fromkeys(own)) if own else list(formats)


def plot_front(path, df, refs, *, title: str, budget_text: str, clock_mhz: float,
               chosen: int | None = None, estimated: bool = False) -> None:
    """The front a user reads: latency (linear, microseconds at ``clock_mhz``; cycles on the top
    axis) against accuracy in percent; each point's predicted accuracy (filled) and measured one
    (cross) joined by a line, so the gap shows; the reference designs (``refs``, the rows of
    ``references.csv``) on the same axes; ``chosen`` ringed. ``estimated``: the latency at each
    design's own estimated Fmax (``latency_us_at_fmax_est``), no cycles axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    estimated = estimated and "latency_us_at_fmax_est" in df

    def us(t):  # a table's latency in us, at each design's estimated clock or the assumed one
        if estimated:
            return t["latency_us_at_fmax_est"].to_numpy(dtype=float)
        return t["latency_cycles"].to_numpy(dtype=float) / clock_mhz

    x = us(df)
    pred = 100 * df["accuracy_pred"].to_numpy(dtype=float)
    meas = 100 * df.get("accuracy_measured", np.full(len(df), np.nan)).to_numpy(dtype=float)
    ax.plot(x, pred, "o-", color="tab:blue", label="predicted", zorder=3)
    if np.isfinite(meas).any():
        ax.plot(x, meas, "x", color="tab:red", markersize=8, mew=2, label="measured", zorder=4)
        for xi, p, m in zip(x, pred, meas, strict=True):
            if np.isfinite(m):
                ax.plot([xi, xi], [p, m], color="tab:red", alpha=0.5, lw=1.2)
    tuned = 100 * np.asarray(df["accuracy_finetuned"] if "accuracy_finetuned" in df
                             else np.full(len(df), np.nan), dtype=float)
    if np.isfinite(tuned).any():
        ax.plot(x, tuned, "P", color="tab:purple", markersize=8, label="measured after QAT "
                "fine-tune", zorder=4)
    for k, (xi, p) in enumerate(zip(x, pred, strict=True)):
        r = df.iloc[k]
        ax.annotate(f"{int(r['point'])}", (xi, p), textcoords="offset points", xytext=(5, 4),
                    fontsize=8)
    styles = {"int8": ("s", "black"), "greedy": ("^", "tab:gray")}
    ref_x = us(refs) if refs is not None and len(refs) else []
    for (_, r), rx in zip(refs.iterrows() if refs is not None else (), ref_x, strict=True):
        marker, color = styles.get(r["design"], ("D", "tab:green"))
        acc = r["accuracy_measured"] if np.isfinite(r["accuracy_measured"]) else \
            r["accuracy_pred"]
        ax.plot(rx, 100 * acc, marker, color=color, markersize=8,
                label=f"{r['label']}: II {int(r['ii_cycles']):,}, {int(r['dsp'])} DSP",
                zorder=2)
    if chosen is not None and chosen in set(df["point"]):
        k = int(np.flatnonzero(df["point"].to_numpy() == chosen)[0])
        ax.plot(x[k], pred[k], "o", ms=16, mfc="none", mec="tab:orange", mew=2,
                label=f"chosen: point {chosen}", zorder=5)
    ax.set_xlabel("latency of one frame [us] at each design's estimated Fmax" if estimated
                  else f"latency of one frame [us] at {clock_mhz:g} MHz")
    ax.set_ylabel("accuracy [%]")
    ys = [pred, meas, tuned]
    if refs is not None and len(refs):
        ys += [100 * refs["accuracy_pred"].to_numpy(dtype=float),
               100 * refs["accuracy_measured"].to_numpy(dtype=float)]
    ys = np.concatenate(ys)
    lo = np.nanmin(ys) if np.isfinite(ys).any() else 0
    hi = np.nanmax(ys) if np.isfinite(ys).any() else 100
    pad = max(0.5, 0.15 * (hi - lo))
    ax.set_ylim(lo - pad, hi + pad)  # a prediction above 100 % shows (and says what it is)
    ax.set_xlim(left=0)
    if not estimated:  # one clock: cycles on the top axis
        top = ax.secondary_xaxis("top", functions=(lambda t: t * clock_mhz,
                                                   lambda c: c / clock_mhz))
        top.set_xlabel("latency [cycles]")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best", framealpha=0.85)
    ax.set_title(f"{title}\n{budget_text}", fontsize=9)
    fig.tight_layout()
    write_png(path, fig, dpi=120)


def _point(model_name: str, w, sol, row, *, clock_mhz: float, budget, objective: str) -> dict:
    from contract.point import DesignPoint

    layers = []
    for layer, ch, cost, drop in zip(w.layers, sol.choices, sol.costs, sol.drops, strict=True):
        pred = {"pred_cycles": cost.cycles, "pred_fill": cost.fill, "pred_dsp": cost.dsp,
                "pred_lut": cost.lut, "pred_ff": cost.ff, "pred_bram18": cost.bram18,
                "pred_acc_drop": round(drop, 6)}
        layers.append(ch.named(layer.name, **pred))  # every field of the choice, named
    point = DesignPoint(model=model_name, layers=tuple(layers), clock_mhz=clock_mhz)
    d = point.to_dict()
    d["dse"] = {
        "point": int(row["point"]), "device": budget.device, "util": budget.util,
        "objective": objective, "accuracy_pred": float(row["accuracy_pred"]),
        "acc_drop": float(row["acc_drop"]), "ii_cycles": sol.ii,
        "latency_cycles": sol.reported_latency,
        "fps": float(row["fps"]), "dsp": sol.dsp, "lut": sol.lut, "ff": sol.ff,
        "bram18": sol.bram18, "converters": sol.converters, "budget": budget.to_dict(),
    }
    return d


def explore(model: str, device: str, *, out, util: float = 0.8, formats=DEFAULT_FORMATS,
            clock_mhz: float = 200.0, points: int = 10, objective: str = "ii",
            frames: int = 32, time_limit: float | None = 20.0, max_par: int = 64,
            activity: str = "mean", check: int | None = None, finetune: int = 0,
            clock: str = "estimate", least: str = "resources", log=None):
    """Run the design-space exploration and write its files; returns the front DataFrame.

    ``clock="estimate"``: each design runs at its own estimated Fmax (:mod:`dse.fmax`, the
    device family's fitted model) and the front minimises time (cycles x estimated clock
    period); ``"assumed"``: every design runs at ``clock_mhz`` and the front minimises
    cycles. A family without a fitted model falls back to ``"assumed"`` (logged).

    ``least="resources"``: among the designs of a point's II (and time), the program's and then
    the one :func:`dse.ilp.trim` frees resources from; ``"multipliers"``: then the one with the
    fewest multipliers (:func:`dse.ilp.fewest_multipliers`), the most MAC utilisation, at some
    LUTs and FFs within the budget."""
    out = Path(out)
    budget = devices.budget(device, util)
    formats = _formats(formats)
    if objective not in OBJECTIVES[:2]:
        raise CodesignError(f"--objective must be ii or latency, not {objective!r}")
    if not isinstance(points, int) or points < 1:
        raise CodesignError(f"--points must be a positive integer, not {points!r}")
    if not clock_mhz > 0:
        raise CodesignError(f"--clock-mhz must be positive, not {clock_mhz!r}")
    if not isinstance(finetune, int) or finetune < 0:
        raise CodesignError(f"--finetune must be a non-negative integer, not {finetune!r}")
    if clock not in CLOCKS:
        raise CodesignError(f"--clock must be one of {', '.join(CLOCKS)}, not {clock!r}")
    if least not in LEAST:
        raise CodesignError(f"--least must be one of {', '.join(LEAST)}, not {least!r}")
    rmodel = for_budget(budget)
    # measured on ECP5 (nextpnr), an estimate of an estimate on Xilinx parts (no placer)
    fmodel = fmax.fmax_model(family=budget.family)
    timed = clock == "estimate" and fmodel is not None
    if clock == "estimate" and fmodel is None and log:
        log(f"no Fmax model for the {budget.family} family: the front counts cycles at "
            f"{clock_mhz:g} MHz")

    def fits(w):
        """Even the cheapest choice of every layer must fit the budget (resources only: the
        drops do not matter here, so placeholder ones stand in for the sensitivity)."""
        fmts = with_layer_formats(w, formats)
        cands, _ = pareto.price(w, fmts, accuracy.synthetic_sensitivity(w, fmts),
                                model=rmodel, activity=activity, max_lanes=max_par,
                                max_pe=max_par)
        try:
            ilp.check_budget(pareto.make_problem(w, cands, budget, objective=objective,
                                                 model=rmodel))
        except ilp.Infeasible as exc:
            raise CodesignError(f"{exc}; raise --util, choose a larger device or allow cheaper "
                                "formats") from None

    w, sens, bundle = load_workload(model, formats, frames=frames, log=log, precheck=fits)
    if finetune and (bundle is None or any(layer.formats for layer in w.layers)):
        raise CodesignError("--finetune needs a trained model whose formats the DSE chooses (a "
                            "synthetic workload has no weights; an imported QONNX model keeps "
                            "its own quantizers)")
    formats = with_layer_formats(w, formats)
    by_clock = fmodel if timed else None
    cands, table = pareto.price(w, formats, sens, model=rmodel, activity=activity,
                                max_lanes=max_par, max_pe=max_par, fmax_model=by_clock)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "choices.csv") as tmp:
        table.to_csv(tmp, index=False)
    write_text(out / "workload.json", w.to_json() + "\n")
    write_json(out / "sensitivity.json", sens.to_dict())
    write_json(out / "budget.json", {**budget.to_dict(), "resource_model": rmodel.status,
                                     "resource_model_provenance": rmodel.provenance})
    finer = pareto.pool(w, formats, sens, model=rmodel, activity=activity, max_lanes=max_par,
                        max_pe=max_par, fmax_model=by_clock)
    # a design's routing derate grows with the share of the part's LUTs it fills
    device_lut = devices.device(budget.device).lut
    problem = pareto.make_problem(w, cands, budget, objective=objective, model=rmodel,
                                  pool=finer, timed=timed,
                                  routing=fmax.lut_routing(fmodel, device_lut) if timed else ())
    if log and timed:
        fam = fmodel.get("family", budget.family)
        log(f"the front counts time at each design's estimated Fmax ({fam} model): "
            f"{len(ilp.clock_levels(problem))} clock levels among the candidates")
    spacing = (sens.drop_of, sens.cost_of) if sens.uses_noise else None
    t_front = time.perf_counter()
    fixed = any(layer.formats for layer in w.layers)
    names = [layer.name for layer in w.layers]
    guided = bundle is not None and not fixed
    superposition = sens.predictor == "superposition"
    predicted: dict = {}

    def predict(formats):
        k = tuple(formats.values())
        if k not in predicted:
            predicted[k] = sens.point_drop(formats, bundle)
        return predicted[k]

    def search(prob):
        """The designs one objective's searches find: the sweep's accuracy bounds, the most
        accurate design at each II level and, for a trained model, the paths back to
        all-reference; returns ``(rows, found, levels, path designs)``."""
        what = "time" if prob.timed else "cycles"
        t0 = time.perf_counter()

        def progress(msg):  # each search's stage, so a long front is not a silent one
            if log:
                log(f"front ({what}): {msg} ({time.perf_counter() - t0:.0f} s)")

        front, rows, _ = pareto.timed_sweep(prob, points=points, time_limit=time_limit, log=log,
                                            spacing=spacing)
        progress(f"{len(rows)} designs at the accuracy bounds")
        levels = [front[0][1].ii] if front else []
        if points > 1 and front:
            # every II level between the fastest and the most accurate design, each with its
            # most accurate design: the accuracy bounds, even in drop, jump over some
            levels = pareto.ii_levels(prob, min(sol.ii for _, sol in rows),
                                      max(sol.ii for _, sol in rows))
            rows += pareto.by_level(prob, levels[0], levels[-1], time_limit=time_limit,
                                    log=log)
            front = pareto.non_dominated(rows, prob)
            progress(f"the most accurate design at each of {len(levels)} II levels")
        if not guided or not front:
            return rows, list(rows), levels, 0
        # the accuracy bounds jump over II levels, and the program's linear model is blind
        # where layers cost accuracy only together: walk from the fastest point back to
        # all-reference, one layer at a time (the most predicted accuracy per cycle; and, under
        # the superposition, as the predictor ranks them), and keep what is non-dominated
        path = pareto.toward_reference(prob, front[0][1], predict, sens.reference,
                                       per_cycle=True, time_limit=time_limit, log=log)
        progress(f"{len(path)} designs on the path to all-{sens.reference} by accuracy per "
                 "cycle")
        if superposition:
            path += pareto.toward_reference(prob, front[0][1], predict, sens.reference,
                                            time_limit=time_limit, log=log)
            progress(f"{len(path)} designs on both paths to all-{sens.reference}")
        found = rows + [(None, sol) for sol in path]
        if superposition:
            # at each II level, the best design found so far, improved one layer's format at a
            # time under the predictor while it stays at the level
            solved: dict = {}
            at_levels = sorted(set(levels) | {sol.ii for _, sol in found})
            for i, v in enumerate(at_levels):
                if i % 8 == 0:
                    progress(f"improving the best design at II level {i + 1} of "
                             f"{len(at_levels)} one layer at a time")
                start = min((s for _, s in found if s.ii <= v),
                            key=lambda s: predict(pareto._formats_of(prob, s)))
                found.append((None, pareto.best_at_level(prob, start, v, predict,
                                                         time_limit=time_limit, log=log,
                                                         solved=solved)))
        return rows, found, levels, len(path)

    # In time, the cycles objective's searches run too, and the front is the non-dominated
    # designs of both: every point of the cycles front is then on the time front or beaten by
    # one of its points in both time and accuracy (before either is thinned to ``points``).
    # (The searches step along II levels, so alone in time they can miss the most accurate
    # mixes the cycles search finds.)
    rows, found, levels, n_path = [], [], set(), 0
    for prob in [problem] + ([replace(problem, timed=False)] if timed else []):
        r, f, lv, n = search(prob)
        rows, found, levels, n_path = rows + r, found + f, levels | set(lv), n_path + n
    levels = sorted(levels)
    point_drops = None  # each front point's drop by the superposition, when it predicts them
    if guided and found:
        front, drops = pareto.front_by(problem, found, predict)
        point_drops = drops if superposition else None
        if log:
            log(f"{n_path} designs on the paths from the fastest point to all-"
                f"{sens.reference}, ranked by the {sens.predictor} predictor; {len(front)} "
                "non-dominated points in all")
    else:
        front = pareto.non_dominated(rows, problem)
    seconds = time.perf_counter() - t_front
    if len(front) > points:
        kept = pareto.thin(front, points)
        if log:
            log(f"{len(front)} non-dominated points, more than the {points} asked for: "
                f"{points} kept, spread evenly from the fastest to the most accurate")
        front = [front[i] for i in kept]
        point_drops = None if point_drops is None else [point_drops[i] for i in kept]
    if least == "multipliers" and front:
        before = [sol.multipliers for _, sol in front]
        front = [(d, ilp.fewest_multipliers(problem, sol, time_limit=time_limit))
                 for d, sol in front]
        if log:
            moved = sum(sol.multipliers < b for (_, sol), b in zip(front, before, strict=True))
            log(f"fewest multipliers at each point's II: {moved} of {len(front)} points "
                f"changed, {sum(before):,} -> {sum(sol.multipliers for _, sol in front):,} "
                "multipliers in all")
    base, n_eval = sens.base, 0
    if bundle is not None:
        # predictions are anchored on the reference design measured on the evaluation set, so
        # predicted and measured accuracy of a point differ only by the predicted drop's error
        ref = {layer.name: (layer.formats[0] if fixed else sens.reference) for layer in w.layers}
        got = bundle.evaluate(ref, split="eval")
        base, n_eval = float(got[sens.metric]), int(got.get("n", 0))
    df = pareto.solutions_frame(front, base=base, clock_mhz=clock_mhz, to_drop=sens.drop_of)
    # the products a cycle the point's blocks compute (a packed DSP counts two, a LUT multiplier
    # or shift-add unit one): what --least multipliers keeps fewest of
    df["multipliers"] = [sol.multipliers for _, sol in front]
    if point_drops is not None:
        # a point's predicted accuracy from the better (non-linear) model; the program's own
        # linear prediction stays beside it
        df["accuracy_pred_ilp"] = df["accuracy_pred"]
        df["acc_drop"] = point_drops
        df["accuracy_pred"] = [base - d for d in point_drops]
    # at the routing derate the program's own time counts (at the design's share of the part's
    # LUTs): the front is non-dominated in that time, so its estimate must be the same
    fmax_of = (lambda sol: fmax.design_fmax_mhz(w.layers, sol.choices, fmodel,
                                                lut_share=sol.lut / device_lut)) if fmodel \
        else None
    if fmodel:
        # the clock each point is estimated to reach (dse/fmax.py), and its time at that clock
        est = [fmax_of(sol) for _, sol in front]
        df["fmax_est_mhz"] = [round(f, 1) for f in est]
        df["latency_us_at_fmax_est"] = [round(lat / f, 2)
                                        for lat, f in zip(df["latency_cycles"], est, strict=True)]
        df["fps_at_fmax_est"] = [f * 1e6 / ii for ii, f in zip(df["ii_cycles"], est, strict=True)]
    refs = references(problem, sens, base=base, clock_mhz=clock_mhz, time_limit=time_limit,
                      fmax_of=fmax_of)
    name = getattr(w, "name", str(model))
    model_ref = str(model)
    for old in out.glob("point_*.json"):
        old.unlink()
    for (_, sol), (_, row) in zip(front, df.iterrows(), strict=True):
        pt = _point(model_ref, w, sol, row, clock_mhz=clock_mhz, budget=budget,
                    objective=objective)
        if "fmax_est_mhz" in row:
            pt["dse"]["fmax_est_mhz"] = float(row["fmax_est_mhz"])
        write_json(out / f"point_{int(row['point'])}.json", pt)
    df["accuracy_measured"] = float("nan")
    check = len(df) if check is None else check
    if bundle is not None and check > 0 and len(df):
        # Measure points spread over the front (always both ends; every one by default).
        k = min(check, len(df))
        picks = sorted({round(i * (len(df) - 1) / max(k - 1, 1)) for i in range(k)})
        assignments = [{layer.name: c.format for layer, c in zip(w.layers, front[i][1].choices,
                                                                  strict=True)} for i in picks]
        chk = accuracy.check_predictions(bundle, sens, assignments, split="eval", base=base)
        chk.insert(0, "point", picks)
        df.loc[picks, "accuracy_measured"] = chk["measured"].to_numpy()
        with atomic_path(out / "accuracy_check.csv") as tmp:
            chk.to_csv(tmp, index=False)
        held = None
        if not fixed and len(formats) > 1:
            # random mixed assignments of another seed than the calibration's: held-out design
            # points spread over the whole range of drops, not only the front's
            mixes = accuracy.calibration_assignments(names, formats, sens.reference, HOLDOUT,
                                                     seed=1)
            mixes = mixes[sum(f != sens.reference for f in formats):]
            held = accuracy.check_predictions(bundle, sens, mixes, split="eval", base=base)
            with atomic_path(out / "accuracy_holdout.csv") as tmp:
                held.to_csv(tmp, index=False)
        summary = predictor_summary(sens, chk, held, n_eval=n_eval, fixed=fixed)
        write_json(out / "predictor.json", summary)
        if log:
            log(predictor_line(summary))
    # a point breaks its bound when its measured drop from the reference (all-int8) exceeds the
    # drop it was solved for; a negative bound (a predicted gain) counts as no drop
    bound = base - df["max_drop"].astype(float).fillna(float("inf")).clip(lower=0.0)
    df["bound_ok"] = ~(df["accuracy_measured"] < bound - 1e-12)
    if bundle is not None and len(refs):
        refs["accuracy_measured"] = [
            float(bundle.evaluate(dict(zip(names, f.split("/"), strict=True)),
                                  split="eval")[sens.metric])
            for f in refs["formats"]]
    if finetune:
        _finetune_front(bundle, w, front, df, epochs=finetune, metric=sens.metric,
                        out=out / "finetuned", log=log)
    with atomic_path(out / "pareto.csv") as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(out / "references.csv") as tmp:
        refs.to_csv(tmp, index=False)
    note = fewer_points_note(points, len(df), fixed=fixed, levels=levels)
    write_json(out / "front.json", {"asked": points, "points": len(df), "ii_levels": levels,
                                    "clock": "estimate" if timed else "assumed",
                                    "note": note})
    sizes = (f"{sens.metric}: predicted from {sens.n:,} 'sens' samples, measured on "
             f"{n_eval:,} 'eval' samples" if bundle is not None else sens.metric)
    plot_front(out / "pareto.png", df, refs,
               title=f"{name}: {len(df)} Pareto points (formats {','.join(formats)})\n{sizes}",
               budget_text=f"budget: {budget.describe()}", clock_mhz=clock_mhz,
               estimated=timed)
    if log:
        log(f"front searched in {seconds:.1f} s ({len(rows)} accuracy bounds and II levels "
            f"solved, {len(levels)} II levels), {len(df)} non-dominated points")
        if note:
            log(note)
        broken = df.loc[~df["bound_ok"], "point"].tolist()
        if broken:
            log(f"warning: measured accuracy breaks the bound of point(s) "
                f"{', '.join(map(str, broken))} (see pareto.csv bound_ok)")
    return df


def _finetune_front(bundle, w, front, df, *, epochs: int, metric: str, out: Path,
                    log=None) -> None:
    """Fine-tune every front point (:func:`models.train.finetune`) into ``out/point_<k>`` and add
    its measured accuracy after, and its gain over ``accuracy_measured``, to ``df``."""
    import math
    import shutil

    from models.train import finetune

    if out.exists():
        shutil.rmtree(out)
    after, gain = [], []
    for (_, sol), (_, row) in zip(front, df.iterrows(), strict=True):
        k = int(row["point"])
        formats = {layer.name: c.format for layer, c in zip(w.layers, sol.choices, strict=True)}
        measured = float(row["accuracy_measured"])
        res = finetune(bundle, formats, epochs=epochs, metric=metric, out_dir=out / f"point_{k}",
                       before=None if math.isnan(measured) else measured)
        after.append(res["after"])
        gain.append(res["gain"])
        if log:
            log(f"point {k}: {epochs} epoch(s) of QAT in its formats: {100 * res['before']:.2f} "
                f"-> {100 * res['after']:.2f} % on {res['n']:,} eval samples "
                f"({100 * res['gain']:+.2f} points); weights in {out / f'point_{k}'}")
    df["accuracy_finetuned"] = after
    df["finetune_gain"] = gain


def fewer_points_note(asked: int, distinct: int, *, fixed: bool = False, levels=()) -> str:
    """One sentence when the front has fewer points than asked, and why ('' otherwise).

    ``levels``: every initiation interval a design can have between the fastest design and the
    most accurate one (the candidates' cycle counts in that range, :func:`dse.pareto.by_level`);
    the DSE looked for the most accurate design at each."""
    if distinct >= asked:
        return ""
    if fixed:
        return (f"{distinct} of the {asked} points asked for exist: the model fixes every "
                "layer's format (an imported QONNX model keeps its quantizers), so there is one "
                "accuracy and the DSE gives the fastest design that fits")
    head = f"{distinct} of the {asked} points asked for exist: "
    if levels and (len(levels) == 1 or distinct == 1):
        return head + (f"the fastest design that fits ({levels[0]:,} cycles) is already the "
                       "most accurate: no slower design is predicted more accurate")
    if levels:
        span = (f"({', '.join(f'{v:,}' for v in levels)} cycles)" if len(levels) <= asked
                else f"from {levels[0]:,} to {levels[-1]:,} cycles")
        rest = ("each has one most accurate design" if len(levels) <= distinct else
                "at the others the most accurate design found is no more accurate than a "
                "faster one")
        return head + (f"the candidates allow {len(levels)} initiation intervals between the "
                       f"fastest design and the most accurate one {span}, and {rest}")
    return head + ("the accuracy bounds chose the same formats, or a design was slower and no "
                   "more accurate than another")


def predictor_summary(sens, chk, held=None, *, n_eval: int, fixed: bool = False) -> dict:
    """What ``predictor.json`` holds: the held-out set sizes, the predictor in use, its
    calibration fit, and its error on held-out design points (those the calibration never saw:
    the measured front points other than the all-reference one, whose error is 0 by construction,
    and the calibration points, predicted by their measurement; and the random ``held`` mixes),
    next to the additive predictor's on the same points."""
    import pandas as pd

    def seen(frame):
        # the all-reference design (error 0 by construction) and the calibration points (their
        # prediction is their measurement): not held out
        def one(f):
            a = dict(kv.split("=", 1) for kv in f.split(","))
            return all(v == sens.reference for v in a.values()) \
                or sens.measured_drop(a) is not None
        return frame["formats"].map(one).astype(bool) if len(frame) else frame["formats"].isna()

    ref_only = seen(chk)
    held = held[~seen(held)] if held is not None else None
    parts = [chk[~ref_only]] + ([held] if held is not None else [])
    pts = pd.concat(parts) if any(len(x) for x in parts) else chk.iloc[:0]
    err, add = pts["error"].abs(), pts["error_additive"].abs()
    lin = (pts["predicted_ilp"] - pts["measured"]).abs() if "predicted_ilp" in pts else err
    return {
        "metric": sens.metric, "sens_samples": sens.n, "eval_samples": n_eval,
        "one_sample_points": round(100.0 / n_eval, 4) if n_eval else None,
        "predictor": "fixed formats" if fixed else (sens.fit or {}).get("use", "additive"),
        "fit": sens.fit, "calibration_points": len(sens.calibration),
        "held_out_points": int(len(pts)), "front_points": int((~ref_only).sum()),
        "front_points_seen": int(ref_only.sum()),
        "random_points": 0 if held is None else int(len(held)),
        # no held-out point, no error: None (null), not a 0 that reads as a perfect predictor
        "mae": float(err.mean()) if len(pts) else None,
        "max_error": float(err.max()) if len(pts) else None,
        "mae_additive": float(add.mean()) if len(pts) else None,
        "max_error_additive": float(add.max()) if len(pts) else None,
        "predictor_ilp": "fixed formats" if fixed else sens.ilp_model,
        "mae_ilp": float(lin.mean()) if len(pts) else None,
        "max_error_ilp": float(lin.max()) if len(pts) else None,
    }


def predictor_line(summary: dict) -> str:
    pts = 100.0
    if not summary["held_out_points"]:
        return (f"predictor ({summary['predictor']}) not checked: no held-out design point "
                "(every front point was measured before, as the all-int8 design or a "
                "calibration design, and no random mix was asked for)")
    return (f"predictor ({summary['predictor']}) on {summary['held_out_points']} held-out design "
            f"points ({summary['front_points']} of the front, {summary['random_points']} random) "
            f"measured on {summary['eval_samples']:,} eval samples: mean |error| "
            f"{pts * summary['mae']:.2f} points, worst {pts * summary['max_error']:.2f} "
            + (f"(the program's linear model, {summary['predictor_ilp']}: "
               f"{pts * summary['mae_ilp']:.2f}, worst {pts * summary['max_error_ilp']:.2f}; "
               if summary.get("predictor_ilp") not in (None, summary["predictor"]) else "(")
            + f"additive predictor: {pts * summary['mae_additive']:.2f}, worst "
            f"{pts * summary['max_error_additive']:.2f})"
            + (f"; {summary['front_points_seen']} front point(s) measured before (all-int8 or a "
               "calibration design: predicted by that measurement) not counted"
               if summary.get("front_points_seen") else ""))


def references(problem, sens, *, base: float, clock_mhz: float, time_limit, fmax_of=None):
    """The all-int8 design (the program restricted to int8) and the greedy folding design (FINN's
    way: raise the bottleneck layer's parallelism while the budget allows, int8), as rows with
    the front's figures (with ``fmax_of(solution)``, its estimated Fmax and the time at it);
    none when int8 is not among the formats or does not fit."""
    import pandas as pd

    from .greedy import greedy_folding

    rows = []
    only = tuple(tuple(c for c in cands if c.choice.format == "int8")
                 for cands in problem.candidates)
    if all(only):
        # the same problem (rows, pool, stream widths) restricted to int8 and unbounded in drop
        p8 = replace(problem, candidates=only, max_drop=None,
                     pool=tuple(tuple(c for c in cands if c.choice.format == "int8")
                                for cands in problem.pool))
        found = []
        try:
            found.append(("int8", "all-int8 (ILP)",
                          ilp.optimise(p8, time_limit=time_limit)))
        except CodesignError:
            pass
        g = greedy_folding(problem, "int8")
        if g is not None:
            found.append(("greedy", "greedy folding (FINN-style, int8)", g))
        for design, label, sol in found:
            rows.append({"design": design, "label": label,
                         "accuracy_pred": base - sens.drop_of(sol.drop),
                         "accuracy_measured": float("nan"), "ii_cycles": sol.ii,
                         "latency_cycles": sol.reported_latency,
                         "fps": clock_mhz * 1e6 / sol.ii,
                         "latency_us": sol.reported_latency / clock_mhz, "dsp": sol.dsp,
                         "lut": sol.lut,
                         "ff": sol.ff, "bram18": sol.bram18,
                         "formats": "/".join(c.format for c in sol.choices)})
            if fmax_of:
                f = fmax_of(sol)
                rows[-1].update(fmax_est_mhz=round(f, 1),
                                latency_us_at_fmax_est=round(sol.reported_latency / f, 2))
    cols = ["design", "label", "accuracy_pred", "accuracy_measured", "ii_cycles",
            "latency_cycles", "fps", "latency_us", "dsp", "lut", "ff", "bram18", "formats"]
    if fmax_of:
        cols += ["fmax_est_mhz", "latency_us_at_fmax_est"]
    return pd.DataFrame(rows, columns=cols)
