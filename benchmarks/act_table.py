"""Yosys LUT / FF / block-RAM counts of the table activation block against the DSE's price.

:class:`hw.act.ActTable` alone (a 16-channel 8x8 stream), synthesised with
:func:`hw.synth.synthesize` for UltraScale+ (``xcup``), 7 series (``xc7``) and ECP5 (``ecp5``;
LUT4 sites), over (input bits, output bits, lanes, tables) settings, each with two table
contents: a smooth one (SiLU, what activations are) and a random one (no structure for synthesis
to share). The price is :meth:`models.ops.act.ActTable.stage_price` without its input FIFO (the
block alone); it assumes an incompressible table, so it should be close to the random table's
count and above the smooth one's. Writes ``reports/act_table.md``, ``.csv`` and ``.png``.

    python benchmarks/act_table.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FAMILIES = ("ecp5", "xc7", "xcup")
#: (input bits, output bits, lanes, tables): int8 -> int8 at 1, 4 and 16 lanes, a 4-bit unsigned
#: input (5-bit lanes), a 5-bit output, and a PReLU's table per channel (16 channels, 4 lanes)
SETTINGS = ((8, 8, 1, 1), (8, 8, 4, 1), (8, 8, 16, 1), (5, 8, 4, 1), (8, 5, 8, 1),
            (8, 8, 4, 16))
C, H, W = 16, 8, 8


def _tables(bits, out_bits, tables, kind, seed):
    import torch

    from models.ops.act import act_table

    lo, hi = -(1 << (out_bits - 1)) + 1, (1 << (out_bits - 1)) - 1
    if kind == "random":
        rng = random.Random(seed)
        rows = [[rng.randint(lo, hi) for _ in range(1 << bits)] for _ in range(tables)]
        return rows if tables > 1 else rows[0]
    # SiLU (or a PReLU per channel) over the input's range onto the output's
    in_hi = (1 << (bits - 1)) - 1
    s_in = 6.0 / in_hi
    if tables > 1:
        slopes = torch.linspace(-0.25, 0.25, tables, dtype=torch.float64)

        def fn(v):
            return torch.where(v >= 0, v, v * slopes)
        s_out = s_in * in_hi / hi
    else:
        fn = torch.nn.functional.silu
        s_out = 6.0 / hi
    t = act_table(fn, in_lo=-in_hi, in_hi=in_hi, in_scale=s_in, out_scale=s_out, lo=lo, hi=hi,
                  channels=tables)
    return t.tolist()


def run(workdir: Path) -> list[dict]:
    from dse.cost import for_family
    from hw.act import ActTable
    from hw.stream import TokenShape
    from hw.synth import synthesize
    from models.ops import _price
    from models.ops.act import ActTable as Op

    rows = []
    for fam in FAMILIES:
        model = for_family(fam)
        for bits, out_bits, lanes, tables in SETTINGS:
            stage = {"in_shape": (C, H, W), "bits": bits, "out_bits": out_bits}
            if tables > 1:
                stage["act_tables"] = tables
            full = Op().stage_price(stage, lanes=lanes, coord_bits=_price.coord_bits((C, H, W)),
                                    model=model)
            fifo = Op().input_fifo_price(stage, lanes=lanes, model=model)
            for kind in ("smooth", "random"):
                table = _tables(bits, out_bits, tables, kind, seed=bits * out_bits + lanes)
                dut = ActTable(shape=TokenShape(height=H, width=W, channels=C, lanes=lanes,
                                                data_width=bits), table=table, out_bits=out_bits)
                t0 = time.time()
                r = synthesize(dut, name="act", family=fam,
                               workdir=workdir / f"{fam}_{bits}_{out_bits}_{lanes}_{tables}_{kind}")
                row = {"family": fam, "in_bits": bits, "out_bits": out_bits, "lanes": lanes,
                       "tables": tables, "table": kind, "lut": r.get("lut", 0),
                       "lut_price": round(full["lut"] - fifo["lut"]), "ff": r.get("ff", 0),
                       "ff_price": round(full["ff"] - fifo["ff"]),
                       "bram18": r.get("bram18", 0), "bram18_price": full["bram18"],
                       "seconds": round(time.time() - t0, 1)}
                rows.append(row)
                print(f"{fam:5} {bits}->{out_bits} bits, {lanes:2} lanes, {tables:2} table(s), "
                      f"{kind:6}: LUT {row['lut']:5} (price {row['lut_price']}), FF {row['ff']} "
                      f"({row['ff_price']}), BRAM18 {row['bram18']} ({row['bram18_price']})",
                      flush=True)
    return rows


def write(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = ["# The table activation block: Yosys against the price", "",
             "Written by `python benchmarks/act_table.py`: `hw.act.ActTable` alone on a 16-channel "
             "8x8 stream, synthesised per family (ECP5 LUTs are LUT4 sites), with a smooth table "
             "(SiLU; a PReLU's per channel) and a random one. The price "
             "(`models.ops.act.ActTable.stage_price` without its input FIFO) assumes an "
             "incompressible table.", "",
             "| family | bits in -> out | lanes | tables | table | LUT | priced | error | FF | "
             "priced | BRAM18 | priced |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        err = (r["lut_price"] - r["lut"]) / r["lut"] if r["lut"] else 0.0
        lines.append(f"| {r['family']} | {r['in_bits']} -> {r['out_bits']} | {r['lanes']} | "
                     f"{r['tables']} | {r['table']} | {r['lut']} | {r['lut_price']} | "
                     f"{err:+.0%} | {r['ff']} | {r['ff_price']} | {r['bram18']} | "
                     f"{r['bram18_price']} |")
    out.write_text("\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, len(FAMILIES), figsize=(13, 4))
    for ax, fam in zip(axes, FAMILIES, strict=True):
        sub = [r for r in rows if r["family"] == fam]
        for kind, mark in (("smooth", "o"), ("random", "x")):
            pts = [r for r in sub if r["table"] == kind]
            ax.scatter([r["lut_price"] for r in pts], [r["lut"] for r in pts], marker=mark,
                       label=f"{kind} table")
        top = max(max(r["lut"], r["lut_price"]) for r in sub) * 1.1
        ax.plot([0, top], [0, top], "k--", lw=0.8, label="price = Yosys")
        ax.set(title=fam, xlabel="priced LUTs", ylabel="Yosys LUTs")
        ax.legend(fontsize=8)
    fig.suptitle("Table activation block: Yosys LUTs against the price")
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "act_table.md")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(args.workdir or Path(tmp))
    write(rows, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
