"""Per-layer MAC utilisation of built and co-simulated designs: ideal cycles over measured.

For each ``codesign flow`` run directory (the ones ``benchmarks/standard_networks.py`` writes):
every compute layer's useful multiply-accumulates per frame (dense maps: every output site, the
kernel's taps, ``C_in / groups`` inputs per output channel), divided by the multipliers its design
point gives it (``lanes x pe x taps / kfold``; a depthwise layer ``pe x taps``), is the layer's
*ideal* cycles per frame; the network's *measured* initiation interval (frames back to back in
Verilator, the first frame's fill left out, from ``build/sim_summary.json`` of a ``--stall 0``
run) is what every stage of the dataflow pipeline actually gets. Utilisation = ideal / measured:
the share of cycles its multipliers do useful work. Writes ``reports/mac_utilisation.md``,
``.csv`` and ``.png``.

    python benchmarks/mac_utilisation.py RUN_DIR [RUN_DIR ...] [--keep reports/mac_utilisation.csv]

``--keep`` merges an earlier CSV: its runs not given again keep their rows (a run directory that
is gone, or a network not rerun), so rerunning some networks does not drop the others.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def layer_rows(run: Path) -> list[dict]:
    """One row per compute layer of the run's design."""
    q = json.loads((run / "build" / "qgraph.json").read_text())
    point = json.loads((run / "point.json").read_text())
    sim = json.loads((run / "build" / "sim_summary.json").read_text())
    if sim["stall"][0] != 0 or sim["frames"] < 2 or "interval_cycles" not in sim:
        raise SystemExit(f"{run}: the simulation summary is not a --stall 0 run of 2+ frames "
                         "(rerun `codesign sim --stall 0 --frames 4`)")
    ii = sim["interval_cycles"]["mean"]  # frames 2..N back to back
    choice = {c["name"]: c for c in point["layers"]}
    work = _workload(run)
    clock = _design_clock(run, work, choice)
    rows = []
    for node in q["nodes"]:
        if node["name"] not in choice:
            continue
        c = choice[node["name"]]
        c_in, c_out = node["in_shape"][0], node["out_shape"][0]
        kh = node.get("kernel", 1) if node["op"] == "conv" else 1
        kw = node.get("kernel_w") or kh
        groups = node.get("groups", 1) if node["op"] == "conv" else 1
        sites = 1 if node["op"] == "linear" else node["out_shape"][1] * node["out_shape"][2]
        layer = work.get(node["name"])
        crop = next((st for st in (layer.stages if layer else ()) if st["op"] == "crop"), None)
        if crop is not None:
            # a zero-padded conv computes its "same" map and crops it: the border is not useful
            sites = crop["out_shape"][1] * crop["out_shape"][2]
        if layer is not None and not layer.dense and node["op"] != "linear":
            # a sparse map: the active sites (the mean over the DSE's measured frames)
            sites = layer.active_out
        macs = sites * c_out * (c_in // groups) * kh * kw
        kfold = c.get("kfold", 1)
        mults = _multipliers(groups, c["lanes"], c["pe"], kfold, kh * kw)
        ideal = macs / mults
        least = _least_multipliers(layer, c["format"], point["dse"]["ii_cycles"], groups,
                                   kh * kw, clock=clock)
        rows.append({"run": run.name, "layer": node["name"], "kernel": f"{kh}x{kw}",
                     "groups": groups, "format": c["format"], "sites": sites,
                     "datapath": c.get("datapath", ""), "lanes": c["lanes"], "pe": c["pe"],
                     "kfold": kfold, "macs": macs, "multipliers": mults, "ideal": ideal,
                     "ii_measured": ii, "utilisation": ideal / ii,
                     "least_multipliers": least, "ceiling": macs / least / ii,
                     "ceiling_clock": "estimate" if clock else "none"})
    return rows


def _multipliers(groups: int, lanes: int, pe: int, kfold: int, taps: int) -> int:
    """A depthwise layer multiplies pe channels' taps per cycle; a full one lanes x pe, its
    kernel rows spread over kfold cycles."""
    return (pe if groups > 1 else lanes * pe) * taps // kfold


def _workload(run: Path) -> dict:
    from dse.workload import Workload

    w = Workload.from_json((run / "dse" / "workload.json").read_text())
    return {layer.name: layer for layer in w.layers}


def _design_clock(run: Path, work: dict, choice: dict):
    """``(fmax model, period ns)`` of a run whose DSE counted time (its ``choices.csv`` has
    ``delay_ns``): the design's estimated period is its slowest layer's; None for a run that
    counted cycles at a fixed clock."""
    import csv

    from contract.point import LayerChoice
    from dse import fmax

    with open(run / "dse" / "choices.csv", newline="") as f:
        if "delay_ns" not in (csv.DictReader(f).fieldnames or ()):
            return None
    family = json.loads((run / "dse" / "budget.json").read_text())["family"]
    model = fmax.fmax_model(family=family)
    if model is None:
        return None
    period = max(fmax.choice_delay_ns(work[name], LayerChoice.from_dict(c), model)
                 for name, c in choice.items() if name in work)
    return model, period


def _least_multipliers(layer, fmt: str, ii: int, groups: int, taps: int, *,
                       clock=None) -> int:
    """The fewest multipliers any design of ``layer`` in ``fmt`` has (every divisor of its
    channel counts, every datapath and kernel fold the DSE knows) that keeps the DSE's II, and,
    when the DSE counted time (``clock``: the fmax model and the design's period), its clock:
    the ceiling of its utilisation at that II. A wider layer with fewer multipliers may have a
    deeper adder tree than the design's slowest block; the DSE then kept more, narrower ones
    (LeNet-5's conv2 on XC7Z020: 400 at 9.3 ns where 240 need 14.8 ns)."""
    from dse import fmax
    from dse.cost import candidates, layer_cost

    best = None
    for ch in candidates(layer, [fmt], count=1 << 30):
        if clock is not None and fmax.choice_delay_ns(layer, ch, clock[0]) > clock[1] + 1e-9:
            continue
        if layer_cost(layer, ch).cycles <= ii:
            m = _multipliers(groups, ch.lanes, ch.pe, ch.kfold, taps)
            best = m if best is None else min(best, m)
    return best


def main(argv=None) -> int:
    import pandas as pd

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--out", default=str(ROOT / "reports"))
    p.add_argument("--keep", metavar="CSV",
                   help="an earlier mac_utilisation.csv: its runs that are not given again keep "
                        "their rows and their place (run directories gone or not rerun); new "
                        "runs come after them")
    args = p.parse_args(argv)
    from common.fsutil import write_png, write_text

    need = ("build/qgraph.json", "point.json", "build/sim_summary.json", "dse/workload.json",
            "dse/choices.csv", "dse/budget.json")
    for d in args.runs:
        missing = [f for f in need if not (Path(d) / f).is_file()]
        if missing:
            print(f"error: {d} is not a simulated `codesign flow` run (no {missing[0]}); run "
                  "benchmarks/standard_networks.py or `codesign flow` first", file=sys.stderr)
            return 2
    old = None
    if args.keep:
        try:
            old = pd.read_csv(args.keep)
        except (OSError, ValueError) as e:  # missing, unreadable, empty or not a CSV
            print(f"error: --keep {args.keep} cannot be read as a CSV ({type(e).__name__}); give "
                  "an earlier mac_utilisation.csv", file=sys.stderr)
            return 2
        if "run" not in old.columns:
            print(f"error: --keep {args.keep} has no 'run' column: it is not a "
                  "mac_utilisation.csv", file=sys.stderr)
            return 2
    rows = [r for d in args.runs for r in layer_rows(Path(d))]
    df = pd.DataFrame(rows)
    if old is not None:
        fresh = set(df["run"])
        kept = old[~old["run"].isin(fresh)]
        # an earlier run's place in the report is kept; a new run goes after them
        order = list(dict.fromkeys(list(old["run"]) + list(df["run"])))
        df = pd.concat([kept, df], ignore_index=True)
        df["_order"] = df["run"].map({r: i for i, r in enumerate(order)})
        df = df.sort_values("_order", kind="stable").drop(columns="_order")
    out = Path(args.out)
    write_text(out / "mac_utilisation.csv", df.to_csv(index=False))
    lines = ["# MAC utilisation per layer (ideal cycles / measured II)", "",
             "`python benchmarks/mac_utilisation.py` on `codesign flow` runs of "
             "`benchmarks/standard_networks.py`. Ideal: the layer's useful MACs per frame over "
             "its multipliers (`lanes x pe x taps / kfold`, depthwise `pe x taps`; a `dsp2` "
             "layer's multiplier is half a DSP slice); measured: the "
             "network's II in Verilator (frames back to back, no stalls, first frame left out). "
             "A centred window that stands for a smaller kernel (DS-CNN's 10x4 stem as 11x5) is "
             "counted at its window's taps. On a sparse network (SEE-D) a layer's useful MACs "
             "are at its mean active output sites over the DSE's measured frames. A "
             "zero-padded conv is computed as its \"same\" map "
             "and cropped (`crop` stage): only the kept sites' MACs count as useful. *Fewest "
             "multipliers at this II*: the least any design of the layer in its format has (every "
             "divisor of its channel counts, every datapath and kernel fold the DSE knows) that "
             "keeps the DSE's II and, when the DSE counted time (the estimated clock), the "
             "design's clock (a wider layer with fewer multipliers may have a slower block than "
             "any the design has); *ceiling*: the utilisation that design would reach, the most "
             "this layer can have in this network. A dense head after a global pool does a few "
             "hundred MACs a frame: one multiplier is already more than it needs. A run "
             "named `-cycles` is of `codesign flow --clock assumed` (the DSE minimised cycles, "
             "not time at the estimated clock), `-fewest` of `--least multipliers` (at each "
             "point's II the design with the fewest multipliers, not the smallest share of the "
             "budget), `-int8` of `--formats int8`.", ""]
    for run, g in df.groupby("run", sort=False):
        weighted = g["macs"].sum() / (g["multipliers"] * g["ii_measured"]).sum()
        lines += [f"## {run} (II {g['ii_measured'].iloc[0]:,.0f} cycles; MAC-weighted "
                  f"utilisation {weighted:.2f})",
                  "", "| layer | kernel | groups | format | datapath | lanes | pe | kfold | "
                  "MACs/frame | multipliers | ideal cycles | utilisation | fewest multipliers "
                  "at this II | ceiling |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        if "ceiling_clock" not in g or g["ceiling_clock"].isna().any():
            lines[-2:-2] = ["Rows kept from an earlier CSV whose ceiling did not yet hold the "
                            "design's clock: a design with fewer multipliers it counts may "
                            "have a slower clock.", ""]
        for _, r in g.iterrows():
            lines.append(f"| {r['layer']} | {r['kernel']} | {r['groups']} | {r['format']} | "
                         f"{r['datapath']} | {r['lanes']} | {r['pe']} | {r['kfold']} | "
                         f"{r['macs']:,.0f} | {r['multipliers']} | "
                         f"{r['ideal']:,.0f} | {r['utilisation']:.2f} | "
                         f"{r['least_multipliers']} | {r['ceiling']:.2f} |")
        lines.append("")
    write_text(out / "mac_utilisation.md", "\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(dict.fromkeys(df["run"]))
    fig, axes = plt.subplots(len(runs), 1, figsize=(8, 1.9 * len(runs)), squeeze=False)
    for ax, run in zip(axes[:, 0], runs, strict=True):
        g = df[df["run"] == run]
        ax.bar(range(len(g)), g["utilisation"], color="tab:blue")
        ax.axhline(0.9, color="tab:red", lw=1, ls="--")
        ax.set_xticks(range(len(g)), g["layer"], rotation=45, ha="right", fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("utilisation", fontsize=8)
        ax.set_title(run, fontsize=9)
    fig.tight_layout()
    write_png(out / "mac_utilisation.png", fig, dpi=110)
    print(f"wrote {out / 'mac_utilisation.md'}, .csv, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
