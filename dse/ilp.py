"""The design-space integer program, in three steps: :func:`build`, :func:`solve`, :func:`decode`.

Variables: one binary ``x[l, c]`` per (layer, candidate choice), exactly one per layer; one binary
``z[e]`` per stream edge that is 1 when the producer's output width (``pe``) differs from the
consumer's ``lanes`` (a width converter, priced in LUT/FF, never a throughput limit); the
initiation interval ``II`` (continuous, integral at the optimum).

Constraints: ``II >= cycles[l, c]`` for the chosen candidate of every layer; DSP, LUT, FF and BRAM18
sums (converters included) within the budget; predicted accuracy drop ``<= max_drop``.

Objective ``"ii"``: minimise ``II`` (throughput); ``"latency"``: minimise
``II + sum(fill[l, c])`` (a lone frame streams in at the bottleneck's rate, then drains through
every stage; ``fill`` is a stage's tail, :func:`dse.cost.fill_cycles`); ``"drop"``: minimise
the predicted accuracy drop (the most accurate design that
fits, where a Pareto sweep starts). With ``tie_break``, equally fast points are ranked by their
drop, with a weight too small to trade one cycle (off by default: it makes CBC much slower).

:func:`brute_force` enumerates the same problem (small instances) to check the program. The
problem itself (:class:`Problem`, :func:`evaluate`) is :mod:`dse.problem`, re-exported here.
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from dataclasses import dataclass, replace

import pulp

from common.errors import CodesignError

from .devices import RESOURCES
from .greedy import greedy
from .problem import OBJECTIVES, Candidate, Problem, Solution, evaluate, network_latency

__all__ = [
    "Candidate",
    "Problem",
    "Solution",
    "Infeasible",
    "OBJECTIVES",
    "build",
    "solve",
    "decode",
    "optimise",
    "optimise_timed",
    "clock_levels",
    "at_clock",
    "prune",
    "evaluate",
    "brute_force",
    "check_budget",
    "network_latency",
    "DEFAULT_TIME_LIMIT",
    "SolverTimeout",
    "fewest_multipliers",
]

#: CBC time limit of one solve, in seconds, when the caller gives none: every solve is bounded.
#: A solve that reaches it returns its best point with ``proven=False``.
DEFAULT_TIME_LIMIT = 20.0

#: What :func:`build` may minimise among the designs of at most given cycles.
LEAST_OF = ("lut", "multipliers")

#: Shortest CBC time limit used (seconds).
MIN_TIME_LIMIT = 1.0

#: :func:`optimise_timed` solves one program per clock level; together they get at most this
#: many times the one-solve limit (a 28-layer MobileNet has 12 levels, each solve up to the
#: limit: without it a DSE in time took more than 13 times as long as one in cycles).
TIMED_BUDGET = 3.0


class Infeasible(CodesignError):
    """No design point meets the budget (and accuracy bound); the message names the cause."""


class SolverTimeout(CodesignError):
    """CBC reached its time limit before finding any feasible point (none is known either)."""


@dataclass
class Model:
    """A built program: the PuLP problem and its variables."""

    problem: Problem
    lp: pulp.LpProblem
    x: list  # per layer, list of binaries
    ii: object  # LpVariable or affine expression
    status: str = "built"
    seconds: float = 0.0
    warm: bool = False
    time_limit: float | None = None


def _fits(problem: Problem, sol: Solution) -> bool:
    if any(getattr(sol, r) > problem.budget.limit(r) for r in RESOURCES):
        return False
    return problem.max_drop is None or sol.drop <= problem.max_drop + 1e-9


def check_budget(problem: Problem) -> None:
    """Raise :class:`Infeasible` naming the resource if even the cheapest choices do not fit."""
    b = problem.budget
    labels = {"dsp": b.dsp_cell, "lut": "LUT", "ff": "FF", "bram18": "BRAM18"}
    for r in RESOURCES:
        need = sum(min(getattr(c.cost, r) for c in cands) for cands in problem.candidates)
        if need > b.limit(r):
            raise Infeasible(
                f"infeasible: needs at least {need} {labels[r]} at the lowest parallelism, device "
                f"{b.device} offers {b.limit(r)} at util {b.util:g}"
            )
    if problem.max_drop is not None:
        least = sum(min(c.drop for c in cands) for cands in problem.candidates)
        if least > problem.max_drop + 1e-9:
            raise Infeasible(
                f"infeasible: predicted accuracy drop is at least {least:.4f} with the allowed "
                f"formats, above the bound {problem.max_drop:.4f}"
            )


def build(problem: Problem, *, tie_break: bool = False, formulation: str = "levels",
          ii_lower: int | None = None, start: Solution | None = None,
          least_within: int | None = None, least: str = "lut") -> Model:
    """Step 1: the PuLP problem of ``problem`` (no solving). ``least_within``: among the designs
    whose cycles (:meth:`Problem.cycles`) are at most that, minimise ``least`` instead:
    ``"lut"``, or ``"multipliers"`` (:attr:`Candidate.multipliers`; among as many, the smallest
    share of the budget: each resource's use over its limit, summed)."""
    if least not in LEAST_OF:
        raise ValueError(f"least must be one of {LEAST_OF}, not {least!r}")
    lp = pulp.LpProblem("dse", pulp.LpMinimize)
    x = [
        [lp.add_variable(f"x_{i}_{k}", cat=pulp.LpBinary) for k in range(len(cands))]
        for i, cands in enumerate(problem.candidates)
    ]
    for i in range(len(problem.candidates)):
        lp += pulp.lpSum(x[i]) == 1, f"one_{i}"
    ii = _initiation_interval(lp, problem, x, formulation)
    if ii_lower is not None:
        lp += ii >= ii_lower, "ii_lower"
    # Width converters on edges whose producer pe differs from the consumer lanes.
    conv_terms = {"lut": [], "ff": []}
    for e, (p, c) in enumerate(problem.edges):
        pes = sorted({cand.choice.pe for cand in problem.candidates[p]})
        # the consumer's lanes, or the pe of a join's first input (Problem.edge_to_pe)
        lanes = {problem.sink_width(e, cand.choice) for cand in problem.candidates[c]}
        if len(pes) == 1 and lanes == set(pes):
            continue
        z = lp.add_variable(f"z_{e}", cat=pulp.LpBinary)
        out_of = {v: pulp.lpSum(xv for cand, xv in zip(problem.candidates[p], x[p], strict=True)
                                if cand.choice.pe == v) for v in pes}
        for v in pes:
            in_v = pulp.lpSum(xv for cand, xv in zip(problem.candidates[c], x[c], strict=True)
                              if problem.sink_width(e, cand.choice) == v)
            lp += z >= out_of[v] - in_v, f"conv_{e}_{v}"
        w_out = pulp.lpSum(cand.choice.pe * xv
                           for cand, xv in zip(problem.candidates[p], x[p], strict=True))
        w_in = pulp.lpSum(problem.sink_width(e, cand.choice) * xv
                          for cand, xv in zip(problem.candidates[c], x[c], strict=True))
        # the input lanes the converter's entries choose among, a (a + 1) / 2 + a b
        # (dse.cost.converter_mux_inputs): the first term is the producer's choice alone; the
        # product ``ab`` >= a * w_in is exact at its least, since exactly one pe value v is the
        # producer's (out_v = 1) and every other v's bound is at most 0
        mux_inputs, mux_big = 0, 0
        if any(problem.converter_mux(r) for r in ("lut", "ff")):
            ab = lp.add_variable(f"ab_{e}", lowBound=0)
            for v in pes:
                lp += ab >= v * w_in - v * max(lanes) * (1 - out_of[v]), f"convab_{e}_{v}"
            half_sq = pulp.lpSum(cand.choice.pe * (cand.choice.pe + 1) // 2 * xv
                                 for cand, xv in zip(problem.candidates[p], x[p], strict=True))
            mux_inputs = half_sq + ab
            mux_big = max(pes) * (max(pes) + 1) // 2 + max(pes) * max(lanes)
        for r in ("lut", "ff"):
            # per lane bit of w_out (the producer's width) and of w_in (the consumer's)
            base, a_out, a_in = problem.converter_terms(r, problem.fifo_edge(e))
            mux = problem.converter_mux(r)
            # t = the width terms when z = 1, else 0: the product of a binary and a linear
            # term, which may be negative (a narrower producer's FIFO)
            bits = problem.bits_of(e)
            big = bits * (max(a_out, 0) * max(pes) + max(a_in, 0) * max(lanes) + mux * mux_big)
            neg = bits * (max(-a_out, 0) * max(pes) + max(-a_in, 0) * max(lanes))
            t = lp.add_variable(f"t_{r}_{e}", lowBound=-neg)
            lp += (t >= a_out * bits * w_out + a_in * bits * w_in
                   + (mux * bits * mux_inputs if mux else 0) - big * (1 - z),
                   f"convcost_{r}_{e}")
            if neg:
                lp += t >= -neg * z, f"convzero_{r}_{e}"
            conv_terms[r].append(base * z + t)
    used = {}
    for r in RESOURCES:
        use = pulp.lpSum(getattr(c.cost, r) * v for cands, xs in zip(problem.candidates, x,
                                                                     strict=True)
                         for c, v in zip(cands, xs, strict=True))
        used[r] = use + pulp.lpSum(conv_terms.get(r, []))
        lp += used[r] <= problem.budget.limit(r), f"budget_{r}"
    drop = pulp.lpSum(c.drop * v for cands, xs in zip(problem.candidates, x, strict=True)
                      for c, v in zip(cands, xs, strict=True))
    if problem.max_drop is not None:
        lp += drop <= problem.max_drop + 1e-9, "accuracy"
    objective = ii
    if problem.objective == "drop":
        objective = drop
    elif problem.objective == "latency":
        objective = ii + pulp.lpSum(c.cost.fill * v for cands, xs in zip(problem.candidates, x,
                                                                         strict=True)
                                    for c, v in zip(cands, xs, strict=True))
    if least_within is not None:
        lp += objective <= least_within, "cycles_cap"
        objective = used["lut"]
        if least == "multipliers":
            # worth less than one multiplier in all: each share is at most 1 within the budget
            share = pulp.lpSum(used[r] * (1.0 / max(problem.budget.limit(r), 1))
                               for r in RESOURCES)
            objective = pulp.lpSum(c.multipliers * v
                                   for cands, xs in zip(problem.candidates, x, strict=True)
                                   for c, v in zip(cands, xs, strict=True)) \
                + 0.5 / len(RESOURCES) * share
    elif tie_break and problem.objective != "drop":
        # Worth less than one cycle in total: among equally fast points prefer the smaller drop.
        max_drop_total = sum(max(abs(c.drop) for c in cands) for cands in problem.candidates)
        objective = objective + 0.5 / (max_drop_total or 1.0) * drop
    lp += objective
    model = Model(problem=problem, lp=lp, x=x, ii=ii)
    if start is not None:
        model.warm = _set_start(model, start)
    return model


def _set_start(model: Model, start: Solution) -> bool:
    """Give CBC ``start`` (a known feasible point) as its first incumbent; False if ``start``
    uses a candidate the (pruned) problem no longer has."""
    problem = model.problem
    picks = []
    for cands, ch in zip(problem.candidates, start.solved_choices or start.choices, strict=True):
        k = next((k for k, c in enumerate(cands) if c.choice == ch), None)
        if k is None:
            return False
        picks.append(k)
    sol = evaluate(problem, picks)
    values = {}
    for i, xs in enumerate(model.x):
        for k, v in enumerate(xs):
            values[v.name] = 1.0 if k == picks[i] else 0.0
    values["ii"] = float(sol.ii)
    for e, (p, c) in enumerate(problem.edges):
        a, b = sol.choices[p].pe, problem.sink_width(e, sol.choices[c])
        values[f"z_{e}"] = 0.0 if a == b else 1.0
        values[f"ab_{e}"] = float(a * b)
        price = problem.converter_price(a, b, problem.bits_of(e), fifo=problem.fifo_edge(e))
        for r, (base, *_) in problem.converter.items():
            values[f"t_{r}_{e}"] = 0.0 if a == b else price[r] - base
    for name, var in model.lp.variablesDict().items():
        if name.startswith("y_"):
            var.setInitialValue(1.0 if int(name[2:]) <= sol.ii else 0.0)
        elif name in values:
            var.setInitialValue(values[name])
    return True


def _initiation_interval(lp, problem: Problem, x, formulation: str):
    """The II as an expression of the choice binaries.

    ``"max"``: one continuous ``II >= cycles`` row per layer (weak LP relaxation).
    ``"levels"``: binaries ``y[t]`` = "II reaches the t-th distinct cycle count", monotone, with
    ``sum(x[l, c] for cycles[l, c] >= T[t]) <= y[t]``; the LP relaxation then cannot average a slow
    choice away, which makes CBC much faster on bottleneck objectives.
    """
    lower = max(min(c.cost.cycles for c in cands) for cands in problem.candidates)
    if formulation == "max":
        upper = max(c.cost.cycles for cands in problem.candidates for c in cands)
        ii = lp.add_variable("ii", lowBound=lower, upBound=upper)
        for i, cands in enumerate(problem.candidates):
            lp += ii >= pulp.lpSum(c.cost.cycles * v for c, v in zip(cands, x[i], strict=True)), \
                f"ii_{i}"
        return ii
    if formulation != "levels":
        raise ValueError(f"formulation must be 'levels' or 'max', not {formulation!r}")
    levels = sorted({c.cost.cycles for cands in problem.candidates for c in cands} - {lower})
    levels = [t for t in levels if t > lower]
    y = {t: lp.add_variable(f"y_{t}", cat=pulp.LpBinary) for t in levels}
    for a, b in zip(levels, levels[1:], strict=False):
        lp += y[b] <= y[a], f"mono_{b}"
    for i, cands in enumerate(problem.candidates):
        for t in sorted({c.cost.cycles for c in cands if c.cost.cycles > lower}):
            lp += pulp.lpSum(v for c, v in zip(cands, x[i], strict=True)
                             if c.cost.cycles >= t) <= y[t], f"lvl_{i}_{t}"
    steps = [(t, t - p) for p, t in zip([lower, *levels], levels, strict=False)]
    return lower + pulp.lpSum(d * y[t] for t, d in steps)


def solve(model: Model, *, time_limit: float | None = None, threads: int = 1) -> Model:
    """Step 2: solve with the bundled CBC; ``model.status`` is PuLP's status string, or
    ``"Feasible"`` when CBC stopped at ``time_limit`` (default :data:`DEFAULT_TIME_LIMIT`) with an
    unproven point."""
    if time_limit is None:
        time_limit = DEFAULT_TIME_LIMIT
    if not time_limit > 0:
        raise ValueError(f"time_limit must be positive seconds, not {time_limit!r}")
    # below a second the bundled CBC can exit with an error instead of stopping cleanly
    time_limit = max(float(time_limit), MIN_TIME_LIMIT)
    model.time_limit = time_limit
    with warnings.catch_warnings():
        # PuLP 3.3 announces the bundled CBC's removal in 4.0; the pinned 3.3.2 ships it.
        warnings.simplefilter("ignore", DeprecationWarning)
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, threads=threads,
                                   warmStart=model.warm)
    t0 = time.perf_counter()
    try:
        model.lp.solve(solver)
    except pulp.PulpSolverError:
        model.seconds = time.perf_counter() - t0
        model.status = "Not Solved"
        return model
    model.seconds = time.perf_counter() - t0
    model.status = pulp.LpStatus[model.lp.status]
    if model.status == "Optimal" and model.lp.sol_status != pulp.LpSolutionOptimal:
        # CBC stopped on the time limit with a feasible, unproven point.
        model.status = "Feasible"
    return model


