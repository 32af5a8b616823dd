"""DSE predictions checked against RTL simulation: per-layer and network cycles, lone-frame latency.

For one model and one or more design points (``point_<k>.json`` from ``codesign dse``):

- **per layer**: each compute layer is built alone (a one-layer QGraph: input FIFO, the block, its
  requantizer, and the global pool when the layer feeds one, exactly the stage the composer
  makes) with :func:`hw.build.build`, and simulated with Verilator (the cosim fast path, checked
  bit for bit against the golden model) on the layer's real input frames, i.e. the golden
  model's activations of real test frames, back to back, never stalled. Measured: the mean
  interval between consecutive end-of-frame output beats (first frame excluded). Predicted:
  :func:`dse.cost.cycles` at the workload's mean activity (what the DSE priced) and, to separate
  the activity statistic from the formula, at the simulated frames' own mean activity;
- **network**: the whole design (``codesign build`` of the point), the same frames back to back:
  measured II (mean end-of-frame interval after the first frame) against the DSE's II
  (:func:`dse.ilp.evaluate`); and the **latency of a lone frame** (first input beat to last
  output beat, pipeline empty: each of ``--lone`` frames simulated on its own) against the DSE's
  reported latency, the row-level model of :mod:`dse.latency` (the program's own ``II +
  sum(fill)`` is printed beside it).

Writes ``reports/dse_check_<model>.csv`` (one row per point and layer, plus a ``network`` row and
a ``latency`` row per point), ``reports/dse_check_<model>.png`` (predicted against measured per
layer) and prints Markdown tables.

Usage::

    python benchmarks/dse_check.py --model digits \
        --point build/dse/point_0.json --point build/dse_mixed/point_0.json [--frames 8]

Why Verilator per layer rather than timestamps inside the whole network: inside the network every
stage runs at the bottleneck's pace, so its own cycles cannot be seen; alone, fed as fast as it
takes input, a block shows exactly the steady-state cycles the cost model claims.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.fsutil import atomic_path, write_png  # noqa: E402
from dse import workload as wl  # noqa: E402
from dse.cost import LayerChoice, for_family, layer_cost, resources  # noqa: E402
from dse.ilp import Candidate, network_latency  # noqa: E402
from dse.latency import layer_timing, lone_frame_latency, rows_of  # noqa: E402

REPORTS = Path(__file__).resolve().parents[1] / "reports"


def _sub_qgraph(qgraph, node, with_gap: bool):
    """A QGraph of ``node`` alone (and the global pool it feeds, when ``with_gap``)."""
    from models.qgraph import QGraph

    inp = dataclasses.replace(qgraph.input, name="input", in_shape=tuple(node.in_shape),
                              out_shape=tuple(node.in_shape))
    nodes = [inp, dataclasses.replace(node, inputs=("input",))]
    if with_gap:
        # the pool fed by this layer, directly or through residual adds (eye: proj -> add ->
        # gap); the add needs its skip input, so the isolated layer feeds the pool directly
        cur = node.name
        while True:
            users = [n for n in qgraph.nodes if cur in n.inputs]
            gap = next((n for n in users if n.op == "gap"), None)
            if gap is not None or not any(n.op == "add" for n in users):
                break
            cur = next(n for n in users if n.op == "add").name
        if gap is None:
            raise SystemExit(f"{node.name}: no global pool downstream of this layer")
        nodes.append(dataclasses.replace(gap, inputs=(node.name,)))
    return QGraph(name=f"{qgraph.name}_{node.name}", nodes=tuple(nodes), abits=qgraph.abits,
                  dense=qgraph.dense)


def _simulate(qgraph, point, frames, build_dir, *, sim="verilator"):
    """Build ``qgraph`` at ``point`` into ``build_dir`` (reused when the network, the point and the
    generator are unchanged) and simulate."""
    from cosim.session import simulate
    from hw.build import build, build_is_current

    if not build_is_current(build_dir, qgraph, point.to_dict()):
        build(qgraph, point, build_dir, model=qgraph.name)
    expected = [qgraph.run_frame(c, f) for c, f in frames]
    res = simulate(build_dir, frames, expected=expected, sim=sim, timeout=400000)
    if not res.ok:
        raise SystemExit(f"{build_dir}: simulation failed: "
                         f"{res.stopped or res.mismatches[0]}")
    return res


def _lone(workload, choice, model) -> int:
    """The DSE's reported lone-frame latency of ``choice`` on ``workload`` (:mod:`dse.latency`)."""
    pos = {x.name: i for i, x in enumerate(workload.layers)}
    rows = [rows_of(x, tuple(pos[p] for p in x.producers)) for x in workload.layers]
    return lone_frame_latency(rows, [layer_cost(x, choice[x.name], model=model).cycles
                                     for x in workload.layers],
                              [layer_timing(x, choice[x.name]) for x in workload.layers])


