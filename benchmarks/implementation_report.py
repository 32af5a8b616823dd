"""Collect `codesign implement` results into ``reports/implementation.md`` (+ ``.csv``, ``.png``).

Run ``python benchmarks/implementation_report.py LABEL=BUILD_DIR ...`` after implementing each
build (``codesign build`` then ``codesign implement --build DIR --device LFE5U-85F``). For every
build: the design point (its DSE figures: II, predicted resources), nextpnr's measured Fmax,
utilisation and worst path, the bitstream size and the wall time; with the DSE's resource
predictions beside the measured cells, and the time per frame at the measured clock.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.fsutil import atomic_path, write_png, write_text  # noqa: E402


def row(label: str, build: Path) -> dict:
    man = json.loads((build / "manifest.json").read_text())
    impl = json.loads((build / "implementation.json").read_text())
    dse = (man.get("point") or {}).get("dse") or {}
    layers = (man.get("point") or {}).get("layers") or []
    # a point made by hand has no predictions
    pred = {r: (sum(int(x.get(f"pred_{r}", 0) or 0) for x in layers)
                if any(f"pred_{r}" in x for x in layers) else None)
            for r in ("lut", "ff", "dsp", "bram18")}
    # a build's manifest keeps the point's layers, not the DSE's figures: a `codesign flow` run
    # has them in point.json beside its build (the II at the measured activity, which a sparse
    # network needs); otherwise the manifest's II with every site active (a dense network's II)
    flow_point = build.parent / "point.json"
    if not dse and build.name == "build" and flow_point.is_file():
        dse = json.loads(flow_point.read_text()).get("dse") or {}
    ii = dse.get("ii_cycles") or man.get("ii_dense")
    u, w = impl["utilisation"], (impl.get("worst_paths") or [{}])[0]
    f = impl["fmax_mhz"]
    return {
        "design": label, "model": man.get("model"), "device": impl["device"],
        "formats": " ".join(sorted({x["format"] for x in layers})),
        "ii_cycles": ii, "fmax_mhz": f, "clock_asked_mhz": impl["clock_mhz"],
        "us_per_frame": round(ii / f, 2) if ii and f else None,
        "lut4_used": u["lut"]["used"], "lut4_pred_dse": pred["lut"],
        "lut4_synth": impl["synth_cells"]["lut_total"],
        "ff_used": u["ff"]["used"], "mult18_used": u["dsp"]["used"],
        "mult18_pred_dse": pred["dsp"], "ebr_used": u["bram18"]["used"],
        "ebr_pred_dse": pred["bram18"],
        "lut_share": round(u["lut"]["used"] / u["lut"]["available"], 3),
        "worst_path": f"{w.get('from')} -> {w.get('to')}",
        "worst_logic_ns": w.get("logic_ns"), "worst_routing_ns": w.get("routing_ns"),
        "bitstream_bytes": impl["bitstream"]["bytes"],
        "synth_s": impl["wall"]["synth_s"], "pnr_s": impl["wall"]["pnr_s"],
        "lut_mapper": impl["synth_cells"].get("lut_mapper", "abc9"),
        "router": impl.get("router", "router1"),  # before hw.pnr.ROUTER, nextpnr's default
        "seed": impl.get("seed", 1),
        # every seed's Fmax of an `implement --seeds N` run (the kept one is fmax_mhz)
        "seeds_fmax": " / ".join(f"{t['fmax_mhz']:g}" for t in impl.get("seeds") or [])
                      if len(impl.get("seeds") or []) > 1 else "",
        "dsp_registers": "yes" if impl.get("dsp_registers") else "no",
    }


def _note(md: Path) -> str:
    """The note paragraph under the title of an earlier report (empty if none)."""
    if not md.is_file():
        return ""
    parts = md.read_text().split("\n\n")
    if len(parts) > 2 and not parts[1].startswith("`codesign implement` of each build"):
        return parts[1]
    return ""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("builds", nargs="+", metavar="LABEL=BUILD_DIR")
    p.add_argument("--out", default=str(ROOT / "reports"))
    p.add_argument("--note", default="", help="a paragraph under the title: what the builds are")
    p.add_argument("--append", action="store_true",
                   help="keep the rows of the report in --out (earlier builds, whose directories "
                        "may be gone) and add these builds' after them, replacing a row of the "
                        "same label; without --note the report's note stays")
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    out = Path(args.out)
    builds = []
    for item in args.builds:
        label, _, d = item.partition("=")
        missing = [f for f in ("manifest.json", "implementation.json")
                   if not (Path(d) / f).is_file()]
        if not label or not d or missing:
            print(f"error: {item!r} is not LABEL=BUILD_DIR of an implemented build"
                  + (f" (no {missing[0]}); run `codesign implement` first" if d and missing
                     else ""), file=sys.stderr)
            return 2
        builds.append((label, Path(d)))
    rows = []
    if args.append:
        if not (out / "implementation.csv").is_file():
            print(f"error: --append: no {out / 'implementation.csv'} to add to", file=sys.stderr)
            return 2
        new_labels = {label for label, _ in builds}
        # an empty cell: None, as row() gives a missing prediction ("" for seeds_fmax); a count
        # that pandas read as a float (its column has empty cells) an int again
        rows = [{k: (("" if k == "seeds_fmax" else None) if pd.isna(v)
                     else int(v) if isinstance(v, float) and v.is_integer()
                     and not k.endswith(("_mhz", "_s", "_ns", "_frame", "_share")) else v)
                 for k, v in r.items()}
                for r in pd.read_csv(out / "implementation.csv", keep_default_na=False,
                                     na_values=[""]).to_dict("records")
                if r["design"] not in new_labels]
        if not args.note:
            args.note = _note(out / "implementation.md")
    rows += [row(label, d) for label, d in builds]
    df = pd.DataFrame(rows)
    with atomic_path(out / "implementation.csv") as tmp:
        df.to_csv(tmp, index=False)
    cols = ["design", "formats", "ii_cycles", "fmax_mhz", "us_per_frame", "lut4_used",
            "lut4_pred_dse", "ff_used", "mult18_used", "mult18_pred_dse", "ebr_used",
            "ebr_pred_dse", "bitstream_bytes", "synth_s", "pnr_s", "router", "seed",
            "seeds_fmax", "dsp_registers"]
    lines = ["# Open implementation on ECP5 (nextpnr-ecp5)", ""]
    if args.note:
        lines += [args.note, ""]
    lines += ["`codesign implement` of each build on its device; `*_pred_dse` is the sum of the "
              "point's per-layer predictions by the DSE's ECP5 resource model (stream width "
              "converters not included); `us_per_frame` is the II at the measured Fmax; `seed` "
              "nextpnr's placement seed (`seeds_fmax`: every seed of an `--seeds N` run, the "
              "fastest kept); `dsp_registers`: the multipliers' registers moved into the "
              "MULT18X18Ds (`hw/ecp5_dsp.py`). Wall times were measured with other jobs "
              "sharing the 2 cores.", "",
              "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    lines += ["", "Worst path of each design:", ""]
    lines += [f"- {r['design']}: `{r['worst_path']}`, {r['worst_logic_ns']:.1f} ns logic + "
              f"{r['worst_routing_ns']:.1f} ns routing (LUT mapping: {r['lut_mapper']})"
              for r in rows]
    lines += ["", "![Fmax and time per frame](implementation.png)", ""]
    write_text(out / "implementation.md", "\n".join(lines) + "\n")
    # one horizontal bar per build, labels on the y axis (long labels, many builds), first on top
    n = len(df)
    y = list(range(n))[::-1]
    fig, axes = plt.subplots(1, 2, figsize=(13, 1.2 + 0.32 * n), sharey=True)
    axes[0].barh(y, df["fmax_mhz"], color="tab:blue")
    axes[0].axvline(125, color="k", ls="--", lw=0.8)
    axes[0].text(126, y[0], "goal 125 MHz", fontsize=8, va="center")
    axes[0].set_xlabel("measured Fmax (MHz)")
    axes[1].barh(y, df["us_per_frame"], color="tab:orange")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("us per frame at the measured Fmax (log)")
    axes[0].set_yticks(y, df["design"], fontsize=7)
    fig.suptitle("nextpnr-ecp5, LFE5U-85F speed 6")
    fig.tight_layout()
    write_png(out / "implementation.png", fig)
    print(df[cols].to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