def decode(model: Model) -> Solution:
    """Step 3: the chosen candidate per layer, re-priced exactly by :func:`evaluate`."""
    problem = model.problem
    if model.status == "Not Solved":
        raise SolverTimeout(f"solver stopped at its time limit of {model.time_limit:g} s "
                            "without a feasible point; raise it with --time-limit (codesign dse, "
                            "codesign flow)")
    if model.status not in ("Optimal", "Feasible"):
        raise Infeasible(_infeasible_message(problem, model.status))
    picks = []
    for i, xs in enumerate(model.x):
        vals = [v.value() or 0.0 for v in xs]
        k = max(range(len(vals)), key=vals.__getitem__)
        if vals[k] < 0.5:
            raise Infeasible(f"solver returned no choice for layer {problem.names[i]}")
        picks.append(k)
    sol = evaluate(problem, picks)
    return replace(sol, solve_seconds=model.seconds, proven=model.status == "Optimal")


def _infeasible_message(problem: Problem, status: str) -> str:
    b = problem.budget
    if status == "Infeasible":
        bound = "" if problem.max_drop is None else f" and accuracy drop <= {problem.max_drop:.4f}"
        return (f"infeasible: no choice of formats and parallelism meets {b.describe()}{bound} "
                "together (each resource alone fits)")
    return f"solver stopped with status {status}"


