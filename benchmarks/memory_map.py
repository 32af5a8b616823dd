"""Where synth_ecp5 puts a memory (EBR, LUT RAM or LUT4 logic) against the resource model's rule.

Each memory is one Amaranth ``Memory`` of ``width`` x ``depth`` read through a register, as the
generator's memories are read:

- ``rom``: initialised, a synchronous read port (a weight or bias ROM of ``hw.conv3x3`` and the
  others);
- ``ram``: a write port and a synchronous read port (a line-buffer bank, whose asynchronous read
  is registered right after it; a FIFO).

Each is synthesised alone with :func:`hw.synth.synthesize` (``synth_ecp5``), and the mapping Yosys
chose is compared with :func:`models.ops._price.libmap_choice` (the rule the DSE prices with) and
with the depth thresholds the ECP5 model used before it (EBR from 128 words for a RAM; from 2 Kb
and 128 words for a ROM). Writes a table of every disagreement, the counts, a CSV of every sample
and a plot.

``--family xcup`` / ``xc7`` does the same for the AMD parts' RAMs (``synth_xilinx``; a line
buffer's row memory or bank, a FIFO's storage): a grid of 4-32 bits x 64-768 words and as many
random shapes of 2-40 bits x 40-900 words, against :func:`models.ops._price.rule_choice` under
the family's model (:func:`dse.cost.for_family`: the 7 series price their own LUT RAM cells)
and against the rule before it (whole 64 x 7 cells at 16 each, half a LUT per bit of read
multiplexer).

For ECP5 it also fits what a LUT RAM deeper than one cell takes in LUT4 logic (its read
multiplexer and write decode, per read bit by its rows of cells, :func:`lutram_logic_fit`);
``--write-model`` stores that table in ``dse/resource_model_ecp5.json``.

    python benchmarks/memory_map.py [--family ecp5|xcup|xc7] [--quick] [--jobs 2]
                                    [--workdir DIR] [--out FILE.md] [--write-model]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WIDTHS = (4, 8, 9, 16, 18, 24, 32, 36, 48, 64, 72, 128, 144, 288, 576)
DEPTHS = (8, 16, 32, 48, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096)
RAM_WIDTHS = (4, 8, 9, 16, 18, 24, 32, 36, 48, 64, 72, 144)
RAM_DEPTHS = (16, 32, 48, 64, 96, 128, 192, 256, 512, 2048)
QUICK = ((8, 16, 36, 64, 144), (32, 64, 96, 128, 256))

#: The ECP5 model's rule before the memory_libmap rule (dse/resource_model_ecp5.json until
#: 2026-11-25): a RAM in EBR beyond 128 words, a ROM from more than 2 Kb and 128 words.
OLD_RAM_DEPTH, OLD_ROM_BITS, OLD_ROM_DEPTH = 128, 2048, 128


def memory_component(kind: str, width: int, depth: int):
    """One memory, read through a register (see the module docstring)."""
    from amaranth.hdl import Module, unsigned
    from amaranth.lib import wiring
    from amaranth.lib.memory import Memory
    from amaranth.lib.wiring import In, Out

    abits = max(1, (depth - 1).bit_length())

    class Mem(wiring.Component):
        def __init__(self):
            super().__init__({"waddr": In(abits), "raddr": In(abits), "wdata": In(width),
                              "we": In(1), "rdata": Out(width)})

        def elaborate(self, platform):
            m = Module()
            if kind == "rom":
                rnd = random.Random(width * 100003 + depth)
                init = [rnd.getrandbits(width) for _ in range(depth)]
                m.submodules.mem = mem = Memory(shape=unsigned(width), depth=depth, init=init)
            else:
                # ramnrw: a RAM whose reads never meet a write of the same word, so marked
                # (hw.fifo's storage, hw.dense_line_buffer's rows)
                attrs = {"no_rw_check": 1} if kind == "ramnrw" else None
                m.submodules.mem = mem = Memory(shape=unsigned(width), depth=depth, init=[],
                                                attrs=attrs)
                wp = mem.write_port()
                m.d.comb += [wp.addr.eq(self.waddr), wp.data.eq(self.wdata), wp.en.eq(self.we)]
            rp = mem.read_port(domain="sync")
            m.d.comb += [rp.addr.eq(self.raddr), self.rdata.eq(rp.data)]
            return m

    return Mem()


def observed(res: dict) -> str:
    if res["bram18"]:
        return "bram"
    return "lutram" if res.get("lutram") else "logic"


#: The AMD RAM grid (``--family xcup`` / ``xc7``): where the LUT RAM / block RAM boundary lies
#: for line-buffer rows and FIFOs; and the seed of as many random shapes held out from it.
XILINX_RAM_WIDTHS = (4, 8, 16, 24, 32)
XILINX_RAM_DEPTHS = (64, 96, 128, 192, 256, 384, 512, 768)
XILINX_RANDOM_SEED = 7


def xilinx_jobs(quick: bool = False) -> list[tuple]:
    """The AMD RAM grid and its random shapes (2-40 bits x 40-900 words)."""
    if quick:
        return [("ram", w, d) for w in (8, 16) for d in (192, 256, 384)]
    rnd = random.Random(XILINX_RANDOM_SEED)
    shapes = sorted({(rnd.randint(2, 40), rnd.randint(40, 900)) for _ in range(40)})
    return ([("ram", w, d) for w in XILINX_RAM_WIDTHS for d in XILINX_RAM_DEPTHS]
            + [("ram", w, d) for w, d in shapes])


#: The AMD RAM rule before 2026-11-28 (FIFO storage; a line buffer's memories under 4 Kb were
#: always priced in LUT RAM): whole 64 x 7 cells at 16 each, half a LUT per bit per extra row of
#: cells for the read multiplexer and per row for the write demultiplexer.
OLD_XILINX_RAM_LIB = {"block_cost": 129, "block_extra": 14, "lutram_cell_cost": 16,
                      "cell": [64, 7], "mux": 0.5, "demux": 0.5, "logic_cost_ram": 1.0}


def old_xilinx_rule(width: int, depth: int) -> str:
    """Where :data:`OLD_XILINX_RAM_LIB` put a RAM (:func:`models.ops._price.libmap_choice`)."""
    from models.ops._price import libmap_choice

    return libmap_choice(None, width, depth, rom=False, lib=OLD_XILINX_RAM_LIB)


def old_rule(kind: str, width: int, depth: int, family: str = "ecp5") -> str:
    if family != "ecp5":
        return old_xilinx_rule(width, depth)
    if kind == "rom":
        big = width * depth > OLD_ROM_BITS and depth >= OLD_ROM_DEPTH
        return "bram" if big else "logic"
    return "bram" if depth > OLD_RAM_DEPTH else "lutram"


def run_one(job, workdir: Path, family: str = "ecp5") -> dict:
    from amaranth.back import verilog

    from hw.synth import synthesize_verilog

    kind, width, depth = job
    text = verilog.convert(memory_component(kind, width, depth), name="top", emit_src=False)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    d = workdir / (f"{kind}_{width}x{depth}" + ("" if family == "ecp5" else f"_{family}"))
    cached = d / "sample.json"
    if cached.exists() and json.loads(cached.read_text()).get("key") == key:
        return json.loads(cached.read_text())
    t0 = time.perf_counter()
    res = synthesize_verilog(text, top="top", workdir=d, family=family)
    out = {"kind": kind, "width": width, "depth": depth, "key": key,
           "observed": observed(res), "bram18": res["bram18"], "lut": res["lut"],
           "lutram_cells": res.get("lutram", 0), "lut_total": res.get("lut_total", res["lut"]),
           "seconds": round(time.perf_counter() - t0, 1)}
    cached.write_text(json.dumps(out))
    return out


def judge(rows, model, family: str = "ecp5") -> None:
    from models.ops._price import memory_bram18, rule_choice

    for r in rows:
        rom = r["kind"] == "rom"
        r["rule"] = rule_choice(model, r["width"], r["depth"], rom=rom,
                                no_rw_check=r["kind"] == "ramnrw")
        r["old"] = old_rule(r["kind"], r["width"], r["depth"], family)
        r["rule_bram18"] = memory_bram18(r["width"], r["depth"]) if r["rule"] == "bram" else 0
        r["old_bram18"] = memory_bram18(r["width"], r["depth"]) if r["old"] == "bram" else 0


def lutram_logic_fit(rows, cell_depth: int = 16) -> dict:
    """LUT4s a LUT RAM takes beyond its cells (the read multiplexer over its rows of cells and
    the write-enable decode), from the RAMs (``ram``, ``ramnrw``) synth_ecp5 put in LUT RAM
    deeper than one cell: ``per_bit[r] x width + per_row x r`` for ``r`` rows of cells, one
    ``per_bit`` for each row count of the grid and one ``per_row``, by least squares; with the
    errors of that price and of the cells alone (the model before it)."""
    import math

    import numpy as np

    ram = [r for r in rows if r["kind"] != "rom" and r["observed"] == "lutram"
           and r["depth"] > cell_depth]
    if not ram:
        return {"rows": [], "per_bit": [], "per_row": 0.0, "memories": 0}
    n = [math.ceil(r["depth"] / cell_depth) for r in ram]
    counts = sorted(set(n))
    a = np.array([[r["width"] * (k == c) for c in counts] + [k]
                  for r, k in zip(ram, n, strict=True)], dtype=float)
    y = np.array([r["lut"] for r in ram], dtype=float)
    coef = np.linalg.lstsq(a, y, rcond=None)[0]
    err = np.abs(a @ coef - y)
    return {"rows": counts, "per_bit": [round(float(v), 4) for v in coef[:-1]],
            "per_row": round(float(coef[-1]), 4), "memories": len(ram),
            # the widths behind each row count's per_bit
            "widths": [sorted({r["width"] for r, k in zip(ram, n, strict=True) if k == c})
                       for c in counts],
            "lut4_logic": int(y.sum()),
            "mean_abs_error": round(float(err.mean()), 2),
            "max_abs_error": round(float(err.max()), 2),
            "mean_abs_error_without": round(float(y.mean()), 1),
            "max_abs_error_without": int(y.max())}


def write_lutram_logic(path: Path, fit: dict) -> None:
    """Store the fitted table in the ECP5 model's ``memory.lutram_logic`` (what
    :func:`models.ops._price.lutram_logic` prices), with its errors and where it came from."""
    from common.fsutil import write_json

    model = json.loads(path.read_text())
    model["memory"]["lutram_logic"] = {
        **{k: fit[k] for k in ("rows", "per_bit", "per_row")},
        "fit": {k: v for k, v in fit.items()
                if k not in ("rows", "per_bit", "per_row", "widths")}
        | {"source": "benchmarks/memory_map.py --write-model (synth_ecp5, each RAM alone)"}}
    write_json(path, model)


def markdown(rows, seconds: float, family: str = "ecp5") -> str:
    if family != "ecp5":
        return xilinx_markdown(rows, seconds, family)
    n = len(rows)
    rule_ok = sum(r["rule"] == r["observed"] for r in rows)
    old_ok = sum(r["old"] == r["observed"] for r in rows)
    rule_ebr = sum(r["rule_bram18"] == r["bram18"] for r in rows)
    old_ebr = sum(r["old_bram18"] == r["bram18"] for r in rows)
    lines = [
        "# Memory mapping on ECP5: synth_ecp5 against the resource model",
        "",
        "Written by `benchmarks/memory_map.py`: each memory alone, read through a register "
        "(`rom`: a weight ROM; `ram`: a write port and a read port, as a line-buffer bank; "
        "`ramnrw`: the same marked `no_rw_check`, as a FIFO's storage and a dense line "
        f"buffer's rows), synthesised with `synth_ecp5`. {n} memories, {seconds:.0f} s of "
        "Yosys runs.",
        "",
        "| rule | mapping right (EBR / LUT RAM / logic) | EBR count right |",
        "|---|---:|---:|",
        f"| `libmap_choice` (Yosys' memory_libmap costs) | {rule_ok} of {n} | {rule_ebr} of {n} |",
        f"| depth thresholds (the model before) | {old_ok} of {n} | {old_ebr} of {n} |",
        "",
    ]
    wrong = [r for r in rows if r["rule"] != r["observed"]]
    if not wrong:
        lines.append("The rule and Yosys agree on every memory.")
    else:
        lines += ["Where the rule and Yosys disagree:", "",
                  "| kind | width | depth | Yosys | rule | old rule | EBR | LUT4 |",
                  "|---|---:|---:|---|---|---|---:|---:|"]
    for r in wrong:
        lines.append(f"| {r['kind']} | {r['width']} | {r['depth']} | {r['observed']} | "
                     f"{r['rule']} | {r['old']} | {r['bram18']} | {r['lut_total']} |")
    lines += ["", "Where the old thresholds were wrong and the rule is right: "
              f"{sum(r['old'] != r['observed'] and r['rule'] == r['observed'] for r in rows)}; "
              "for example:", "",
              "| kind | width | depth | Yosys | old rule | EBR | LUT4 |",
              "|---|---:|---:|---|---|---:|---:|"]
    fixed = [r for r in rows if r["old"] != r["observed"] and r["rule"] == r["observed"]]
    for r in fixed[:: max(1, len(fixed) // 12)]:
        lines.append(f"| {r['kind']} | {r['width']} | {r['depth']} | {r['observed']} | "
                     f"{r['old']} | {r['bram18']} | {r['lut_total']} |")
    fit = lutram_logic_fit(rows)
    per = dict(zip(fit["rows"], fit["per_bit"], strict=True))
    lines += ["", "## LUT RAM: the logic beyond the cells", "",
              f"The {fit['memories']} RAMs Yosys put in LUT RAM deeper than one cell take "
              f"{fit.get('lut4_logic', 0):,} LUT4 of logic besides their TRELLIS_DPR16X4 cells: "
              "the read multiplexer over the rows of cells and the write-enable decode. Priced "
              "as `per_bit[rows] x width + per_row x rows` (`memory.lutram_logic`, written by "
              "`--write-model`; `models.ops._price.lutram_logic`), per_row "
              f"{fit['per_row']:g}:", "",
              "| rows of cells | " + " | ".join(str(r) for r in fit["rows"]) + " |",
              "|---|" + "---:|" * len(fit["rows"]),
              "| LUT4 per read bit | " + " | ".join(f"{per[r]:g}" for r in fit["rows"]) + " |",
              "", "| price | mean abs error (LUT4) | worst |", "|---|---:|---:|",
              f"| cells and the table | {fit.get('mean_abs_error')} | "
              f"{fit.get('max_abs_error')} |",
              f"| cells only (before) | {fit.get('mean_abs_error_without')} | "
              f"{fit.get('max_abs_error_without')} |", "",
              "Not a line: synth_ecp5 builds the wider multiplexers with the slice's PFUMX and "
              "L6MUX21, which are not LUT4s, so 8 rows take fewer LUT4 than 6. Each row count "
              "holds the widths Yosys keeps in LUT RAM at that depth: "
              + ", ".join(f"{r} rows {len(ws)} width{'s' if len(ws) > 1 else ''} "
                          f"({min(ws)}-{max(ws)} bits)" if len(ws) > 1 else
                          f"{r} rows only {ws[0]} bits"
                          for r, ws in zip(fit["rows"], fit.get("widths", []), strict=True))
              + "."]

    return "\n".join(lines) + "\n"


def xilinx_markdown(rows, seconds: float, family: str) -> str:
    n = len(rows)
    grid = [r for r in rows if r["width"] in XILINX_RAM_WIDTHS and r["depth"] in XILINX_RAM_DEPTHS]
    held = [r for r in rows if r not in grid]

    def right(sub, key):
        return sum(r[key] == r["observed"] for r in sub)

    def small_right(sub):  # the line buffer's price before: LUT RAM below 4 Kb
        return sum((r["observed"] == "lutram") == (r["width"] * r["depth"] < 4096) for r in sub)

    lines = [
        f"# RAM mapping on {family}: synth_xilinx against the resource model",
        "",
        f"Written by `benchmarks/memory_map.py --family {family}`: each RAM alone (a write port "
        "and a read port read through a register, as a line buffer's row memory or bank and a "
        f"FIFO's storage), synthesised with `synth_xilinx -family {family}`. {n} RAMs "
        f"({len(grid)} on a grid, {len(held)} random shapes), {seconds:.0f} s of Yosys runs.",
        "",
        "| rule | grid: mapping right | random shapes: mapping right | BRAM18 count right |",
        "|---|---:|---:|---:|",
        f"| `rule_choice` (cells priced by the bits they hold) | {right(grid, 'rule')} of "
        f"{len(grid)} | {right(held, 'rule')} of {len(held)} | "
        f"{sum(r['rule_bram18'] == r['bram18'] for r in rows)} of {n} |",
        f"| whole 64 x 7 cells (the FIFO rule before) | {right(grid, 'old')} of {len(grid)} | "
        f"{right(held, 'old')} of {len(held)} | "
        f"{sum(r['old_bram18'] == r['bram18'] for r in rows)} of {n} |",
        f"| LUT RAM below 4 Kb (a line buffer's price before) | {small_right(grid)} of "
        f"{len(grid)} | {small_right(held)} of {len(held)} | |",
        "",
    ]
    wrong = [r for r in rows if r["rule"] != r["observed"]]
    lines.append("The rule and Yosys agree on every RAM." if not wrong else
                 "Where the rule and Yosys disagree: " + ", ".join(
                     f"{r['width']} x {r['depth']} ({r['observed']}, rule {r['rule']})"
                     for r in wrong) + ".")
    lines += ["", "Yosys' mapping on the grid (LUTRAM: its LUTs):", "",
              "| bits \\ words | " + " | ".join(str(d) for d in XILINX_RAM_DEPTHS) + " |",
              "|---|" + "---|" * len(XILINX_RAM_DEPTHS)]
    at = {(r["width"], r["depth"]): r for r in grid}
    for w in XILINX_RAM_WIDTHS:
        cells = []
        for d in XILINX_RAM_DEPTHS:
            r = at.get((w, d))
            cells.append("" if r is None else
                         ("BRAM" if r["observed"] == "bram" else f"LUTRAM {r['lut_total']}")
                         + ("" if r["rule"] == r["observed"] else " (rule wrong)"))
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colour = {"bram": "tab:blue", "lutram": "tab:green", "logic": "tab:orange"}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), sharey=True)
    for ax, kind in zip(axes, ("rom", "ram", "ramnrw"), strict=True):
        if not any(r["kind"] == kind for r in rows):
            ax.set_visible(False)
            continue
        for r in (r for r in rows if r["kind"] == kind):
            ok = r["rule"] == r["observed"]
            ax.scatter(r["depth"], r["width"], c=colour[r["observed"]], s=40 if ok else 90,
                       marker="o" if ok else "X", edgecolors="black" if not ok else "none")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("depth (words)")
        ax.set_title(f"{kind}: Yosys' mapping (X: the rule disagrees)")
    axes[0].set_ylabel("width (bits)")
    for name, c in colour.items():
        axes[2].scatter([], [], c=c, label=name)
    axes[2].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", choices=("ecp5", "xcup", "xc7"), default="ecp5",
                   help="synthesis family (default ecp5; xcup / xc7: the AMD RAM grid)")
    p.add_argument("--out", default=None, help="report (default reports/memory_map_<family>.md)")
    p.add_argument("--workdir", default=None, help="Yosys work directories and cached samples "
                   "(default: a temp dir)")
    p.add_argument("--jobs", type=int, default=2, help="Yosys runs at a time")
    p.add_argument("--quick", action="store_true", help="a 5 x 5 grid of each kind")
    p.add_argument("--write-model", action="store_true",
                   help="ecp5: store the LUT RAM logic table fitted here in "
                        "dse/resource_model_ecp5.json (memory.lutram_logic)")
    args = p.parse_args(argv)

    from common.errors import CodesignError
    from dse.cost import for_family, resource_model

    out = Path(args.out or ROOT / "reports" / f"memory_map_{args.family}.md")
    if not out.parent.is_dir():
        print(f"error: {out.parent} is not a directory; pass --out in an existing directory",
              file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("error: --jobs must be 1 or more", file=sys.stderr)
        return 2
    if args.write_model and (args.family != "ecp5" or args.quick):
        print("error: --write-model fits the ECP5 model from the full grid; drop --family or "
              "--quick", file=sys.stderr)
        return 2
    model = resource_model(ROOT / "dse" / "resource_model_ecp5.json")
    if args.family != "ecp5":
        model = for_family(args.family)
        jobs = xilinx_jobs(args.quick)
    elif args.quick:
        ws, ds = QUICK
        jobs = [(k, w, d) for k in ("rom", "ram", "ramnrw") for w in ws for d in ds]
    else:
        jobs = ([("rom", w, d) for w in WIDTHS for d in DEPTHS]
                + [(k, w, d) for k in ("ram", "ramnrw") for w in RAM_WIDTHS
                   for d in RAM_DEPTHS])
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="memmap_"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as ex:
        futures = [ex.submit(run_one, j, work, args.family) for j in jobs]
        for i, f in enumerate(futures, 1):
            try:
                r = f.result()
            except CodesignError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            rows.append(r)
            print(f"[{i}/{len(jobs)}] {r['kind']} {r['width']}x{r['depth']}: {r['observed']} "
                  f"({r['bram18']} EBR, {r['lut_total']} LUT4)", file=sys.stderr, flush=True)
    seconds = sum(r["seconds"] for r in rows)
    judge(rows, model, args.family)
    text = markdown(rows, seconds, args.family)
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text(text)
    csv_path = out.with_suffix(".csv")
    with open(csv_path.with_suffix(".csv.tmp"), "w", newline="") as f:
        keys = ["kind", "width", "depth", "observed", "rule", "old", "bram18", "rule_bram18",
                "old_bram18", "lut", "lutram_cells", "lut_total", "seconds"]
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    plot(rows, out.with_suffix(".png"))
    csv_path.with_suffix(".csv.tmp").replace(csv_path)
    tmp.replace(out)
    if args.write_model:
        write_lutram_logic(ROOT / "dse" / "resource_model_ecp5.json", lutram_logic_fit(rows))
    print(text)
    print(f"wall {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
