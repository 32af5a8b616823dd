"""FINN-style greedy folding: the baseline the integer program is compared against.

One weight format for the whole network (the FINN habit of a single precision), every layer at
its lowest parallelism, then repeatedly raise the parallelism of the bottleneck layer (the slowest
stage) to its next faster choice that still fits the budget, until the bottleneck cannot be sped
up. Each uniform format whose predicted accuracy drop is within the bound is tried and the fastest
result kept. The result is also a feasible starting point (an upper bound on the II) for the
integer program.
"""

from __future__ import annotations

from contract.constants import default_datapath

from .devices import RESOURCES
from .problem import Problem, Solution, evaluate

__all__ = ["greedy_folding", "greedy"]


def _fits(problem: Problem, sol: Solution) -> bool:
    return all(getattr(sol, r) <= problem.budget.limit(r) for r in RESOURCES)


def _weight(problem: Problem, cost) -> float:
    # Resources as fractions of the budget, so that one scarce resource dominates the ranking.
    return sum(getattr(cost, r) / max(problem.budget.limit(r), 1) for r in RESOURCES)


def greedy_folding(problem: Problem, fmt: str) -> Solution | None:
    """Greedy folding with every layer in format ``fmt``; None if the slowest start does not fit."""
    options = []
    for cands in problem.candidates:
        # FINN's habit: one product per DSP slice (the format's own datapath), no packing
        opts = [k for k, c in enumerate(cands)
                if c.choice.format == fmt and c.choice.datapath == default_datapath(fmt)]
        if not opts:
            return None
        options.append(opts)
    # Start: the cheapest choice of each layer (lowest parallelism).
    picks = [min(opts, key=lambda k, i=i: (_weight(problem, problem.candidates[i][k].cost),
                                           -problem.candidates[i][k].cost.cycles))
             for i, opts in enumerate(options)]
    sol = evaluate(problem, picks)
    if not _fits(problem, sol):
        return None
    while True:
        cyc = [problem.candidates[i][k].cost.cycles for i, k in enumerate(picks)]
        b = max(range(len(picks)), key=cyc.__getitem__)
        faster = [k for k in options[b] if problem.candidates[b][k].cost.cycles < cyc[b]]
        # Next folding step: the cheapest faster choice that keeps the design within budget.
        faster.sort(key=lambda k: (_weight(problem, problem.candidates[b][k].cost),
                                   problem.candidates[b][k].cost.cycles))
        for k in faster:
            trial = list(picks)
            trial[b] = k
            t = evaluate(problem, trial)
            if _fits(problem, t):
                picks, sol = trial, t
                break
        else:
            return sol


def greedy(problem: Problem) -> Solution | None:
    """Best :func:`greedy_folding` over the uniform formats allowed by the accuracy bound."""
    formats = sorted({c.choice.format for cands in problem.candidates for c in cands})
    best = None
    for fmt in formats:
        sol = greedy_folding(problem, fmt)
        if sol is None:
            continue
        if problem.max_drop is not None and sol.drop > problem.max_drop + 1e-9:
            continue
        if best is None or problem.cycles(sol) < problem.cycles(best):
            best = sol
    return best
