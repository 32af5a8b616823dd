"""``codesign dse``: integer-programming design-space exploration and the latency-accuracy front.

Writes ``DIR/pareto.csv``, ``DIR/pareto.png``, ``DIR/point_<k>.json`` (design points for
``codesign build``) and ``DIR/choices.csv`` (every priced candidate); see :mod:`dse.api`.
"""

from __future__ import annotations

import sys

from ..options import arg, check_count, check_fraction, check_mhz, check_seconds
from . import add_model_arguments, resolve_model

NAME = "dse"
HELP = "ILP design-space exploration: Pareto front of latency vs predicted accuracy"


def locks(args) -> list:
    """The directories this command writes (held locked while it runs)."""
    return [args.out]


def add_arguments(p):
    add_model_arguments(p)
    p.add_argument("--device", required=True, help="FPGA part, e.g. XCZU3EG, XCZU9EG, XC7Z020")
    p.add_argument("--util", type=arg(check_fraction, "--util"), default=0.8,
                   help="utilisation ceiling in (0, 1]")
    p.add_argument("--formats", default="int8,int4,dybit4",
                   help="weight formats the explorer may choose (comma-separated)")
    p.add_argument("--clock-mhz", type=arg(check_mhz, "--clock-mhz"), default=200.0,
                   help="clock for fps and latency")
    p.add_argument("--points", type=arg(check_count, "--points", high=1000), default=10,
                   help="accuracy bounds to sweep")
    p.add_argument("--objective", choices=("ii", "latency"), default="ii",
                   help="minimise the initiation interval (throughput) or the frame latency")
    p.add_argument("--clock", choices=("estimate", "assumed"), default="estimate",
                   help="estimate: each design at its own estimated Fmax (dse/fmax.py), the "
                        "front minimises time; assumed: every design at --clock-mhz, the front "
                        "minimises cycles")
    p.add_argument("--least", choices=("resources", "multipliers"), default="resources",
                   help="among the designs of a point's II (and time): resources, the smallest "
                        "share of the budget (default); multipliers, the fewest multipliers (the "
                        "most MAC utilisation), then the smallest share")
    p.add_argument("--frames", type=arg(check_count, "--frames", high=100_000), default=32,
                   help="test frames to measure activity on")
    p.add_argument("--time-limit", type=arg(check_seconds, "--time-limit"), default=20.0,
                   help="CBC seconds per point (an unproven point is marked proven=False)")
    p.add_argument("--max-par", type=arg(check_count, "--max-par", high=4096), default=64,
                   help="largest lanes / pe considered")
    p.add_argument("--check", type=arg(check_count, "--check", low=0, high=1000), default=None,
                   help="front points whose accuracy is measured against the prediction "
                        "(default: every point)")
    p.add_argument("--finetune", type=arg(check_count, "--finetune", low=0, high=10_000),
                   default=0, metavar="N",
                   help="also fine-tune every front point N epochs in its formats (QAT) and "
                        "measure the gain; the weights go to DIR/finetuned/point_<k>/model.pt")
    p.add_argument("--out", required=True, help="output directory")


def run(args) -> int:
    from dse.api import explore

    args.model = resolve_model(args.model, args.calib, args.val)
    def log(msg):
        print(msg, file=sys.stderr)

    from common.fsutil import undo_new_on_failure

    with undo_new_on_failure(args.out):  # an infeasible budget leaves no half of the outputs
        df = explore(args.model, args.device, out=args.out, util=args.util,
                     formats=args.formats, clock_mhz=args.clock_mhz, points=args.points,
                     objective=args.objective, frames=args.frames, time_limit=args.time_limit,
                     max_par=args.max_par, check=args.check, finetune=args.finetune,
                     clock=args.clock, least=args.least, log=log)
    cols = ["point", "accuracy_pred", "accuracy_measured", "ii_cycles", "latency_cycles", "fps",
            "dsp", "lut", "bram18", "format_counts"]
    if "fmax_est_mhz" in df:
        cols[6:6] = ["fmax_est_mhz", "fps_at_fmax_est"]
    if args.finetune:
        cols.insert(3, "accuracy_finetuned")
    print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {args.out}/pareto.csv, pareto.png, point_*.json, choices.csv")
    return 0