def _mean_after_first(values):
    v = list(values)[1:]
    return statistics.fmean(v) if v else float("nan")


def check_point(bundle, point_file, frames, *, work, lone: int, log=print) -> list[dict]:
    """Rows of the per-layer, network and latency comparisons of one design point."""
    from contract.point import DesignPoint

    pdict = json.loads(Path(point_file).read_text())
    point = DesignPoint.from_dict(pdict)
    formats = {c.name: c.format for c in point.layers}
    qgraph = bundle.qgraph(formats)
    point.validate(qgraph)
    # the DSE's workload (its default: 32 test frames, seed 0) and the simulated frames' own
    w_dse = wl.from_bundle(bundle, frames=32)
    w_sim = wl.from_qgraph(qgraph, wl.measure_activity(qgraph, frames), name=bundle.name)
    bud = pdict.get("dse", {}).get("budget") or {}
    model = for_family(bud.get("family", "zynqmp"), bud.get("dsp_cell"))
    choice = {c.name: dataclasses.replace(c, name="", pred=()) for c in point.layers}
    tag = Path(point_file).parent.name + "-" + Path(point_file).stem
    rows = []
    cands_dse, cands_sim = [], []
    for lay_d, lay_s in zip(w_dse.layers, w_sim.layers, strict=True):
        ch = choice[lay_d.name]
        cost_d = layer_cost(lay_d, ch, model=model)
        cost_s = layer_cost(lay_s, ch, model=model)
        cands_dse.append(Candidate(ch, cost_d, timing=layer_timing(lay_d, ch)))
        cands_sim.append(Candidate(ch, cost_s, timing=layer_timing(lay_s, ch)))
        node = qgraph.node(lay_d.name)
        with_gap = any(s["op"] == "gap" for s in lay_d.stages)
        sub = _sub_qgraph(qgraph, node, with_gap)
        sub_point = DesignPoint.from_dict(
            {"model": sub.name, "clock_mhz": point.clock_mhz, "fifo_depth": point.fifo_depth,
             "layers": [ch.named(node.name).to_dict()]})
        if node.op == "linear":
            # after global pooling: one site at (0, 0) per frame, the pooled vector
            src = qgraph.node(node.inputs[0])
            in_frames = []
            for c, f in frames:
                env = qgraph.run_frame_all(c, f)
                in_frames.append(env[src.name])
        else:
            in_frames = [qgraph.run_frame_all(c, f)[node.inputs[0]] for c, f in frames]
        t0 = time.perf_counter()
        res = _simulate(sub, sub_point, in_frames, work / tag / node.name)
        measured = _mean_after_first(res.cycles_per_frame)
        rows.append({"point": tag, "layer": node.name, "kind": lay_d.kind,
                     "format": ch.format, "lanes": ch.lanes, "pe": ch.pe,
                     "stages": "+".join(s["op"] for s in lay_d.stages if s["op"] == "gap"),
                     "pred_cycles": cost_d.cycles, "pred_cycles_sim_activity": cost_s.cycles,
                     "measured_cycles": round(measured, 1),
                     "error": round(cost_d.cycles / measured - 1, 4),
                     "error_sim_activity": round(cost_s.cycles / measured - 1, 4)})
        log(f"  {tag} {node.name:8s} pred {cost_d.cycles:7d} (at sim activity "
            f"{cost_s.cycles:7d}) measured {measured:9.1f}  [{time.perf_counter() - t0:.0f} s]")
    # whole network
    res = _simulate(qgraph, point, frames, work / tag / "_network")
    ii_meas = _mean_after_first(res.cycles_per_frame)
    edges = w_dse.edges()
    ii_d, fill_d = network_latency(cands_dse, edges)
    ii_s, _ = network_latency(cands_sim, edges)
    lat_d = _lone(w_dse, choice, model)
    rows.append({"point": tag, "layer": "network", "kind": "II", "pred_cycles": ii_d,
                 "pred_cycles_sim_activity": ii_s, "measured_cycles": round(ii_meas, 1),
                 "error": round(ii_d / ii_meas - 1, 4),
                 "error_sim_activity": round(ii_s / ii_meas - 1, 4)})
    log(f"  {tag} network II pred {ii_d} (at sim activity {ii_s}) measured {ii_meas:.1f}")
    # lone frames: each frame alone through an empty pipeline
    lats, preds = [], []
    for k in range(min(lone, len(frames))):
        r = _simulate(qgraph, point, [frames[k]], work / tag / "_network")
        lats.append(r.latency[0])
        wk = wl.from_qgraph(qgraph, wl.measure_activity(qgraph, [frames[k]]), name=bundle.name)
        preds.append(_lone(wk, choice, model))
    lat_meas = statistics.fmean(lats)
    rows.append({"point": tag, "layer": "latency", "kind": f"lone x{len(lats)}",
                 "pred_cycles": lat_d, "pred_cycles_sim_activity": round(statistics.fmean(preds)),
                 "measured_cycles": round(lat_meas, 1), "error": round(lat_d / lat_meas - 1, 4),
                 "error_sim_activity": round(statistics.fmean(preds) / lat_meas - 1, 4)})
    log(f"  {tag} lone-frame latency pred {lat_d} (per frame {preds}; II + sum(fill) {fill_d}) "
        f"measured {lats}")
    return rows