def prune(problem: Problem, upper: int) -> Problem:
    """Drop every candidate slower than ``upper`` cycles (a known feasible II or latency): the
    optimum cannot use them. Layers keep at least their fastest candidate."""
    cands = []
    for cs in problem.candidates:
        keep = tuple(c for c in cs if c.cost.cycles <= upper)
        cands.append(keep or (min(cs, key=lambda c: c.cost.cycles),))
    return replace(problem, candidates=tuple(cands))


def trim(problem: Problem, sol: Solution) -> Solution:
    """Give back the parallelism the II does not need: layer by layer, the cheapest candidate of
    the same format that keeps the network's II (and every budget) replaces the chosen one, while
    that lowers the resources (each one's share of its budget, summed). The program minimises the
    II alone, so a layer off the critical path may keep twice the multipliers it needs (ResNet-8
    on XC7Z020: layers at half their multipliers' use); trimmed, the same II costs less and
    every multiplier's utilisation rises. Formats (so the accuracy) are unchanged.

    The trim also moves to the problem's ``pool``, every divisor of the channel counts where the
    program chose on a thinned grid: LeNet-5's 120-wide dense layer may take 3 outputs a cycle
    (48 multipliers for a 1,000-cycle layer) where the grid only had 2 (too slow) or 4 (64)."""
    b = problem.budget

    def score(s):
        return sum(getattr(s, r) / max(getattr(b, r), 1) for r in RESOURCES)

    picks = _picks(problem.candidates, sol)
    if picks is None:
        return sol
    problem = _with_pool(problem)  # the pool's candidates go after the grid's: picks hold
    # the trials need no lone-frame latency (the row model): the trimmed design gets it once
    full, problem = problem, replace(problem, rows=())
    best = evaluate(problem, picks)
    if best.ii != sol.ii:
        return sol
    # a timed problem's design keeps its clock: no move to a slower block
    delay_cap = best.delay_ns if problem.timed else math.inf
    improved = True
    while improved:
        improved = False
        for i, cands in enumerate(problem.candidates):
            cur = cands[picks[i]]
            order = sorted((k for k, c in enumerate(cands)
                            if c.choice.format == cur.choice.format and k != picks[i]
                            and c.cost.cycles <= best.ii and c.delay_ns <= delay_cap),
                           key=lambda k: (cands[k].cost.dsp, cands[k].cost.lut))
            for k in order:
                trial = picks[:i] + [k] + picks[i + 1:]
                s = evaluate(problem, trial)
                if s.ii <= best.ii and _fits(problem, s) and score(s) < score(best) - 1e-9:
                    picks, best, improved = trial, s, True
                    break
    moved = best.choices != sol.choices
    best = evaluate(full, picks)
    return replace(best, solve_seconds=sol.solve_seconds, proven=sol.proven,
                   solved_choices=(sol.solved_choices or sol.choices) if moved else ())


