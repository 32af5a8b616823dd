"""What counting time instead of cycles buys: the DSE's front with ``--clock estimate`` against
``--clock assumed`` on the same budget.

For each (model, device), :func:`dse.api.explore` runs twice: once minimising cycles (every design
at one assumed clock) and once minimising time at each design's own estimated Fmax
(:mod:`dse.fmax`, the device family's fitted model: nextpnr-measured blocks on ECP5, the
``synth_xilinx`` timing estimate on Xilinx parts). Both fronts are then read in the same units:
the time per frame (II) at each point's estimated Fmax. For each point of the cycles front, the
table gives the fastest point of the time front predicted at least as accurate, and the
speed-up. The figures are estimates of the clock, as every Fmax the DSE gives before a design is
placed and routed.

Writes ``reports/clock_objective.csv``, ``.md`` and ``.png``.

    python benchmarks/clock_objective.py --model digits --model eventdigits \\
        --device XCZU3EG --device XC7Z020 --device LFE5U-85F
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.fsutil import atomic_path, write_png, write_text  # noqa: E402

MODES = ("assumed", "estimate")


def run(model: str, device: str, work: Path, points: int) -> dict:
    """Both fronts of ``model`` on ``device``, with the time per frame at the estimated Fmax."""
    from dse.api import explore

    out = {}
    for mode in MODES:
        print(f"{model} on {device}, --clock {mode}", flush=True)
        t0 = time.perf_counter()
        df = explore(model, device, out=work / f"{model}_{device}_{mode}", points=points,
                     check=0, clock=mode, log=lambda m: print("  " + m, flush=True))
        df["seconds"] = round(time.perf_counter() - t0, 1)
        df["us_per_frame"] = df["ii_cycles"] / df["fmax_est_mhz"]
        out[mode] = df
    return out


def compare(model: str, device: str, fronts: dict) -> list[dict]:
    """Per point of the cycles front: the fastest time-front point predicted as accurate."""
    rows = []
    t = fronts["estimate"]
    for _, r in fronts["assumed"].iterrows():
        ok = t[t["accuracy_pred"] >= r["accuracy_pred"] - 1e-12]
        best = ok.sort_values("us_per_frame").iloc[0] if len(ok) else None
        rows.append({
            "model": model, "device": device, "cycles_point": int(r["point"]),
            "accuracy_pred": round(float(r["accuracy_pred"]), 4),
            "cycles_ii": int(r["ii_cycles"]), "cycles_fmax_est": float(r["fmax_est_mhz"]),
            "cycles_us": round(float(r["us_per_frame"]), 3),
            "time_point": None if best is None else int(best["point"]),
            "time_ii": None if best is None else int(best["ii_cycles"]),
            "time_fmax_est": None if best is None else float(best["fmax_est_mhz"]),
            "time_us": None if best is None else round(float(best["us_per_frame"]), 3),
            "time_formats": None if best is None else str(best["format_counts"]),
            "speedup": None if best is None else round(r["us_per_frame"]
                                                        / best["us_per_frame"], 3),
            "seconds_cycles": float(r["seconds"]),
            "seconds_time": float(t["seconds"].iloc[0]),
        })
    return rows


def fastest(results: dict) -> list[dict]:
    """Per model and device: each front's fastest point in time (us per frame at its estimated
    Fmax), and the speed-up of the time front's over the cycles front's."""
    rows = []
    for (model, device), fronts in results.items():
        row = {"model": model, "device": device}
        for mode, tag in zip(MODES, ("cycles", "time"), strict=True):
            r = fronts[mode].sort_values("us_per_frame").iloc[0]
            row.update({f"{tag}_point": int(r["point"]), f"{tag}_ii": int(r["ii_cycles"]),
                        f"{tag}_fmax_est": float(r["fmax_est_mhz"]),
                        f"{tag}_us": round(float(r["us_per_frame"]), 3),
                        f"{tag}_accuracy_pred": round(float(r["accuracy_pred"]), 4)})
        row["speedup"] = round(row["cycles_us"] / row["time_us"], 3)
        rows.append(row)
    return rows


def markdown(df) -> str:
    """A pipe table of ``df`` (no optional dependency)."""
    def cell(v):
        return "" if v is None or v != v else f"{v:g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in df.itertuples(index=False)]
    return "\n".join(lines)


def plot(path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8), squeeze=False)
    for ax, ((model, device), fronts) in zip(axes[0], results.items(), strict=True):
        for mode, style in zip(MODES, ("s--", "o-"), strict=True):
            df = fronts[mode].sort_values("us_per_frame")
            ax.plot(df["us_per_frame"], 100 * df["accuracy_pred"], style,
                    label="cycles at an assumed clock" if mode == "assumed"
                    else "time at each design's estimated Fmax")
        ax.set_title(f"{model} on {device}", fontsize=9)
        ax.set_xlabel("us per frame (II) at the estimated Fmax")
        ax.set_ylabel("predicted accuracy [%]")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("DSE fronts: minimising cycles or time (both read at the estimated Fmax)",
                 fontsize=10)
    fig.tight_layout()
    write_png(path, fig, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", default=None)
    p.add_argument("--device", action="append", default=None)
    p.add_argument("--points", type=int, default=6)
    p.add_argument("--work", default=str(ROOT / "build" / "clock_objective"))
    p.add_argument("--out", default=str(ROOT / "reports"))
    args = p.parse_args(argv)
    import pandas as pd

    models = args.model or ["digits", "eventdigits"]
    parts = args.device or ["XCZU3EG", "XC7Z020", "LFE5U-85F"]
    results, rows = {}, []
    for model in models:
        for device in parts:
            fronts = run(model, device, Path(args.work), args.points)
            results[(model, device)] = fronts
            rows += compare(model, device, fronts)
    table = pd.DataFrame(rows)
    out = Path(args.out)
    with atomic_path(out / "clock_objective.csv") as tmp:
        table.to_csv(tmp, index=False)
    plot(out / "clock_objective.png", results)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    below = sorted({f"{r.model} on {r.device}" for r in table.itertuples() if r.speedup < 1})
    lines = [
        "# Minimising time at the estimated clock vs cycles at an assumed one",
        "",
        f"`python benchmarks/clock_objective.py` on {stamp} ({args.points} points asked per "
        "front, accuracy predicted, not measured).",
        "",
        "Each point of the cycles front (`--clock assumed`) beside the fastest point of the time "
        "front (`--clock estimate`, the default) predicted at least as accurate; both in us per "
        "frame (II) at the point's estimated Fmax (an estimate: nextpnr-fitted blocks on ECP5, "
        "the synth_xilinx timing estimate on Xilinx parts).",
        "",
        markdown(table),
        "",
        *([f"A speed-up below 1 ({', '.join(below)}): "
           "each front keeps only the points asked, spread evenly from the fastest to the most "
           "accurate, so the time front may hold no point between two accuracies that the "
           "cycles front has one between; its match is then a more accurate, slower point. "
           "Ask for more points (`--points`) to compare there.", ""]
          if below else []),
        "The fastest point of each front in time (it may not be the front's point 0: a "
        "cycles front is numbered by cycles), with its predicted accuracy:",
        "",
        markdown(pd.DataFrame(fastest(results))),
        "",
        "![fronts](clock_objective.png)",
        "",
    ]
    write_text(out / "clock_objective.md", "\n".join(lines))
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
