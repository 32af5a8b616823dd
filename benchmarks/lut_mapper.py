"""ABC9 against classic ABC as the ECP5 LUT mapper: placed Fmax and LUT4s of blocks alone.

Run ``python benchmarks/lut_mapper.py [--blocks KEY ...] [--seeds N]``. Each block of
``benchmarks/fit_fmax.py``'s sweep (its harness, LFE5U-85F, nextpnr at 150 MHz) is implemented
twice, with ``codesign implement``'s two LUT mappers (``hw.synth.LUT_MAPPERS``), each the fastest
of ``--seeds`` placements; results are cached per mapper under ``--workdir`` by
:func:`fit_fmax.implement_sample`'s rules and written to ``reports/lut_mapper.{csv,md,png}``.
Why it exists: the flow maps with ABC9 except where the WebAssembly ABC9 fails, and the choice
of the default rests on these figures (docs/IMPLEMENT.md, "The LUT mapper").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common.fsutil import atomic_path, write_png, write_text  # noqa: E402

#: The blocks compared by default: a requantizer, a width converter, a wide 1x1 unit and a
#: depthwise window unit (the kinds whose LUT mapping differs most between the mappers).
DEFAULT_BLOCKS = (
    "blockrequant_c_in32_c_out32_dsp_acc_bits19_formatint8_h8_lanes1_pe1_w8",
    "blockwidth_c_in16_c_out16_formatint8_h8_lanes8_pe2_w8",
    "blockconv1x1_c_in32_c_out32_formatint8_h8_lanes4_pe4_w8",
    "blockdwconv3x3_c_in32_c_out32_formatint8_h8_lanes1_pe1_stride1_w8",
)


def implement_block(cfg: dict, workdir: Path, mapper: str, seeds: int) -> dict:
    """One block in its harness with one LUT mapper (:func:`fit_fmax.implement_sample`, cached
    under ``workdir/mapper``), as a row of the report."""
    from fit_fmax import _key, implement_sample

    s = implement_sample(cfg, workdir / mapper, seeds=seeds, lut_mapper=mapper)
    path = s.get("worst_path") or {}
    return {"block": _key(cfg), "mapper": s["cells"].get("lut_mapper", mapper),
            "fmax_mhz": s["fmax_mhz"], "seeds_fmax": s["seeds_fmax"],
            "lut4": s["cells"]["lut"], "ff": s["cells"]["ff"], "worst_from": path.get("from"),
            "worst_to": path.get("to"), "logic_ns": path.get("logic_ns"),
            "routing_ns": path.get("routing_ns"), "seconds": s.get("seconds"),
            "cached": s.get("cached", False)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", nargs="+", default=list(DEFAULT_BLOCKS), metavar="KEY",
                   help="fit_fmax sweep keys (default: four block kinds)")
    p.add_argument("--seeds", type=int, default=3, metavar="N")
    p.add_argument("--workdir", default=str(ROOT / "build" / "lut_mapper"))
    p.add_argument("--out", default=str(ROOT / "reports"))
    args = p.parse_args(argv)
    from fit_fmax import _key, configs

    from hw.pnr import check_tools
    from hw.synth import LUT_MAPPERS

    by_key = {_key(c): c for c in configs("ecp5")}
    unknown = [k for k in args.blocks if k not in by_key]
    if unknown:
        print(f"error: --blocks {unknown[0]}: not a block of fit_fmax's sweep (keys as "
              "build/fit_fmax's directory names, without -seedsN)", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print(f"error: --seeds {args.seeds}: place each block at least once", file=sys.stderr)
        return 2
    check_tools()
    rows = []
    n = len(args.blocks) * len(LUT_MAPPERS)
    for i, key in enumerate(args.blocks):
        for j, mapper in enumerate(LUT_MAPPERS):
            s = implement_block(by_key[key], Path(args.workdir), mapper, args.seeds)
            rows.append(s)
            print(f"[{i * len(LUT_MAPPERS) + j + 1}/{n}] {key} {mapper}: {s['fmax_mhz']} MHz "
                  f"(seeds {s['seeds_fmax']}), {s['lut4']} LUT4"
                  + (" (cached)" if s.get("cached") else f" ({s['seconds']} s)"),
                  file=sys.stderr, flush=True)
    write_report(rows, Path(args.out), args.seeds)
    return 0


def write_report(rows: list[dict], out: Path, seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame([{k: r.get(k) for k in ("block", "mapper", "fmax_mhz", "seeds_fmax",
                                                "lut4", "ff", "worst_from", "worst_to",
                                                "logic_ns", "routing_ns")} for r in rows])
    df["seeds_fmax"] = df["seeds_fmax"].map(lambda v: " / ".join(f"{x:g}" for x in v))
    with atomic_path(out / "lut_mapper.csv") as tmp:
        df.to_csv(tmp, index=False)
    wide = df.pivot(index="block", columns="mapper", values=["fmax_mhz", "lut4"])
    lines = ["# ECP5 LUT mapper: ABC9 against classic ABC, blocks alone", "",
             "`python benchmarks/lut_mapper.py`: each block in `benchmarks/fit_fmax.py`'s harness "
             f"on LFE5U-85F (nextpnr-ecp5 at 150 MHz), the fastest of {seeds} placer seeds, "
             "synthesised by `synth_ecp5` with each mapper (`codesign implement --lut-mapper`). "
             "LUT4: LUT sites (a CCU2C carry cell two).", "",
             "| block | mapper | Fmax MHz | seeds | LUT4 | FF | worst path |",
             "|---|---|---|---|---|---|---|"]
    for r in df.itertuples():
        lines.append(f"| {r.block} | {r.mapper} | {r.fmax_mhz:.1f} | {r.seeds_fmax} | {r.lut4} "
                     f"| {r.ff} | {r.worst_from} -> {r.worst_to} ({r.logic_ns} + "
                     f"{r.routing_ns} ns) |")
    write_text(out / "lut_mapper.md", "\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, what, label in ((axes[0], "fmax_mhz", "Fmax (MHz)"), (axes[1], "lut4", "LUT4")):
        wide[what].plot.barh(ax=ax)
        ax.set_xlabel(label)
        ax.set_ylabel("")
        ax.set_yticklabels([t.get_text().replace("block", "")[:38] for t in ax.get_yticklabels()],
                           fontsize=7)
    axes[0].set_title("placed Fmax, best of seeds")
    axes[1].set_title("LUT4 sites")
    fig.tight_layout()
    write_png(out / "lut_mapper.png", fig)


if __name__ == "__main__":
    sys.exit(main())