def _picks(candidates, sol: Solution) -> list[int] | None:
    """The index of each of ``sol``'s choices among its layer's ``candidates``; None when one
    is not among them (a hand-made point)."""
    picks = []
    for cands, ch, cost in zip(candidates, sol.choices, sol.costs, strict=True):
        k = next((k for k, c in enumerate(cands) if c.choice == ch and c.cost == cost), None)
        if k is None:
            return None
        picks.append(k)
    return picks


def _with_pool(problem: Problem) -> Problem:
    """``problem`` with its ``pool``'s candidates after each layer's own (those of a choice it
    does not have), and no pool."""
    if not problem.pool:
        return problem
    merged = []
    for cands, extra in zip(problem.candidates, problem.pool, strict=True):
        have = {c.choice for c in cands}
        merged.append(tuple(cands) + tuple(c for c in extra if c.choice not in have))
    return replace(problem, candidates=tuple(merged), pool=())


def fewest_multipliers(problem: Problem, sol: Solution, *, time_limit: float | None = None,
                       formulation: str = "levels") -> Solution:
    """The design with the fewest multipliers among those no slower than ``sol`` in the
    program's own terms, in ``sol``'s formats and drops (its predicted accuracy), within the
    budget; among as many, the smallest share of the budget. ``sol`` itself when none has
    fewer.

    What the program and :func:`trim` leave: at a point's II, a layer off the critical path may
    keep a design whose multipliers idle part of the time because it is the cheaper one in
    LUTs and FFs (a 3x3 conv at kernel fold 1 has no fold multiplexers: ResNet-8's
    stage2_conv2 and stage3_conv2 on XC7Z020 at 144 multipliers each where 96 keep the II).
    Here the multipliers count first, over every divisor of the channel counts (the problem's
    ``pool``): the MAC utilisation ``benchmarks/mac_utilisation.py`` measures, at the price of
    some LUTs and FFs within the budget (``codesign dse --least multipliers``).

    "No slower": cycles (or the latency, :meth:`Problem.cycles`) at most ``sol``'s, and in a
    :attr:`~Problem.timed` problem no choice with a longer ``delay_ns`` than ``sol``'s clock
    and, where the routing derate grows with the LUTs (:attr:`Problem.routes_by_lut`), no more
    LUTs: a time (:meth:`Problem.key`) at most ``sol``'s."""
    cap = problem.cycles(sol)
    delay_cap = sol.delay_ns if problem.timed else math.inf
    full = _with_pool(problem)
    full = replace(full, candidates=tuple(
        tuple(c for c in cs if c.choice.format == ch.format and c.drop == drop
              and c.cost.cycles <= cap and c.delay_ns <= delay_cap + 1e-9)
        for cs, ch, drop in zip(full.candidates, sol.choices, sol.drops, strict=True)))
    picks = _picks(full.candidates, sol)
    if picks is None:
        return sol
    work = replace(full, rows=())  # the lone-frame latency once, for the design kept
    start = evaluate(work, picks)
    if problem.timed and problem.routes_by_lut:
        # more LUTs route slower: a design of more would not keep the time
        work = replace(work, budget=replace(work.budget, lut=min(work.budget.lut, sol.lut)))
    try:
        model = solve(build(work, formulation=formulation, least_within=cap, least="multipliers",
                            start=start), time_limit=time_limit)
        new = decode(model)
    except (Infeasible, SolverTimeout):
        return sol
    if new.multipliers >= start.multipliers:
        return sol
    new = evaluate(full, _picks(full.candidates, new))
    if not _fits(problem, new) or problem.key(new) > problem.key(sol) + 1e-9:
        return sol
    proven = sol.proven and model.status == "Optimal"
    return replace(new, solve_seconds=sol.solve_seconds, proven=proven,
                   solved_choices=sol.solved_choices or sol.choices)


