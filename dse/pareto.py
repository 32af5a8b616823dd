"""Latency-accuracy Pareto fronts: price every candidate, sweep the accuracy bound, keep the front.

:func:`price` turns a workload, formats and a sensitivity table into per-layer candidate lists
(and the ``choices.csv`` table); :func:`make_problem` wraps them with a budget; :func:`sweep`
solves the program for ``points`` accuracy bounds between the most accurate and the fastest design
and returns the non-dominated points as a pandas DataFrame.

The sweep runs from the tightest bound to the loosest: each point is feasible for the next bound,
so its II bounds the next program from above (slower candidates are pruned), and the unbounded
optimum bounds every II from below.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace

import pandas as pd

from . import fmax
from .accuracy import Sensitivity
from .cost import ResourceModel, candidates, converter_coefficients, layer_cost, multipliers
from .devices import Budget
from .ilp import (
    DEFAULT_TIME_LIMIT,
    Candidate,
    Infeasible,
    Problem,
    Solution,
    SolverTimeout,
    optimise,
)
from .latency import layer_timing, rows_of
from .workload import Workload

__all__ = ["price", "pool", "make_problem", "sweep", "non_dominated", "solutions_frame",
           "FRONT_COLUMNS", "toward_reference", "front_by", "ii_levels", "by_level",
           "best_at_level", "thin"]

#: Columns of the front table (pareto.csv), in order.
FRONT_COLUMNS = (
    "point", "accuracy_pred", "acc_drop", "max_drop", "acc_cost", "ii_cycles", "latency_cycles",
    "fps", "latency_us", "dsp", "lut", "ff", "bram18", "converters", "formats", "format_counts",
    "solve_seconds", "proven",
)


def price(workload: Workload, formats, sens: Sensitivity, *, model: ResourceModel | None = None,
          activity: str = "mean", max_lanes: int = 64, max_pe: int = 64, count: int = 6,
          fmax_model: dict | None = None):
    """Candidates per layer and the table of all of them (``choices.csv``). With ``fmax_model``
    (:func:`dse.fmax.fmax_model`), each candidate carries its estimated delay
    (:func:`dse.fmax.choice_delay_ns`, column ``delay_ns``)."""
    per_layer = []
    rows = []
    for layer in workload.layers:
        cands = []
        for ch in candidates(layer, formats, max_lanes=max_lanes, max_pe=max_pe, count=count,
                             model=model):
            cost = layer_cost(layer, ch, model=model, activity=activity)
            acc_cost = sens.coefficient(layer.name, ch.format)
            delay = fmax.choice_delay_ns(layer, ch, fmax_model) if fmax_model else 0.0
            cands.append(Candidate(ch, cost, acc_cost, delay_ns=delay,
                                   timing=layer_timing(layer, ch),
                                   multipliers=multipliers(layer, ch)))
            rows.append({"layer": layer.name, "kind": layer.kind, "format": ch.format,
                         "lanes": ch.lanes, "pe": ch.pe, "datapath": ch.datapath,
                         "kfold": ch.kfold,
                         "cycles": cost.cycles, "fill": cost.fill,
                         "dsp": cost.dsp, "lut": cost.lut, "ff": cost.ff, "bram18": cost.bram18,
                         "acc_drop": sens.drop(layer.name, ch.format), "acc_cost": acc_cost,
                         **({"delay_ns": round(delay, 3)} if fmax_model else {})})
        per_layer.append(tuple(cands))
    return tuple(per_layer), pd.DataFrame(rows)


def pool(workload: Workload, formats, sens: Sensitivity, *, model: ResourceModel | None = None,
         activity: str = "mean", max_lanes: int = 64, max_pe: int = 64,
         fmax_model: dict | None = None):
    """Per layer, the candidates over every divisor of its channel counts (no thinning): what
    :func:`dse.ilp.trim` may move a solved point to (:attr:`dse.problem.Problem.pool`). Pricing
    them is cheap (0.2 s for SEE-D's 8,600); solving over them is not, so the program keeps
    :func:`price`'s thinned grid."""
    cands, _ = price(workload, formats, sens, model=model, activity=activity,
                     max_lanes=max_lanes, max_pe=max_pe, count=1 << 30, fmax_model=fmax_model)
    return cands


def make_problem(workload: Workload, cands, budget: Budget, *, max_drop=None,
                 objective: str = "ii", model: ResourceModel | None = None,
                 pool=(), timed: bool = False, routing: tuple = ()) -> Problem:
    pos = {layer.name: i for i, layer in enumerate(workload.layers)}
    rows = tuple(rows_of(layer, tuple(pos[p] for p in layer.producers))
                 for layer in workload.layers)
    # the streams the composer may convert: into each layer, and into a residual add as its
    # later input (to the add's width, its first input's: once, not per consumer of the add)
    conv = workload.converter_edges()
    return Problem(names=tuple(layer.name for layer in workload.layers), candidates=tuple(cands),
                   edges=tuple((p, c) for p, c, _, _ in conv), budget=budget,
                   max_drop=max_drop, objective=objective,
                   converter=converter_coefficients(model), rows=rows,
                   edge_bits=tuple(bits for *_, bits in conv),
                   edge_to_pe=tuple(j for _, _, j, _ in conv),
                   pool=tuple(pool), timed=timed, routing=tuple(routing))


def sweep(problem: Problem, *, points: int = 10, time_limit: float | None = None,
          time_budget: float | None = None, log=None,
          spacing=None) -> list[tuple[float | None, Solution]]:
    """Solve for ``points`` accuracy bounds; return ``(bound, solution)`` of every solved bound.

    Bounds are on the candidates' summed accuracy cost (``Candidate.drop``). ``spacing``, a pair
    ``(to_drop, to_cost)`` of monotone maps (:meth:`dse.accuracy.Sensitivity.drop_of` and
    ``cost_of``), spaces them evenly in predicted drop rather than in cost.

    Every solve is bounded by ``time_limit`` seconds (default
    :data:`dse.ilp.DEFAULT_TIME_LIMIT`); a solve that reaches it keeps its best point, marked
    ``proven=False``, and ``log`` says so. ``time_budget`` bounds the whole sweep: later solves
    get what remains, and bounds not reached are skipped (logged).

    Raises :class:`Infeasible` (naming the resource) if not even the fastest design fits.
    """
    if points < 1:
        raise ValueError(f"points must be >= 1, not {points}")
    limit = DEFAULT_TIME_LIMIT if time_limit is None else time_limit
    t_start = time.perf_counter()

    def remaining():
        if time_budget is None:
            return limit
        return min(limit, time_budget - (time.perf_counter() - t_start))

    def note(what, sol):
        if log and not sol.proven:
            log(f"{what}: CBC time limit ({limit:g} s) reached; the point is the best found, "
                "not proven optimal")
        return sol

    fastest = note("fastest point", optimise(problem, time_limit=limit))
    d_hi = fastest.drop
    if points == 1:
        return [(problem.max_drop, fastest)]
    # The most accurate design that fits: tighter bounds would only prove infeasibility (slowly).
    try:
        d_lo = note("most accurate point", optimise(replace(problem, objective="drop"),
                                                    time_limit=max(remaining(), 1.0))).drop
    except SolverTimeout as exc:
        # the sweep only needs a lower end: every layer at its least-drop choice
        d_lo = sum(min(c.drop for c in cs) for cs in problem.candidates)
        if log:
            log(f"most accurate point: {exc}; sweeping from the bound {d_lo:.4f}")
    if d_hi <= d_lo + 1e-12:
        return [(problem.max_drop, fastest)]
    if spacing is None:
        bounds = [d_lo + (d_hi - d_lo) * k / (points - 1) for k in range(points - 1)]
    else:
        to_drop, to_cost = spacing
        p_lo, p_hi = to_drop(d_lo), to_drop(d_hi)
        bounds = [max(d_lo, to_cost(p_lo + (p_hi - p_lo) * k / (points - 1)))
                  for k in range(points - 1)]
    # the fastest point's II bounds every other's from below; in time, not in cycles
    lower = fastest.ii if problem.objective == "ii" and not problem.timed else None
    out = []
    prev = None
    for i, b in enumerate(bounds):
        left = remaining()
        if left < 0.5:
            if log:
                log(f"time budget of {time_budget:g} s spent: {len(bounds) - i} of "
                    f"{len(bounds)} accuracy bounds not solved")
            break
        try:
            sol = optimise(replace(problem, max_drop=b), time_limit=left,
                           upper=None if prev is None else problem.key(prev), lower=lower,
                           start=prev)
        except (Infeasible, SolverTimeout) as exc:
            if log:
                log(f"bound {b:.4f}: {exc}")
            continue
        out.append((b, note(f"bound {b:.4f}", sol)))
        prev = sol
    out.append((problem.max_drop if problem.max_drop is not None else d_hi, fastest))
    return out


def ii_levels(problem: Problem, lo: int, hi: int) -> list[int]:
    """Every II a design of ``problem`` can have between ``lo`` and ``hi`` cycles: a network's II
    is one of its candidates' cycle counts."""
    return sorted({c.cost.cycles for cs in problem.candidates for c in cs
                   if lo <= c.cost.cycles <= hi})


def by_level(problem: Problem, lo: int, hi: int, *, most: int = 48,
             time_limit: float | None = None, log=None) -> list[tuple[None, Solution]]:
    """The most accurate design (by the program's own accuracy model) at each II level between
    ``lo`` (the fastest design's II) and ``hi`` (the most accurate one's), as ``(None, solution)``
    rows for :func:`non_dominated` / :func:`front_by`.

    A network's II is one of its candidates' cycle counts, so those between ``lo`` and ``hi`` are
    every level a front point can sit on; :func:`sweep`'s accuracy bounds, evenly spaced in
    drop, jump over some of them (eye on XCZU3EG: 4 of its 9). At most ``most`` levels are
    solved, evenly spread when there are more. Levels that do not solve in time are skipped."""
    limit = DEFAULT_TIME_LIMIT if time_limit is None else time_limit
    levels = ii_levels(problem, lo, hi)
    if len(levels) > most:
        levels = [levels[round(k * (len(levels) - 1) / (most - 1))] for k in range(most)]
    out = []
    for v in levels:
        try:
            out.append((None, optimise(replace(problem, objective="drop", max_drop=None),
                                       time_limit=limit, upper=v)))
        except (Infeasible, SolverTimeout) as exc:
            if log:
                log(f"II level {v:,}: {exc}")
    return out


def best_at_level(problem: Problem, start: Solution, level: int, predict, *,
                  time_limit: float | None = None, log=None, solved: dict | None = None
                  ) -> Solution:
    """A local search for the design with the lowest ``predict(formats)`` whose II is at most
    ``level``, from ``start`` (a design at that level): one layer's format at a time, the change
    the predictor likes best among those whose fixed-format design still reaches the level,
    until no change lowers the prediction. ``solved`` caches fixed-format solves between calls
    (keyed by formats and level). Returns ``start`` when nothing better reaches the level."""
    limit = DEFAULT_TIME_LIMIT if time_limit is None else time_limit
    solved = {} if solved is None else solved
    options = [sorted({c.choice.format for c in cs}) for cs in problem.candidates]
    cur, best = _formats_of(problem, start), start
    now = predict(cur)
    while True:
        trials = []
        for name, opts in zip(problem.names, options, strict=True):
            for f in opts:
                if f != cur[name]:
                    trial = {**cur, name: f}
                    d = predict(trial)
                    if d < now - 1e-12:
                        trials.append((d, trial))
        trials.sort(key=lambda dt: dt[0])
        for d, trial in trials:
            k = (tuple(trial.values()), level)
            if k not in solved:
                solved[k] = None
                fixed = _fixed_formats(problem, trial)
                if fixed is not None:
                    try:
                        # the fastest design of these formats at the II level, in cycles
                        sol = optimise(replace(fixed, timed=False), time_limit=limit,
                                       upper=level)
                        solved[k] = sol if sol.ii <= level else None
                    except Infeasible:
                        pass  # most changes that gain accuracy cost resources the level lacks
                    except SolverTimeout as exc:
                        if log:
                            log(f"II level {level:,}, design {'/'.join(trial.values())}: {exc}")
            if solved[k] is not None:
                cur, now, best = trial, d, solved[k]
                break
        else:
            return best


def thin(front: list, keep: int) -> list[int]:
    """Indices of ``keep`` points of a front (fastest first) spread evenly along it, both ends
    kept; all of them when there are no more than ``keep``."""
    n = len(front)
    if n <= keep:
        return list(range(n))
    if keep == 1:
        return [0]
    return sorted({round(k * (n - 1) / (keep - 1)) for k in range(keep)})


def non_dominated(rows: list[tuple[float | None, Solution]], by: str | Problem = "ii"):
    """The points no other point beats in both the objective and the predicted drop. ``by``:
    ``"ii"`` or ``"latency"`` (cycles), or a problem, whose :meth:`~Problem.key` counts."""
    key = _keyer(by)
    keep = []
    for b, s in rows:
        dominated = any(
            (key(t) <= key(s) and t.drop <= s.drop + 1e-12)
            and (key(t) < key(s) or t.drop < s.drop - 1e-12)
            for _, t in rows
        )
        duplicate = any(key(t) == key(s) and abs(t.drop - s.drop) <= 1e-12 for _, t in keep)
        if not dominated and not duplicate:
            keep.append((b, s))
    keep.sort(key=lambda bs: (key(bs[1]), -bs[1].drop))
    return keep


def _keyer(by):
    if isinstance(by, Problem):
        return by.key
    return (lambda s: s.ii) if by == "ii" else (lambda s: s.latency)


def _formats_of(problem: Problem, sol: Solution) -> dict:
    return {name: c.format for name, c in zip(problem.names, sol.choices, strict=True)}


def _fixed_formats(problem: Problem, formats: dict) -> Problem | None:
    """``problem`` with each layer's candidates (and pool) restricted to its format in
    ``formats``, and no accuracy bound; None where a layer has no candidate in its format (the
    all-int8 reference of a search whose ``--formats`` leave int8 out)."""
    def keep(per_layer):
        return tuple(tuple(c for c in cs if c.choice.format == formats[name])
                     for name, cs in zip(problem.names, per_layer, strict=True))

    candidates = keep(problem.candidates)
    if not all(candidates):
        return None
    return replace(problem, candidates=candidates,
                   pool=keep(problem.pool) if problem.pool else (), max_drop=None)


def toward_reference(problem: Problem, start: Solution, predict, reference: str, *,
                     per_cycle: bool = False, time_limit: float | None = None,
                     log=None) -> list[Solution]:
    """Designs between ``start`` and the all-``reference`` one that a non-linear predictor ranks.

    From ``start``'s formats, one layer at a time goes back to ``reference``. Each step takes
    the layer whose change lowers ``predict(formats)`` (a predicted drop) most or, with
    ``per_cycle``, the one that buys the most predicted accuracy per cycle of II (or latency)
    it costs: a change that costs no cycles and loses nothing first, then the best gain per
    cycle. The first walk follows the predictor; the second traces the front between the
    fastest and the all-``reference`` design level by level, where the accuracy bounds of
    :func:`sweep` jump over II levels. Every assignment on a path is solved with its formats
    fixed (the fastest design of those formats that fits), so the front can hold points between
    the sweep's, ranked by the better predictor where the integer program's linear model is
    blind (its fitted cost of a layer is often 0 while the layer costs accuracy beside others).
    Returns the solved designs, in path order; assignments that do not fit or time out are
    skipped (``per_cycle`` does not step to them)."""
    limit = DEFAULT_TIME_LIMIT if time_limit is None else time_limit
    key = problem.key
    solved: dict = {}

    def design(formats):
        k = tuple(formats.values())
        if k not in solved:
            solved[k] = None
            fixed = _fixed_formats(problem, formats)
            if fixed is not None:
                try:
                    solved[k] = optimise(fixed, time_limit=limit)
                except (Infeasible, SolverTimeout) as exc:
                    if log:
                        log(f"path design {'/'.join(formats.values())}: {exc}")
        return solved[k]

    cur = _formats_of(problem, start)
    at, now = key(start), predict(cur)
    out = []
    while any(f != reference for f in cur.values()):
        best = None
        for name, f in cur.items():
            if f == reference:
                continue
            trial = {**cur, name: reference}
            d = predict(trial)
            if per_cycle:
                sol = design(trial)
                if sol is None:
                    continue
                gain, cost = now - d, key(sol) - at
                score = ((2, gain) if gain >= 0 else (0, gain)) if cost <= 0 else \
                    (1, gain / cost)
            else:
                score = (0, -d)
            if best is None or score[0] > best[0][0] or (
                    score[0] == best[0][0] and score[1] > best[0][1] + 1e-12):
                best = (score, trial, d)
        if best is None:
            break
        _, cur, now = best
        sol = design(cur)
        if sol is not None:
            out.append(sol)
            at = key(sol)
        if log:  # a step solves up to one program per layer left: say where the walk is
            left = sum(f != reference for f in cur.values())
            log(f"path to all-{reference}{' (per cycle)' if per_cycle else ''}: {left} "
                f"layers left, {len(solved)} designs solved")
    return out


def front_by(problem: Problem, rows, predict):
    """The non-dominated ``(bound, solution)`` of ``rows`` when a design's accuracy is
    ``predict(formats)`` (a predicted drop) rather than the program's summed cost; returns
    ``(front, drops)`` with the predicted drop of each front point, fastest first."""
    key = problem.key
    scored = [(b, s, predict(_formats_of(problem, s))) for b, s in rows]
    keep = []
    for b, s, d in scored:
        dominated = any((key(t) <= key(s) and e <= d + 1e-12)
                        and (key(t) < key(s) or e < d - 1e-12) for _, t, e in scored)
        duplicate = any(key(t) == key(s) and abs(e - d) <= 1e-12 for _, t, e in keep)
        if not dominated and not duplicate:
            keep.append((b, s, d))
    keep.sort(key=lambda bsd: (key(bsd[1]), -bsd[2]))
    return [(b, s) for b, s, _ in keep], [d for _, _, d in keep]


def solutions_frame(rows, *, base: float, clock_mhz: float, to_drop=None) -> pd.DataFrame:
    """The front table: one row per point, numbered from 0 (fastest first). ``to_drop`` maps a
    summed accuracy cost to a predicted drop (identity by default)."""
    to_drop = to_drop or float
    recs = []
    for k, (b, s) in enumerate(rows):
        counts = Counter(c.format for c in s.choices)
        recs.append({
            "point": k,
            "accuracy_pred": base - to_drop(s.drop),
            "acc_drop": to_drop(s.drop),
            "max_drop": None if b is None else to_drop(b),
            "acc_cost": s.drop,
            "ii_cycles": s.ii,
            "latency_cycles": s.reported_latency,
            "fps": clock_mhz * 1e6 / s.ii,
            "latency_us": s.reported_latency / clock_mhz,
            "dsp": s.dsp, "lut": s.lut, "ff": s.ff, "bram18": s.bram18,
            "converters": s.converters,
            "formats": "/".join(c.format for c in s.choices),
            "format_counts": " ".join(f"{f}:{n}" for f, n in sorted(counts.items())),
            "solve_seconds": round(s.solve_seconds, 3),
            "proven": s.proven,
        })
    return pd.DataFrame(recs, columns=list(FRONT_COLUMNS))


def timed_sweep(problem: Problem, **kw):
    """:func:`sweep` and :func:`non_dominated`, with the wall time of the whole front."""
    t0 = time.perf_counter()
    rows = sweep(problem, **kw)
    front = non_dominated(rows, problem)
    return front, rows, time.perf_counter() - t0
