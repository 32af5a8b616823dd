"""A lone frame's timeline, layer by layer: the row-level latency model against the RTL.

``benchmarks/dse_check.py`` compares a design's lone-frame latency as one number; where the model
is off, this says which layer the error comes from. One frame goes alone through the built design
(Verilator, the cosim fast path, checked bit for bit against the golden model), and the wrapper
times the output stream of every compute layer's stage from inside the design (its requantizer's
``o__valid`` / ``o__ready``, or the block's own where it has no requantizer; hierarchical probes,
:func:`cosim.wrapper.wrapper_verilog`): the cycles of its first and last beat from the frame's first
input beat. Beside them, :func:`dse.latency.row_times` on the same frame's workload (its own
activity): when the layer's first own row begins and its last ends. The error of a layer's last
beat, minus its producer's, is what that layer adds.

Usage::

    python benchmarks/latency_timeline.py --build runs/.../build [--frame 0] [--split test]

Writes ``reports/latency_timeline_<model>.csv`` and ``.png`` (predicted against measured last
beat per layer) unless ``--out`` names another CSV, and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.append(str(Path(__file__).resolve().parent))  # _checks (after the root: dse.py is not dse)

from common.errors import CodesignError  # noqa: E402
from common.fsutil import atomic_path, write_png  # noqa: E402

REPORTS = Path(__file__).resolve().parents[1] / "reports"


def stage_probe(verilog_text: str, layer: str) -> tuple[str, str] | None:
    """The ``(valid, ready)`` names of a layer's output stream inside its top: its requantizer's
    output, else its block's (``<layer>_requant`` / ``<layer>_conv``, as :mod:`hw.compose`
    names the instances); None when neither is there."""
    for inst in (f"{layer}_requant", f"{layer}_conv"):
        # an instance of the top (``\\<top>.<inst>  <inst> (``), not one inside a block
        if re.search(rf"^\s+\\[^.\s]+\.{re.escape(inst)}\s+{re.escape(inst)}\s*\(",
                     verilog_text, re.M):
            return f"{inst}.o__valid", f"{inst}.o__ready"
    return None


def predicted_rows(qgraph, point: dict, frame, name: str):
    """The workload of ``frame`` alone and :func:`dse.latency.row_times` of the point on it."""
    from contract.point import LayerChoice
    from dse import devices
    from dse import workload as wl
    from dse.cost import for_budget, for_family, layer_cost
    from dse.latency import layer_timing, row_times, rows_of

    w = wl.from_qgraph(qgraph, wl.measure_activity(qgraph, [frame]), name=name)
    b = (point.get("dse") or {}).get("budget")
    model = for_budget(devices.budget(b["device"], b["util"])) if b else for_family("zynqmp")
    choice = {c["name"]: dataclasses.replace(LayerChoice.from_dict(c), name="", pred=())
              for c in point["layers"]}
    pos = {x.name: i for i, x in enumerate(w.layers)}
    rows = [rows_of(x, tuple(pos[p] for p in x.producers)) for x in w.layers]
    cycles = [layer_cost(x, choice[x.name], model=model).cycles for x in w.layers]
    timing = [layer_timing(x, choice[x.name]) for x in w.layers]
    return w, cycles, row_times(rows, cycles, timing)


def timeline(build: Path, *, frame_index: int = 0, split: str = "test", seed: int = 0,
             log=print) -> list[dict]:
    """Rows of the table: per compute layer, predicted and measured first and last beats."""
    from cosim.golden import network_golden
    from cosim.manifest import load_manifest
    from cosim.session import simulate

    manifest = load_manifest(build)
    bundle, qgraph, golden = network_golden(manifest)
    if bundle is None:
        raise CodesignError(f"the model of {build} has no data set (built from a QGraph file)")
    frames = bundle.frames(frame_index + 1, seed=seed, split=split)
    if len(frames) <= frame_index:
        raise CodesignError(f"the {split} split has {len(frames)} frames, no frame {frame_index}")
    frame = frames[frame_index]
    w, cycles, pred = predicted_rows(qgraph, manifest.point, frame, manifest.model)
    text = Path(manifest.verilog).read_text()
    probes, names = [], []
    for x in w.layers:
        pr = stage_probe(text, x.name)
        if pr is not None:
            probes.append(pr)
            names.append(x.name)
    log(f"{manifest.model}: frame {frame_index} alone, {len(probes)} stages probed")
    res = simulate(manifest, [frame], golden, work_dir=build / "sim" / "timeline",
                   cache_dir=build / "sim_build_timeline", probes=probes)
    if not res.ok:
        raise CodesignError(f"the frame did not come out right: "
                            f"{res.stopped or res.mismatches[0]}")
    origin = _first_input_cycle(res)
    measured = dict(zip(names, res.extra["probes"], strict=True))
    rows, prev_err = [], {}
    for k, x in enumerate(w.layers):
        if x.name not in measured:
            continue
        first, last, beats = measured[x.name]
        lr = pred[k]
        p_first = lr.start[0]  # the first row's start
        err = lr.own[-1] - (last - origin)
        added = err - max((prev_err.get(w.layers[p].name, 0.0) for p in
                           [i for i, y in enumerate(w.layers) if y.name in x.producers]),
                          default=0.0)
        prev_err[x.name] = err
        rows.append({"layer": x.name, "kind": x.kind, "cycles": cycles[k],
                     "rows": len(lr.own), "beats": beats,
                     "pred_first": round(p_first), "sim_first": first - origin,
                     "pred_last": round(lr.own[-1]), "sim_last": last - origin,
                     "error_last": round(err), "error_added": round(added)})
    rows.append({"layer": "network", "kind": "lone frame", "cycles": None, "rows": None,
                 "beats": None, "pred_first": None, "sim_first": None,
                 "pred_last": round(pred[-1].done[-1]), "sim_last": res.latency[0],
                 "error_last": round(pred[-1].done[-1] - res.latency[0]), "error_added": None})
    return rows


def _first_input_cycle(res) -> int:
    """The cycle of the frame's first input beat (the origin of every figure), from the run's
    trace."""
    from cosim.wrapper import read_trace

    trace = read_trace(Path(res.extra["work_dir"]) / "trace.txt")
    return trace.frames_in[0][0]


def plot(df, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lay = df[df["layer"] != "network"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.32 * len(lay)), 4.2))
    x = range(len(lay))
    ax.plot(x, lay["sim_last"], "o-", label="RTL: last beat", ms=4)
    ax.plot(x, lay["pred_last"], "s--", label="model: last row", ms=4)
    ax.plot(x, lay["sim_first"], "o-", label="RTL: first beat", ms=3, alpha=0.6)
    ax.plot(x, lay["pred_first"], "s--", label="model: first row's start", ms=3, alpha=0.6)
    ax.set_xticks(list(x))
    ax.set_xticklabels(lay["layer"], rotation=70, fontsize=7)
    ax.set_ylabel("cycles from the frame's first input beat")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    write_png(path, fig, dpi=120)


def main(argv=None) -> int:
    import pandas as pd

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", required=True, help="a `codesign build` directory")
    p.add_argument("--frame", type=int, default=0, help="which frame of the split")
    p.add_argument("--split", default="test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None,
                   help="CSV path (default reports/latency_timeline_<model>.csv)")
    args = p.parse_args(argv)
    from _checks import not_a_build, write_error

    build = Path(args.build)
    if why := not_a_build(build):
        print(f"error: {why}", file=sys.stderr)
        return 2
    if args.frame < 0:
        print(f"error: --frame must be 0 or more, not {args.frame}", file=sys.stderr)
        return 2
    # a flow run's build directory is <run>/build: name the table after the run
    name = build.resolve().parent.name if build.resolve().name == "build" else build.name
    out = Path(args.out) if args.out else REPORTS / f"latency_timeline_{name}.csv"
    # an output that cannot be written fails before the simulation, not after it
    if e := write_error(out.parent, out.name):
        print(f"error: cannot write {out} ({e.strerror}); give a writable --out", file=sys.stderr)
        return 2
    try:
        rows = timeline(build, frame_index=args.frame, split=args.split, seed=args.seed,
                        log=lambda m: print(m, file=sys.stderr, flush=True))
    except CodesignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    df = pd.DataFrame(rows)
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False)
    plot(df, out.with_suffix(".png"), f"{name}: a lone frame, model against Verilator")
    print(df.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