def optimise(problem: Problem, *, time_limit: float | None = None, tie_break: bool = False,
             formulation: str = "levels", warm: bool = True, upper: float | None = None,
             lower: int | None = None, start: Solution | None = None) -> Solution:
    """Check the budget, bound the II with the greedy baseline, then build, solve and decode.

    ``upper``: the objective (:meth:`Problem.key`) of a known feasible point (e.g. the previous
    point of a Pareto sweep), used instead of the greedy bound; ``start``: that point, handed to
    CBC as its first incumbent; ``lower``: a known lower bound on the II (in cycles). A
    :attr:`~Problem.timed` problem is solved by :func:`optimise_timed`.
    """
    if problem.timed and problem.objective != "drop":
        return optimise_timed(problem, time_limit=time_limit, tie_break=tie_break,
                              formulation=formulation, warm=warm, upper=upper, lower=lower,
                              start=start)
    return _optimise_cycles(problem, time_limit=time_limit, tie_break=tie_break,
                            formulation=formulation, warm=warm, upper=upper, lower=lower,
                            start=start)


def _optimise_cycles(problem: Problem, *, time_limit, tie_break, formulation, warm, upper,
                     lower, start) -> Solution:
    """:func:`optimise` of the cycles (or the drop) the program's objective counts; ``upper``
    in those units."""
    check_budget(problem)
    t0 = time.perf_counter()
    work = problem
    if upper is not None:
        work = prune(problem, upper)
    elif warm and problem.objective != "drop":
        start = greedy(problem)
        if start is not None:
            work = prune(problem, problem.cycles(start))
    if start is not None and problem.max_drop is not None and start.drop > problem.max_drop:
        start = None
    model = solve(build(work, tie_break=tie_break, formulation=formulation, ii_lower=lower,
                        start=start if warm else None),
                  time_limit=time_limit)
    try:
        sol = decode(model)
    except SolverTimeout:
        if start is None or not _fits(problem, start):
            raise
        # the known feasible point (greedy or the previous sweep point), not proven optimal
        sol = replace(start, proven=False)
    if problem.objective == "ii":
        sol = trim(problem, sol)
    return replace(sol, solve_seconds=time.perf_counter() - t0)