def _build_model(man: dict, device: str | None):
    """The resource model a build was priced with: its part's (``device``), else its synthesis
    family's (the manifest's ``family``) at that family's DSP slice."""
    from dse.cost import for_budget
    from dse.devices import budget

    if device is not None:
        return for_budget(budget(device))
    return for_family(man.get("family") or "xcup")


def _priced_design(build_dir: Path, man: dict, model):
    """(workload, {layer: choice}, the program's solution) of a built design under ``model``."""
    from dse.devices import budget
    from dse.ilp import evaluate
    from dse.pareto import make_problem
    from models.qgraph import QGraph

    layers = {c["name"]: c for c in man["point"]["layers"]}
    # the graph the build was made from (its formats applied); a price does not depend on the
    # activity, so its layers are taken as dense
    qgraph = QGraph.load(build_dir / man.get("qgraph", "qgraph.json"))
    w = wl.from_qgraph(qgraph, name=qgraph.name)
    choices = {x.name: LayerChoice.from_dict(layers[x.name]) for x in w.layers}
    cands = tuple((Candidate(choices[x.name], layer_cost(x, choices[x.name], model=model),
                             timing=layer_timing(x, choices[x.name])),) for x in w.layers)
    problem = make_problem(w, cands, budget("XCZU9EG", 1.0), model=model)
    return w, choices, problem, evaluate(problem, [0] * len(cands))


def _edge_of(mod: str, dst: str | None, layer: str, dsts: set, srcs: set) -> bool:
    """Whether FIFO module ``mod`` (``<src>_to_<dst><k>_fifo``) is ``layer``'s: into the layer,
    or from the layer or one of its own stages into one of its stages."""
    if dst is None or dst not in dsts:
        return False
    return dst == layer or mod[:mod.rindex(f"_to_{dst}")] in srcs


