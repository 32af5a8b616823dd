"""Co-simulation acceptance matrix: every zoo model x {int8, mixed} point x stall x simulator.

Per model and point the design is built once (no synthesis; ``build/matrix/<model>-<point>`` is
reused while the model's QGraph is unchanged), then for each stall probability (input idle and
output backpressure alike) ``--frames`` data-set frames plus the special frames (empty, full,
single-site, border-only) are simulated on the fast path, exactly as ``codesign sim`` does, and
checked bit for bit against ``QGraph.run_frame``. Then Icarus and Verilator run the same
``--agree-frames`` frames with the same stall pattern and their output traces and cycle counts
are compared. Unstalled cells also give measured / predicted cycles per frame over the data
frames (``meas/model``: mean (min-max) of :mod:`cosim.cycles`, the DSE's cycle model). Rows go
to ``reports/cosim_matrix.csv`` (rewritten atomically after every run;
rows of models not in this run are kept)::

    nice -n 5 .venv/bin/python benchmarks/cosim_matrix.py --models digits,eventdigits
    nice -n 5 .venv/bin/python benchmarks/cosim_matrix.py --models eye

Exit status 1 if any cell mismatches, deadlocks, or the simulators disagree.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.errors import CodesignError  # noqa: E402
from cosim import matrix  # noqa: E402
from cosim.runner import simulator_missing  # noqa: E402
from cosim.session import expected_frames  # noqa: E402


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v]
    except ValueError:
        raise CodesignError(f"--stalls must be comma-separated numbers, not {text!r}") from None


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _table(rows) -> str:
    head = (f"{'check':<14}{'model':<12}{'point':<7}{'stall':>6} {'sim':<10}{'frames':>7}"
            f"{'mism':>6}{'cyc/frame mean':>16}{'max':>9}{'sim cyc/s':>11}"
            f"{'meas/model':>18}  agree")
    lines = [head]
    for r in rows:
        agree = ""
        if r.get("agrees_with"):
            agree = (f"outputs {'same' if str(r['outputs_identical']) == 'True' else 'DIFFER'}, "
                     f"cycles {'same' if str(r['cycles_identical']) == 'True' else 'DIFFER'}")
        ratio = ""
        if r.get("formula_ratio_mean", "") != "":
            ratio = (f"{r['formula_ratio_mean']} ({r['formula_ratio_min']}-"
                     f"{r['formula_ratio_max']})")
        lines.append(
            f"{r['check']:<14}{r['model']:<12}{r['point']:<7}{float(r['stall']):>6.1f} "
            f"{r['sim']:<10}{r['frames']:>7}{r['mismatches']:>6}"
            f"{r['cycles_per_frame_mean']:>16}{r['cycles_per_frame_max']:>9}"
            f"{r['sim_cycles_per_s']:>11}{ratio:>18}  {agree or r.get('deadlock', '')}")
    return "\n".join(lines)


def _bad(row) -> bool:
    return (int(row["mismatches"]) > 0 or bool(row["deadlock"])
            or str(row.get("outputs_identical", "")) == "False"
            or str(row.get("cycles_identical", "")) == "False")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="digits,eventdigits,eye", help="zoo models")
    p.add_argument("--points", default=",".join(matrix.POINTS), help="int8 and/or mixed")
    p.add_argument("--frames", type=int, default=20, help="data-set frames per cell")
    p.add_argument("--stalls", default="0,0.3,0.7", help="stall probabilities")
    p.add_argument("--sims", default="verilator,icarus",
                   help="verilator runs the matrix; with icarus too, the two are compared")
    p.add_argument("--agree-frames", type=int, default=3,
                   help="data-set frames (plus the special frames) in the Icarus/Verilator "
                        "comparison")
    p.add_argument("--agree-points", default="int8", help="points compared on both simulators")
    p.add_argument("--agree-stall", type=float, default=0.3, help="stall of the comparison")
    p.add_argument("--seed", type=int, default=1, help="frame selection seed")
    p.add_argument("--build-root", type=Path, default=ROOT / "build" / "matrix")
    p.add_argument("--csv", type=Path, default=ROOT / "reports" / "cosim_matrix.csv")
    args = p.parse_args(argv)
    try:
        return _run(args)
    except CodesignError as exc:
        _say(f"error: {exc}")
        return 2


def _run(args) -> int:
    models = [m for m in args.models.split(",") if m]
    points = [q for q in args.points.split(",") if q]
    sims = [s for s in args.sims.split(",") if s]
    stalls = _floats(args.stalls)
    for q in points:
        matrix.point_formats([], q)
    for sim in sims:
        reason = simulator_missing(sim)
        if reason:
            raise CodesignError(reason)
    cache = args.build_root / "sim_build"
    old = matrix.read_csv(args.csv)
    rows = []

    def emit(new):
        rows.extend(new)
        for r in new:
            print(json.dumps(r), flush=True)
        matrix.write_csv(args.csv, matrix.merge_rows(old, rows))

    for model in models:
        for point in points:
            t0 = time.perf_counter()
            d = matrix.load_design(model, point, args.build_root)
            _say(f"{model}-{point}: {'built' if d.rebuilt else 'reused'} "
                 f"{d.manifest.root} ({time.perf_counter() - t0:.0f} s)")
            frames, n_special = d.frames(args.frames, seed=args.seed)
            expected = expected_frames(frames, d.golden)
            if "verilator" in sims:
                for stall in stalls:
                    row, _ = matrix.run_cell(d, frames=frames, expected=expected,
                                             n_special=n_special, stall=stall,
                                             cache_dir=cache,
                                             work_dir=d.manifest.root / "sim" / f"s{stall}")
                    emit([row])
            if {"verilator", "icarus"} <= set(sims) and point in args.agree_points.split(","):
                few, n_sp = d.frames(args.agree_frames, seed=args.seed)
                emit(matrix.compare_simulators(
                    d, frames=few, expected=expected_frames(few, d.golden), n_special=n_sp,
                    stall=args.agree_stall, cache_dir=cache))
    print("\n" + _table(rows))
    print(f"\nwritten to {args.csv}")
    return 1 if any(_bad(r) for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
