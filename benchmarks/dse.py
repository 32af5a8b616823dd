"""DSE benchmark: ILP solve times and ILP against FINN-style greedy folding.

For every network (the zoo's digits, eventdigits and eye when a trained checkpoint is cached, and
the synthetic 50-layer network) and every device of ``dse/devices.csv`` (util 0.8):

- time of one point (the fastest design, no accuracy bound) and of a ``--points`` front;
- II of the ILP optimum and of greedy folding (one uniform format, raise the bottleneck layer's
  parallelism until the budget runs out) on the same budget: with every format allowed, and with
  int8 only (equal accuracy);
- the ratio greedy II / ILP II (>= 1: how much throughput the exact program gains).

Every CBC solve is bounded by ``--time-limit`` seconds and each front by ``--front-budget``
seconds, so the table finishes in bounded time on every device; ``unproven`` counts the solves
that reached the limit (their point is the best found, not proven optimal) and ``bounds_solved``
how many of the front's accuracy bounds were solved within the budget.

Usage: ``python benchmarks/dse.py [--points 20] [--out build/dse_benchmark.csv] [--train]``.
Prints a Markdown table; the machine's load average is printed with it, since solve times on a
shared 2-core machine depend on it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dse import accuracy, devices, pareto, workload  # noqa: E402
from dse.api import load_workload  # noqa: E402
from dse.greedy import greedy, greedy_folding  # noqa: E402
from dse.ilp import Infeasible, optimise  # noqa: E402

DEVICES = tuple(devices.devices())
FORMATS = ("int8", "int4", "dybit4")


def networks(train: bool, frames: int):
    """``(name, workload, sensitivity)`` of each network available."""
    from models import zoo

    for name in ("digits", "eventdigits", "eye"):
        try:
            bundle = zoo.load(name, train_if_missing=train, progress=False)
        except zoo.ModelError as exc:
            print(f"skip {name}: {exc} (run with --train)", file=sys.stderr)
            continue
        # the command's own loader: the sensitivity cache keyed by checkpoint and quantizer
        w, sens, _ = load_workload(str(bundle.checkpoint), FORMATS, frames=frames)
        yield name, w, sens
    w = workload.synthetic(50)
    yield "synthetic50", w, accuracy.synthetic_sensitivity(w, FORMATS)


def _only(cands, fmt):
    return tuple(tuple(c for c in layer if c.choice.format == fmt) for layer in cands)


def bench(name, w, sens, device, *, points: int, util: float, time_limit: float,
          front_budget: float) -> dict:
    cands, _ = pareto.price(w, FORMATS, sens)
    budget = devices.budget(device, util)
    problem = pareto.make_problem(w, cands, budget)
    row = {"network": name, "layers": len(w), "candidates": sum(map(len, cands)),
           "device": device}
    try:
        t0 = time.perf_counter()
        one = optimise(problem, time_limit=time_limit)
        row["point_s"] = time.perf_counter() - t0
    except Infeasible as exc:
        row["note"] = str(exc)
        return row
    front, rows, seconds = pareto.timed_sweep(problem, points=points, time_limit=time_limit,
                                              time_budget=front_budget)
    row.update(point_proven=one.proven, front_s=seconds, front_points=len(front),
               bounds_solved=len(rows), max_point_s=max(s.solve_seconds for _, s in rows),
               unproven=sum(not s.proven for _, s in rows), ilp_ii=one.ii, ilp_drop=one.drop)
    t0 = time.perf_counter()
    g = greedy(problem)
    row["greedy_s"] = time.perf_counter() - t0
    row["greedy_ii"] = g.ii if g else None
    row["greedy_format"] = g.choices[0].format if g else None
    row["ratio"] = g.ii / one.ii if g else None
    # equal accuracy: int8 everywhere for both
    p8 = replace(problem, candidates=_only(cands, "int8"))
    try:
        ilp8 = optimise(p8, time_limit=time_limit)
        g8 = greedy_folding(p8, "int8")
        row["ilp_ii_int8"] = ilp8.ii
        row["greedy_ii_int8"] = g8.ii if g8 else None
        row["ratio_int8"] = g8.ii / ilp8.ii if g8 else None
    except Infeasible as exc:
        row["note"] = f"int8 only: {exc}"
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=20)
    p.add_argument("--util", type=float, default=0.8)
    p.add_argument("--time-limit", type=float, default=20.0, help="CBC limit per solve [s]")
    p.add_argument("--front-budget", type=float, default=120.0, help="limit per front [s]")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--train", action="store_true", help="train zoo models that are not cached")
    p.add_argument("--only", default=None, help="comma-separated network names")
    p.add_argument("--out", default="build/dse_benchmark.csv")
    args = p.parse_args(argv)
    rows = []
    only = set(args.only.split(",")) if args.only else None
    for name, w, sens in networks(args.train, args.frames):
        if only and name not in only:
            continue
        for dev in DEVICES:
            r = bench(name, w, sens, dev, points=args.points, util=args.util,
                      time_limit=args.time_limit, front_budget=args.front_budget)
            print(r, file=sys.stderr, flush=True)
            rows.append(r)
    df = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"{args.points}-point fronts, util {args.util}")
    print(df.to_markdown(index=False, floatfmt=".3g") if _has_tabulate() else df.to_string())
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