def module_rows(build_dir, *, device: str | None = None) -> list[dict]:
    """The price against Yosys module by module, for an AMD build synthesised with ``codesign
    build --synth`` (its flattened netlist ``synth/<top>.json`` keeps each cell's instance
    path): per layer its compute block (the block, its requantizer and skid buffers) against
    the op's price, and what the price puts around it (the input FIFO, the pass-through stages
    it feeds: ``dse.cost.resources`` less the op's price) against the FIFO and stage modules in
    front of and after it; then the width converters against the program's converter terms."""
    import re

    from hw.synth import lutram_luts
    from models import ops

    build_dir = Path(build_dir)
    if not (build_dir / "manifest.json").is_file():
        raise SystemExit(f"error: {build_dir} has no manifest.json; give a `codesign build "
                         f"--synth` directory")
    man = json.loads((build_dir / "manifest.json").read_text())
    netlist = build_dir / "synth" / f"{man['top']}.json"
    if not netlist.is_file():
        raise SystemExit(f"error: {netlist} is missing; run `codesign build --synth` for "
                         f"{build_dir} (an AMD part)")
    model = _build_model(man, device)
    w, choices, problem, sol = _priced_design(build_dir, man, model)
    # where a converter follows a layer's input FIFO the composer builds that FIFO at the
    # producer's width: the program moves its price there (dse.cost.converter_coefficients)
    moved = {x.name: dict.fromkeys(("lut", "ff"), 0.0) for x in w.layers}
    for e, (p, c) in enumerate(problem.edges):
        a, b = sol.choices[p].pe, problem.sink_width(e, sol.choices[c])
        if a != b and problem.fifo_edge(e):
            for r, (_, _, k, *_) in problem.converter.items():
                moved[w.layers[c].name][r] += k * problem.bits_of(e) * (a - b)
    cells = json.loads(netlist.read_text())["modules"][man["top"]]["cells"]
    per: dict = {}
    for name, cell in cells.items():
        m = re.match(r"\$flatten\\([^.]+)\.", name) or re.match(r"([^$][^.]*)\.", name)
        c = per.setdefault(m.group(1) if m else "", {"lut": 0, "ff": 0, "dsp": 0, "bram18": 0})
        t = cell["type"]
        if t.startswith("LUT") and t[3:].isdigit() or t.startswith("SRL"):
            c["lut"] += 1
        elif lutram_luts(t) is not None:
            c["lut"] += lutram_luts(t)
        elif t.startswith("FD"):
            c["ff"] += 1
        elif t.startswith("DSP48"):
            c["dsp"] += 1
        elif t.startswith("RAMB18"):
            c["bram18"] += 1
        elif t.startswith("RAMB36"):
            c["bram18"] += 2
    names = {x.name for x in w.layers} | {st["name"] for x in w.layers for st in x.stages}

    def edge_dst(mod):
        """The node a FIFO / converter / sign extension module feeds (``<src>_to_<dst><k>_*``)."""
        for dst in names:
            if re.search(rf"_to_{re.escape(dst)}\d_(fifo|width|extend)$", mod):
                return dst
        return None

    used, rows = set(), []

    def add(layer, part, priced, mods):
        got = {r: sum(per[m][r] for m in mods) for r in ("lut", "ff", "dsp", "bram18")}
        used.update(mods)
        rows.append({"layer": layer, "part": part, "modules": len(mods),
                     **{f"{r}_priced": round(priced[r]) for r in got},
                     **{f"{r}_yosys": got[r] for r in got}})

    for x in w.layers:
        ch, op = choices[x.name], ops.of(x)
        block = op.price(x, ch, model)
        whole = resources(x, ch, model)
        add(x.name, "block", block, [m for m in per if m in (f"{x.name}_conv",
                                                            f"{x.name}_requant",
                                                            f"{x.name}_skid")])
        # its own stages (a join's first input owns the join; the second, a shadow stage, only
        # the skip FIFO into it); the FIFOs into it and its stages from it or its own stages
        mine = [st for st in x.stages if not st.get("shadow")]
        srcs = {x.name} | {st["name"] for st in mine}
        dsts = {x.name} | {st["name"] for st in x.stages}
        blocks = {f"{x.name}_fork"} | {f"{st['name']}_{suffix}" for st in mine
                                       for suffix in (st["op"], "fork")}

        around = [m for m in per if m not in used and not m.endswith(("_width", "_extend"))
                  and (m in blocks or _edge_of(m, edge_dst(m), x.name, dsts, srcs))]
        add(x.name, "fifo + stages",
            {r: whole[r] - block[r] + moved[x.name].get(r, 0.0) for r in whole}, around)
    conv = [m for m in per if m.endswith("_width") or m.endswith("_extend")]
    priced = {r: getattr(sol, r) - sum(row[f"{r}_priced"] for row in rows)
              for r in ("lut", "ff", "dsp", "bram18")}
    add("(edges)", "converters", priced, conv)
    rest = [m for m in per if m not in used]
    add("(other)", "unattributed", dict.fromkeys(("lut", "ff", "dsp", "bram18"), 0), rest)
    return rows


