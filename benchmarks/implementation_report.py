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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("builds", nargs="+", metavar="LABEL=BUILD_DIR")
    p.add_argument("--out", default=str(ROOT / "reports"))
    p.add_argument("--note", default="", help="a paragraph under the title: what the builds are")
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    rows = []
    for item in args.builds:
        label, _, d = item.partition("=")
        rows.append(row(label, Path(d)))
    df = pd.DataFrame(rows)
    out = Path(args.out)
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
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].bar(df["design"], df["fmax_mhz"], color="tab:blue")
    axes[0].axhline(125, color="k", ls="--", lw=0.8)
    axes[0].text(0, 127, "goal 125 MHz", fontsize=8)
    axes[0].set_ylabel("measured Fmax (MHz)")
    axes[1].bar(df["design"], df["us_per_frame"], color="tab:orange")
    axes[1].set_ylabel("us per frame at the measured Fmax")
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    fig.suptitle("nextpnr-ecp5, LFE5U-85F speed 6")
    fig.tight_layout()
    write_png(out / "implementation.png", fig)
    print(df[cols].to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
