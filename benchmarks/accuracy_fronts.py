"""Fronts of the built-in networks with predicted and measured accuracy, and the predictor's error.

For every (model, device): ``codesign dse --points P`` into ``WORK/<model>_<device>`` (or, with
``--collect``, the directories an earlier run left there), then one table row per front: points,
the predictor in use, its mean and worst absolute error on held-out design points (front points
other than all-int8, and 12 random mixes), the additive predictor's on the same points, the
held-out set sizes, and the points whose measured accuracy breaks their bound. Writes
``reports/accuracy_fronts.md`` and ``.csv``.

    python benchmarks/accuracy_fronts.py --model digits --model eventdigits --model eye \\
        --device XCZU3EG --device XCZU9EG
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _pts(v) -> float:
    """A predictor error in points; NaN where nothing was held out to measure it on."""
    return float("nan") if v is None else 100 * v


def row(model: str, device: str, d: Path) -> dict:
    import pandas as pd

    p = json.loads((d / "predictor.json").read_text())
    front = pd.read_csv(d / "pareto.csv")
    fj = d / "front.json"
    searched = json.loads(fj.read_text()) if fj.is_file() else {}
    return {
        "model": model, "device": device, "points": len(front),
        "ii_levels": len(searched.get("ii_levels") or []) or "",
        "note": searched.get("note") or "",
        "seen": p.get("front_points_seen", 0),
        "ii_cycles": "/".join(f"{v:,}" for v in front["ii_cycles"]),
        "accuracy_pred": "/".join(f"{100 * v:.2f}" for v in front["accuracy_pred"]),
        "accuracy_measured": "/".join(f"{100 * v:.2f}" for v in front["accuracy_measured"]),
        "metric": p["metric"], "sens": p["sens_samples"], "eval": p["eval_samples"],
        "predictor": p["predictor"], "held_out": p["held_out_points"],
        "mae_pts": _pts(p["mae"]), "max_pts": _pts(p["max_error"]),
        "mae_additive_pts": _pts(p["mae_additive"]),
        "max_additive_pts": _pts(p["max_error_additive"]),
        "ilp_model": p.get("predictor_ilp", p["predictor"]),
        "mae_ilp_pts": _pts(p.get("mae_ilp", p["mae"])),
        "max_ilp_pts": _pts(p.get("max_error_ilp", p["max_error"])),
        "finetune_gain": ("/".join(f"{100 * v:+.2f}" for v in front["finetune_gain"])
                          if "finetune_gain" in front else ""),
        "bound_broken": ",".join(str(int(k)) for k in front.loc[~front["bound_ok"], "point"]),
    }


def main(argv=None) -> int:
    import pandas as pd

    from common.fsutil import atomic_path, write_text

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--device", action="append", required=True)
    ap.add_argument("--points", type=int, default=6)
    ap.add_argument("--finetune", type=int, default=0,
                    help="QAT epochs per front point (codesign dse --finetune)")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "accuracy_fronts")
    ap.add_argument("--collect", action="store_true", help="only read earlier runs in --work")
    ap.add_argument("--reports", type=Path, default=ROOT / "reports")
    args = ap.parse_args(argv)
    rows = []
    for m in args.model:
        for dev in args.device:
            d = args.work / f"{m}_{dev}"
            if not args.collect:
                print(f"== {m} on {dev}", flush=True)
                subprocess.run([sys.executable, "-m", "codesign", "dse", "--model", m, "--device",
                                dev, "--points", str(args.points), "--finetune",
                                str(args.finetune), "--out", str(d)], check=True)
            rows.append(row(m, dev, d))
    df = pd.DataFrame(rows)
    args.reports.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.reports / "accuracy_fronts.csv") as tmp:
        df.to_csv(tmp, index=False)
    lines = [
        "# Fronts with predicted and measured accuracy",
        "",
        f"`python benchmarks/accuracy_fronts.py {' '.join('--model ' + m for m in args.model)} "
        f"{' '.join('--device ' + d for d in args.device)}` (`codesign dse --points "
        f"{args.points}"
        + (f" --finetune {args.finetune}" if args.finetune else "")
        + "`, 80 % utilisation). Errors are in accuracy points over held-out design "
        "points (the front's and 12 random mixes, less those measured before: all-int8 and any "
        "calibration design, predicted by its measurement; `seen` counts the front's), measured "
        "on the `eval` set; `predictor` gives each point's predicted accuracy, `ILP model` is "
        "the linear model the integer program sums; `II levels`: the initiation intervals the "
        "candidates allow between the fastest and the most accurate design, each searched for "
        "its most accurate design; see docs/ACCURACY.md."
        + (" `QAT gain`: measured gain of each front point after the fine-tune." if args.finetune
           else ""),
        "",
        "| model | device | points | II levels | II [cycles] | predicted [%] | measured [%] "
        "| metric | sens / eval samples | predictor | held-out points (seen) "
        "| mean / worst error | ILP model: mean / worst | additive: mean / worst "
        "| bound broken |" + (" QAT gain [points] |" if args.finetune else ""),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        + ("---|" if args.finetune else ""),
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['device']} | {r['points']} | {r['ii_levels']} | "
            f"{r['ii_cycles']} | {r['accuracy_pred']} | "
            f"{r['accuracy_measured']} | {r['metric']} | {r['sens']:,} / {r['eval']:,} | "
            f"{r['predictor']} | {r['held_out']} ({r['seen']}) | "
            f"{r['mae_pts']:.2f} / {r['max_pts']:.2f} | "
            f"{r['ilp_model']}: {r['mae_ilp_pts']:.2f} / {r['max_ilp_pts']:.2f} | "
            f"{r['mae_additive_pts']:.2f} / {r['max_additive_pts']:.2f} | "
            f"{r['bound_broken'] or '-'} |" + (f" {r['finetune_gain']} |" if args.finetune
                                               else ""))
    notes = [f"- {r['model']} on {r['device']}: {r['note']}" for r in rows if r["note"]]
    if notes:
        lines += ["", "Fewer points than asked, in the DSE's words (`dse/front.json`):", "",
                  *notes]
    write_text(args.reports / "accuracy_fronts.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
