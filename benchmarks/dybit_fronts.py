"""What DyBit layers buy at equal resources: fronts with and without DyBit on the same budget.

For each (model, device), ``codesign dse`` runs twice on the same budget: with the integer formats
only (``int8,int4``) and with DyBit added (``int8,int4,dybit4``). Every point of both fronts is
measured with the integer golden model on the held-out ``eval`` set. DyBit weights multiply by
shift-add in LUTs (no DSP), so on a DSP-bound budget the DyBit front can reach intervals the
integer front cannot. For each integer-only point the table gives the fastest DyBit-front point
whose *measured* accuracy is at least as high, and the speed-up.

Writes ``reports/dybit_fronts.csv``, ``reports/dybit_fronts.md`` and ``reports/dybit_fronts.png``.

    python benchmarks/dybit_fronts.py --model digits --model eventdigits --device XCZU3EG
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FRONTS = {"int": "int8,int4", "dybit": "int8,int4,dybit4"}


def run(model: str, device: str, work: Path, points: int):
    from dse.api import explore

    out = {}
    for tag, formats in FRONTS.items():
        print(f"{model} on {device}, formats {formats}", flush=True)
        df = explore(model, device, out=work / f"{model}_{device}_{tag}", formats=formats,
                     points=points, log=lambda m: print("  " + m, flush=True))
        df.insert(0, "front", tag)
        df.insert(0, "device", device)
        df.insert(0, "model", model)
        out[tag] = df
    return out


def compare(fronts) -> list[dict]:
    """Per integer-only point: the fastest DyBit-front point measured at least as accurate."""
    rows = []
    d = fronts["dybit"]
    for _, r in fronts["int"].iterrows():
        ok = d[d["accuracy_measured"] >= r["accuracy_measured"] - 1e-12]
        best = ok.sort_values("ii_cycles").iloc[0] if len(ok) else None
        rows.append({
            "model": r["model"], "device": r["device"], "int_point": int(r["point"]),
            "int_ii": int(r["ii_cycles"]), "int_acc": float(r["accuracy_measured"]),
            "int_dsp": int(r["dsp"]), "int_lut": int(r["lut"]),
            "dybit_point": None if best is None else int(best["point"]),
            "dybit_ii": None if best is None else int(best["ii_cycles"]),
            "dybit_acc": None if best is None else float(best["accuracy_measured"]),
            "dybit_dsp": None if best is None else int(best["dsp"]),
            "dybit_lut": None if best is None else int(best["lut"]),
            "dybit_layers": None if best is None else str(best["format_counts"]),
            "speedup": None if best is None else r["ii_cycles"] / best["ii_cycles"],
        })
    return rows


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from common.fsutil import atomic_path, write_png, write_text

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--device", action="append", required=True)
    ap.add_argument("--points", type=int, default=6)
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "dybit_fronts")
    ap.add_argument("--reports", type=Path, default=ROOT / "reports")
    args = ap.parse_args(argv)
    cases = [(m, d) for m in args.model for d in args.device]
    all_fronts, rows, fastest = [], [], []
    fig, axes = plt.subplots(1, len(cases), figsize=(5.2 * len(cases), 4.2), squeeze=False)
    for ax, (m, d) in zip(axes[0], cases, strict=True):
        fronts = run(m, d, args.work, args.points)
        all_fronts += list(fronts.values())
        rows += compare(fronts)
        for tag in FRONTS:
            f = fronts[tag].sort_values("ii_cycles").iloc[0]
            fastest.append(f"| {m} | {d} | `{FRONTS[tag]}` | {len(fronts[tag])} | "
                           f"{int(f['ii_cycles']):,} | {100 * f['accuracy_measured']:.2f} % | "
                           f"{int(f['dsp'])} | {int(f['lut']):,} | {f['format_counts']} |")
        for tag, style in (("int", "s-"), ("dybit", "o-")):
            f = fronts[tag].sort_values("ii_cycles")
            ax.plot(f["ii_cycles"], 100 * f["accuracy_measured"], style,
                    label=f"{FRONTS[tag]}: {len(f)} points")
        ax.set_xlabel("initiation interval [cycles]")
        ax.set_ylabel("measured accuracy [%] (held-out eval set)")
        ax.set_title(f"{m} on {d} (same budget)", fontsize=9)
        ax.set_xlim(left=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    args.reports.mkdir(parents=True, exist_ok=True)
    write_png(args.reports / "dybit_fronts.png", fig, dpi=110)
    with atomic_path(args.reports / "dybit_fronts.csv") as tmp:
        pd.concat(all_fronts).to_csv(tmp, index=False)
    lines = [
        "# What DyBit buys at equal resources",
        "",
        f"`python benchmarks/dybit_fronts.py {' '.join('--model ' + m for m in args.model)} "
        f"{' '.join('--device ' + d for d in args.device)}`: the DSE on the same budget with "
        f"`{FRONTS['int']}` and with `{FRONTS['dybit']}`, every point measured on the held-out "
        "`eval` set. For each integer-only point: the fastest point of the DyBit front whose "
        "measured accuracy is at least as high.",
        "",
        "| model | device | int point: II, accuracy, DSP, LUT | DyBit point: II, accuracy, DSP, "
        "LUT | its formats | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        dyb = ("none as accurate" if r["dybit_ii"] is None else
               f"{r['dybit_ii']:,}, {100 * r['dybit_acc']:.2f} %, {r['dybit_dsp']}, "
               f"{r['dybit_lut']:,}")
        lines.append(
            f"| {r['model']} | {r['device']} | {r['int_ii']:,}, {100 * r['int_acc']:.2f} %, "
            f"{r['int_dsp']}, {r['int_lut']:,} | {dyb} | {r['dybit_layers'] or ''} | "
            + ("" if r["speedup"] is None else f"{r['speedup']:.2f}x") + " |")
    lines += ["", "The fastest design of each front on the same budget:", "",
              "| model | device | formats | points | II | measured accuracy | DSP | LUT | "
              "formats chosen |", "|---|---|---|---|---|---|---|---|---|", *fastest,
              "", "![fronts](dybit_fronts.png)", ""]
    write_text(args.reports / "dybit_fronts.md", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
