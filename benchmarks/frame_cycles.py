"""Cycles per frame, frame by frame: Verilator against the DSE's cycle model at each frame's own
activity.

A sparse network's frames differ in their active sites, so the II the DSE predicts (at the mean
activity of the frames it measured) and the one a few simulated frames run at differ for two
reasons: the simulated frames are denser or sparser than that mean, and the cycle model is off.
This separates them. For a built design (``codesign build`` directory with a data set), ``N + 1``
frames of its test split run back to back with no stalls in Verilator (the first one, into an
empty pipeline, is left out); each later frame's interval (end-of-frame beat to end-of-frame
beat) is set beside :func:`cosim.cycles.predicted_frame_cycles` (the largest layer's
:func:`dse.cost.cycles` at that frame's active sites, and which layer that is).

    python benchmarks/frame_cycles.py BUILD_DIR [--frames 20] [--label NAME] [--out reports]

Writes ``frame_cycles_<label>.md``, ``.csv`` and ``.png`` (measured against predicted per frame)
and prints the summary: the sum over the frames of both, their ratio, the per-frame ratios' range,
and the ratio by bottleneck layer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(Path(__file__).resolve().parent))  # _checks (after the root: dse.py is not dse)


def measure(build: Path, frames: int, *, seed: int = 0) -> list[dict]:
    """One row per frame after the first: its active input sites, the measured interval, the
    predicted one and the predicted bottleneck layer."""
    from cosim.cycles import predicted_frame_cycles
    from cosim.golden import network_golden
    from cosim.manifest import load_manifest
    from cosim.session import expected_frames, simulate

    manifest = load_manifest(build)
    bundle, qgraph, golden = network_golden(manifest)
    if bundle is None:
        raise SystemExit(f"error: the model of {build} has no data set (built from a QGraph "
                         "file): this benchmark simulates its test split")
    got = bundle.frames(frames + 1, seed=seed, split="test")
    if len(got) < frames + 1:
        raise SystemExit(f"error: the test split of {manifest.model!r} has {len(got)} frames; "
                         f"give --frames {len(got) - 1} or fewer")
    expected = expected_frames(got, golden)
    t0 = time.time()
    print(f"frame_cycles: {len(got)} frames through Verilator ...", file=sys.stderr, flush=True)
    res = simulate(manifest, got, expected=expected)
    if res.stopped or res.mismatches:
        raise SystemExit(f"error: the simulation did not pass ({res.stopped or res.mismatches[0]})")
    print(f"frame_cycles: simulated in {time.time() - t0:.0f} s, 0 mismatches", file=sys.stderr)
    pred = predicted_frame_cycles(qgraph, manifest.point, got)
    return [{"frame": i, "active_in": len(got[i][0]), "measured": res.cycles_per_frame[i],
             "predicted": pred[i][0], "bottleneck": pred[i][1]}
            for i in range(1, len(got)) if pred[i][0]]


def summary(rows: list[dict]) -> dict:
    m = sum(r["measured"] for r in rows)
    p = sum(r["predicted"] for r in rows)
    ratios = [r["measured"] / r["predicted"] for r in rows]
    by = {}
    for r in rows:
        a = by.setdefault(r["bottleneck"], [0, 0, 0])
        a[0] += 1
        a[1] += r["measured"]
        a[2] += r["predicted"]
    return {"frames": len(rows), "measured": m, "predicted": p, "ratio": m / p,
            "ratio_min": min(ratios), "ratio_max": max(ratios),
            "by_bottleneck": {k: {"frames": v[0], "ratio": v[1] / v[2]} for k, v in by.items()}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("build", help="a `codesign build` directory")
    p.add_argument("--frames", type=int, default=20, help="frames measured (after the first)")
    p.add_argument("--label", default=None, help="report name (default: the build's parent)")
    p.add_argument("--out", default=str(ROOT / "reports"))
    args = p.parse_args(argv)
    from _checks import not_a_build, write_error

    build = Path(args.build)
    if why := not_a_build(build):
        print(f"error: {why}", file=sys.stderr)
        return 2
    if args.frames < 1:
        print(f"error: --frames must be at least 1, not {args.frames}", file=sys.stderr)
        return 2
    label = args.label or build.resolve().parent.name
    out = Path(args.out)
    # an output that cannot be written fails before the simulation, not after it
    if e := write_error(out, f"frame_cycles_{label}"):
        print(f"error: cannot write to --out {out} ({e.strerror}); give a writable directory",
              file=sys.stderr)
        return 2
    rows = measure(build, args.frames)
    if not rows:
        print("error: every frame after the first is empty: nothing to compare", file=sys.stderr)
        return 2
    s = summary(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from common.fsutil import write_png, write_text

    point = json.loads((build / "manifest.json").read_text()).get("point") or {}
    ii_dse = (point.get("dse") or {}).get("ii_cycles")
    flow_point = build / ".." / "point.json"  # a `codesign flow` run keeps the DSE's figures there
    if ii_dse is None and flow_point.is_file():
        ii_dse = (json.loads(flow_point.read_text()).get("dse") or {}).get("ii_cycles")
    lines = [f"# Cycles per frame, frame by frame: {label}", "",
             f"`python benchmarks/frame_cycles.py {args.build} --frames {args.frames}`: "
             f"{s['frames'] + 1} frames of the test split back to back in Verilator, no stalls, "
             "the first (pipeline fill) left out. *Predicted*: the largest layer's cycles "
             "(`dse.cost.cycles`) at that frame's own active sites; *bottleneck*: that layer.", "",
             f"- Sum over {s['frames']} frames: measured {s['measured']:,} cycles, predicted "
             f"{s['predicted']:,} (x{s['ratio']:.3f}); per frame x{s['ratio_min']:.3f} to "
             f"x{s['ratio_max']:.3f}.",
             f"- Measured mean {s['measured'] / s['frames']:,.0f} cycles per frame"
             + (f" against the DSE's II of {ii_dse:,} at its measured frames' mean activity "
                f"(x{s['measured'] / s['frames'] / ii_dse:.3f})." if ii_dse else "."),
             "- By bottleneck layer: " + "; ".join(
                 f"{k} ({v['frames']} frames) x{v['ratio']:.3f}"
                 for k, v in s["by_bottleneck"].items()) + ".", "",
             "| frame | active input sites | measured | predicted | ratio | bottleneck |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['frame']} | {r['active_in']:,} | {r['measured']:,} | "
                     f"{r['predicted']:,} | {r['measured'] / r['predicted']:.3f} | "
                     f"{r['bottleneck']} |")
    lines += ["", f"![measured against predicted](frame_cycles_{label}.png)", ""]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k in s["by_bottleneck"]:
        g = [r for r in rows if r["bottleneck"] == k]
        ax.scatter([r["predicted"] for r in g], [r["measured"] for r in g], label=k, s=18)
    lo = min(min(r["predicted"], r["measured"]) for r in rows)
    hi = max(max(r["predicted"], r["measured"]) for r in rows)
    ax.plot([lo, hi], [lo, hi], "k:", lw=1, label="measured = predicted")
    ax.plot([lo, hi], [1.1 * lo, 1.1 * hi], "k--", lw=0.6, alpha=0.5, label="+10 %")
    ax.set_xlabel("predicted cycles (at the frame's activity)")
    ax.set_ylabel("measured cycles (Verilator)")
    ax.set_title(f"{label}: cycles per frame, bottleneck layer by colour", fontsize=10)
    ax.legend(fontsize=8)
    write_text(out / f"frame_cycles_{label}.csv", pd.DataFrame(rows).to_csv(index=False))
    write_png(out / f"frame_cycles_{label}.png", fig)
    write_text(out / f"frame_cycles_{label}.md", "\n".join(lines))
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()
                      if k != "by_bottleneck"}))
    print(f"wrote {out / f'frame_cycles_{label}.md'}, .csv, .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