def plot_modules(df, path: Path, *, title: str) -> None:
    """Priced against Yosys per layer (its block and what is around it) and for the converters:
    LUTs and flip-flops side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = df.groupby("layer", sort=False)[["lut_priced", "lut_yosys", "ff_priced", "ff_yosys"]].sum()
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.35 * len(g)), 6.5), sharex=True)
    x = range(len(g))
    for ax, r in zip(axes, ("lut", "ff"), strict=True):
        ax.bar([i - 0.2 for i in x], g[f"{r}_priced"], 0.4, label="priced")
        ax.bar([i + 0.2 for i in x], g[f"{r}_yosys"], 0.4, label="Yosys")
        ax.set_ylabel(r.upper())
        ax.legend(fontsize=8)
    axes[1].set_xticks(list(x), g.index, rotation=70, fontsize=7)
    axes[0].set_title(f"{title}: the price against Yosys per layer (block, FIFO and stages)",
                      fontsize=9)
    fig.tight_layout()
    write_png(path, fig, dpi=110)


def resource_rows(build_dir, *, device: str | None = None) -> list[dict]:
    """Predicted (the DSE's model, converters included, as :func:`dse.ilp.evaluate` sums them)
    against Yosys (``resources.json`` of ``codesign build --synth``) for one built design; with
    an ECP5 ``device``, the ECP5 model against ``synth_ecp5`` (``implement/stat.json`` of
    ``codesign implement``)."""
    from dse.devices import budget
    from hw.synth import summarize_cells

    build_dir = Path(build_dir)
    man = json.loads((build_dir / "manifest.json").read_text())
    if device is not None and budget(device).family == "ecp5":
        text = (build_dir / "implement" / "stat.json").read_text()
        got = summarize_cells(json.loads(text[text.index("{"):])["design"]["num_cells_by_type"])
    else:
        got = json.loads((build_dir / "resources.json").read_text())
    # the part's own model (a 7-series part: its own fit and DSP48E1 widths)
    model = _build_model(man, device)
    *_, sol = _priced_design(build_dir, man, model)
    fmts = sorted({c["format"] for c in man["point"]["layers"]})
    rows = []
    for r, key in (("lut", "lut_total"), ("ff", "ff"), ("dsp", "dsp"), ("bram18", "bram18")):
        pred, meas = getattr(sol, r), got[key]
        rows.append({"design": build_dir.name, "model": man["model"], "formats": "/".join(fmts),
                     "resource": r, "predicted": pred, "yosys": meas,
                     "error": round(pred / meas - 1, 4) if meas else None})
    return rows


def accuracy_rows(bundle, *, front_dirs=(), n_random: int = 6, seed: int = 0,
                  splits=("val", "test"), formats=("int8", "int4", "dybit4"), log=print):
    """Predicted (additive per-layer sensitivity) against measured integer accuracy.

    Points: the design points of ``front_dirs`` (``codesign dse`` outputs), uniform int4 and
    dybit4, and ``n_random`` seeded random per-layer mixes. For each split the sensitivity is
    measured on that split (cached next to the checkpoint) and the points are measured there too.
    """
    import random

    from common.digest import file_digest
    from dse.accuracy import load_or_measure
    from models.quant import QUANT_VERSION

    layers = bundle.layer_names()
    points = []
    for d in front_dirs:
        for pf in sorted(Path(d).glob("point_*.json")):
            pd_ = json.loads(pf.read_text())
            points.append((f"{Path(d).name}/{pf.stem}",
                           {c["name"]: c["format"] for c in pd_["layers"]}))
    for f in formats[1:]:
        points.append((f"all-{f}", dict.fromkeys(layers, f)))
    rng = random.Random(seed)
    for k in range(n_random):
        points.append((f"random{k}", {name: rng.choice(formats) for name in layers}))
    tag = f"{file_digest(bundle.checkpoint)[:12]}-q{QUANT_VERSION}"
    rows = []
    for split in splits:
        cache = bundle.checkpoint.parent / f"dse_sensitivity-{tag}-{split}.json"
        if split == "val":
            cache = bundle.checkpoint.parent / f"dse_sensitivity-{tag}.json"
        sens = load_or_measure(bundle, formats, cache, split=split)
        n = None
        for name, a in points:
            m = bundle.evaluate(a, split=split)
            n = m.get("n", n)
            pred = sens.predict(a)
            rows.append({"model": bundle.name, "split": split, "n": n, "point": name,
                         "predicted": round(pred, 4), "measured": round(m[sens.metric], 4),
                         "error": round(pred - m[sens.metric], 4),
                         "formats": "/".join(a[x][0] + a[x][-1] for x in layers)})
            log(f"  {bundle.name} {split} {name}: predicted {pred:.4f} measured "
                f"{m[sens.metric]:.4f}")
    return rows


def _plot(df, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5))
    lo = max(1.0, min(df["measured_cycles"].min(), df["pred_cycles"].min()) * 0.8)
    hi = max(df["measured_cycles"].max(), df["pred_cycles"].max()) * 1.25
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="0.88",
                    label="+-10 %", zorder=1)
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, zorder=2)
    marks = {"layer": "o", "network": "s", "latency": "^"}
    for pt, g in df.groupby("point"):
        color = None
        for what, mk in marks.items():
            sel = g[g["layer"] == what] if what != "layer" else \
                g[~g["layer"].isin(["network", "latency"])]
            if sel.empty:
                continue
            h = ax.scatter(sel["measured_cycles"], sel["pred_cycles"], marker=mk, color=color,
                           s=36 if what != "layer" else 20, zorder=3,
                           label=f"{pt}: {what if what != 'layer' else 'layers'}")
            color = h.get_facecolor()[0]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured cycles per frame (Verilator)")
    ax.set_ylabel("DSE predicted cycles per frame")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    write_png(path, fig, dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model")
    p.add_argument("--point", action="append", default=[], help="point JSON (repeat)")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--lone", type=int, default=3, help="frames simulated alone for latency")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="build/dse_check")
    p.add_argument("--out", default=None, help="CSV path (default reports/dse_check_<model>.csv)")
    p.add_argument("--synth", action="append", default=[], metavar="BUILD_DIR",
                   help="instead: compare the resource model with Yosys on these "
                        "`codesign build --synth` directories (repeat); writes "
                        "reports/dse_check_resources.csv")
    p.add_argument("--accuracy", action="store_true",
                   help="instead: predicted vs measured accuracy of the --front points plus "
                        "uniform and random mixes; writes reports/dse_check_accuracy_<model>.csv")
    p.add_argument("--modules", metavar="BUILD_DIR",
                   help="instead: the price against Yosys module by module for one AMD "
                        "`codesign build --synth` directory; writes "
                        "reports/dse_check_modules.csv")
    p.add_argument("--device", default=None,
                   help="the part --synth / --modules builds were priced for (default: the "
                        "build's synthesis family)")
    p.add_argument("--front", action="append", default=[], metavar="DSE_DIR")
    p.add_argument("--random", type=int, default=6, help="random mixes for --accuracy")
    args = p.parse_args(argv)
    from models import zoo

    if args.accuracy:
        bundle = zoo.load(args.model, train_if_missing=False, progress=False)
        df = pd.DataFrame(accuracy_rows(bundle, front_dirs=args.front, n_random=args.random,
                                        seed=args.seed,
                                        log=lambda m: print(m, file=sys.stderr, flush=True)))
        out = Path(args.out) if args.out else REPORTS / f"dse_check_accuracy_{args.model}.csv"
        with atomic_path(out) as tmp:
            df.to_csv(tmp, index=False)
        print(df.to_string(index=False))
        for split, g in df.groupby("split"):
            print(f"{split} (n={int(g['n'].iloc[0])}, one image = {1 / g['n'].iloc[0]:.4f}): "
                  f"{len(g)} points, max |error| {g['error'].abs().max():.4f}, mean |error| "
                  f"{g['error'].abs().mean():.4f}")
        return 0
    if args.modules:
        df = pd.DataFrame(module_rows(args.modules, device=args.device))
        out = Path(args.out) if args.out else REPORTS / "dse_check_modules.csv"
        with atomic_path(out) as tmp:
            df.to_csv(tmp, index=False)
        plot_modules(df, out.with_suffix(".png"), title=Path(args.modules).name)
        print(df.to_string(index=False))
        tot = df[[c for c in df.columns if c.endswith(("_priced", "_yosys"))]].sum()
        print("total: " + ", ".join(f"{r} {tot[f'{r}_priced']:.0f} priced / "
                                    f"{tot[f'{r}_yosys']:.0f} Yosys"
                                    for r in ("lut", "ff", "dsp", "bram18")))
        return 0
    if args.synth:
        df = pd.DataFrame([r for d in args.synth for r in resource_rows(d, device=args.device)])
        out = Path(args.out) if args.out else REPORTS / "dse_check_resources.csv"
        with atomic_path(out) as tmp:
            df.to_csv(tmp, index=False)
        print(df.to_string(index=False))
        return 0

    if not args.model or not args.point:
        p.error("--model and --point are required (or --synth)")
    bundle = zoo.load(args.model, train_if_missing=False, progress=False)
    frames = bundle.frames(args.frames, seed=args.seed, split="test")
    # a checkpoint path names its model by the bundle's name (a path joined here would escape)
    work = Path(args.work) / bundle.name
    rows = []
    for pf in args.point:
        print(f"{args.model}: {pf}", file=sys.stderr, flush=True)
        rows += check_point(bundle, pf, frames, work=work, lone=args.lone,
                            log=lambda m: print(m, file=sys.stderr, flush=True))
    df = pd.DataFrame(rows)
    out = Path(args.out) if args.out else REPORTS / f"dse_check_{args.model}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False)
    _plot(df, out.with_suffix(".png"),
          f"{args.model}: DSE prediction vs Verilator, {args.frames} test frames")
    cols = ["point", "layer", "kind", "format", "lanes", "pe", "pred_cycles",
            "pred_cycles_sim_activity", "measured_cycles", "error", "error_sim_activity"]
    print(df[[c for c in cols if c in df]].to_string(index=False))
    layers = df[~df["layer"].isin(["network", "latency"])]
    print(f"max |error| per layer {layers['error'].abs().max():.3f} "
          f"(at the simulated frames' activity {layers['error_sim_activity'].abs().max():.3f}); "
          f"network II {df[df.layer == 'network']['error'].abs().max():.3f}; lone-frame latency "
          f"{df[df.layer == 'latency']['error'].abs().max():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