def clock_levels(problem: Problem) -> list[float]:
    """The clock periods a design of ``problem`` can have (ns, ascending): a design's period is
    its slowest candidate's ``delay_ns``, so it is one of theirs."""
    return sorted({c.delay_ns for cs in problem.candidates for c in cs})


def at_clock(problem: Problem, period: float) -> Problem | None:
    """``problem`` with only the candidates whose ``delay_ns`` is at most ``period`` (its pool
    too); None when a layer has none."""
    def keep(per_layer):
        return tuple(tuple(c for c in cs if c.delay_ns <= period) for cs in per_layer)

    cands = keep(problem.candidates)
    if not all(cands):
        return None
    return replace(problem, candidates=cands, pool=keep(problem.pool) if problem.pool else ())


def optimise_timed(problem: Problem, *, time_limit: float | None = None, tie_break=False,
                   formulation="levels", warm=True, upper: float | None = None,
                   lower: int | None = None, start: Solution | None = None) -> Solution:
    """The design with the least time (cycles x estimated clock period derated for routing,
    :meth:`Problem.key`).

    A design's period is a step function of its choices (the slowest one's ``delay_ns``), so
    the time is not linear in them. One cycles program is solved per clock level instead
    (:func:`clock_levels`), over the candidates that reach it (:func:`at_clock`), and the
    least time kept. First over every candidate: its cycles ``c0`` bound every level's from
    below, so level ``p`` is skipped once ``c0`` times ``p`` derated at the fewest LUTs any
    design has (:meth:`Problem.period`) reaches the best time found, and, the levels being
    ascending, every slower one with it. Each level's program is pruned to the cycles that would
    beat the best time. ``upper`` (a known time) and ``start`` (that point) bound the search from
    the start; ``lower`` bounds the II in cycles.

    Where the routing derate grows with the LUTs (:attr:`Problem.routing`), a design with fewer
    LUTs and more cycles can take less time, so each level descends a staircase: after the
    least cycles ``c`` under a LUT budget, one program finds the fewest LUTs ``L`` among the
    designs of at most ``c`` cycles, and the next solve has the budget ``L - 1``. Every design
    skipped has at least ``c`` cycles and at least ``L`` LUTs (so at least that derate): the
    least time is found exactly. The descent stops once ``c`` at the derate of the fewest LUTs
    any design of the level could have cannot beat the best time.

    Each solve starts from the greedy design at its clock when it beats the best time, and
    the solves together take at most :data:`TIMED_BUDGET` times ``time_limit`` (when one is
    given): the best design found by then is returned, marked not proven.

    Raises :class:`Infeasible` when no design fits (or none beats ``upper``)."""
    check_budget(problem)
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + TIMED_BUDGET * time_limit
    levels = clock_levels(problem)
    lut_min = problem.lut_floor()
    per_lut = problem.routes_by_lut
    best = start if start is not None and _fits(problem, start) else None
    best_t = problem.key(best) if best is not None else upper if upper is not None else math.inf
    if upper is not None:
        best_t = min(best_t, upper)
    kw = dict(time_limit=time_limit, tie_break=tie_break, formulation=formulation, warm=warm)
    ii_lower = lower if problem.objective == "ii" else None
    proven = True

    # the most cycles that still beat the best time at ``period`` with at least ``lut`` LUTs
    def cap(period, lut=lut_min):
        return (None if math.isinf(best_t) else
                math.floor((best_t - 1e-9) / problem.period(period, lut)))

    def beaten(cycles, period, lut=lut_min):  # no design of these cycles or more can win
        return cycles * problem.period(period, lut) >= best_t - 1e-9

    try:
        first = _optimise_cycles(problem, upper=cap(levels[0]), lower=ii_lower, start=None, **kw)
    except Infeasible:
        if best is None:
            raise
        # nothing fits in the cycles that would beat the known point, at any clock
        return replace(best, solve_seconds=time.perf_counter() - t0)
    except SolverTimeout:
        if best is None:
            raise
        first, floor_cycles, proven = None, 0, False
    else:
        proven = first.proven
        floor_cycles = problem.cycles(first)
        if problem.key(first) < best_t:
            best, best_t = first, problem.key(first)
    if problem.objective == "ii" and first is not None:
        ii_lower = max(ii_lower or 0, floor_cycles)
    out_of_time = False
    for period in levels:
        if beaten(floor_cycles, period) or out_of_time:
            break  # no design at this clock or a slower one can beat the best time
        sub = at_clock(problem, period)
        # the fewest LUTs of a design at this clock (its least routing derate)
        lut_lvl = sub.lut_floor() if sub is not None else lut_min
        while sub is not None:
            if deadline is not None:
                left = deadline - time.perf_counter()
                if left < MIN_TIME_LIMIT:
                    proven, out_of_time = False, True  # the budget is spent: the best so far
                    break
                kw["time_limit"] = min(time_limit, left)
            warm_start = greedy(sub) if warm else None
            limit = cap(period, lut_lvl)
            if warm_start is not None and not (
                    _fits(sub, warm_start) and problem.key(warm_start) < best_t - 1e-9
                    and (limit is None or problem.cycles(warm_start) <= limit)):
                warm_start = None
            try:
                sol = _optimise_cycles(sub, upper=limit, lower=ii_lower, start=warm_start, **kw)
            except (Infeasible, SolverTimeout):
                break  # nothing at this clock (and LUT budget) both fits and beats the best
            proven = proven and sol.proven
            if problem.key(sol) < best_t - 1e-9:
                best, best_t = sol, problem.key(sol)
            if not per_lut or beaten(problem.cycles(sol), period, lut_lvl):
                break
            # fewer LUTs route faster: the design of the fewest LUTs within these cycles, then
            # the least cycles under a budget just below its LUTs, while the fewest LUTs of any
            # design at this clock that could still win leaves a small enough derate
            lean = _least_lut(sub, problem.cycles(sol), time_limit=kw["time_limit"],
                              formulation=formulation)
            if lean is None:
                proven = False  # no proven fewest LUTs: the descent stops here
                break
            if problem.key(lean) < best_t - 1e-9:
                best, best_t = lean, problem.key(lean)
            # a design with fewer LUTs has more cycles: at least the next II level's
            more = problem.cycles(lean) + 1
            if problem.objective == "ii":
                more = min((c.cost.cycles for cs in sub.candidates for c in cs
                            if c.cost.cycles > problem.cycles(lean)), default=math.inf)
            limit = cap(period, lut_lvl)
            lut_lvl = (prune(sub, limit) if limit is not None else sub).lut_floor()
            if lean.lut - 1 < lut_lvl or beaten(more, period, lut_lvl):
                break
            sub = replace(sub, budget=replace(sub.budget, lut=lean.lut - 1))
    if best is None:
        raise Infeasible(_infeasible_message(problem, "Infeasible"))
    return replace(best, solve_seconds=time.perf_counter() - t0, proven=proven and best.proven)


def _least_lut(problem: Problem, cycles: int, *, time_limit, formulation) -> Solution | None:
    """The design of ``problem`` with the fewest LUTs among those of at most ``cycles``
    (:meth:`Problem.cycles`); None when the solver proves none (its time limit)."""
    work = prune(problem, cycles)
    model = solve(build(work, formulation=formulation, least_within=cycles),
                  time_limit=time_limit)
    if model.status != "Optimal":
        return None
    return decode(model)


def brute_force(problem: Problem) -> Solution | None:
    """The optimum by enumerating every assignment (small problems only); None if infeasible."""
    best = None
    best_key = None
    for picks in itertools.product(*(range(len(c)) for c in problem.candidates)):
        sol = evaluate(problem, picks)
        if not _fits(problem, sol):
            continue
        key = problem.key(sol)
        if best is None or key < best_key:
            best, best_key = sol, key
    return best
