"""The standard networks of ``examples/`` through the user's path, one ``codesign flow`` each.

For every (network, device): import the PyTorch file with its calibration function, DSE, pick,
build, co-simulate ``--frames`` frames under ``--stall`` in Verilator against the integer golden
model, and collect the figures: predicted II and latency, the simulated cycles per frame (the mean
over the frames after the first, whose pipeline fill is not part of the II), mismatches, and the
DSE's resources (``--synth`` adds Yosys counts). A network that does not fit a device is a row
with the DSE's one-line reason. Writes ``reports/standard_networks.csv`` and ``.md``.

    python benchmarks/standard_networks.py [--nets resnet_cifar,autoencoder] [--devices XC7Z020]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project's packages before benchmarks/ (benchmarks/dse.py)

NETS = ("autoencoder", "resnet_cifar", "digits_lenet", "lenet5", "ds_cnn", "mobilenet_v1",
        "seed_eye", "brevitas_w4a4")
#: Networks that come as a QONNX file (with their inputs as an .npz) rather than PyTorch.
QONNX = {"brevitas_w4a4": ("examples/brevitas_w4a4.onnx", "examples/brevitas_w4a4_calib.npz")}
DEVICES = ("XC7Z020", "XCZU3EG")


def run_one(net: str, device: str, *, out: Path, frames: int, stall: float, synth: bool,
            clock: str = "estimate", least: str = "resources", formats: str | None = None) -> dict:
    ref = f"examples/{net}.py"
    model, calib = QONNX.get(net, (f"{ref}:build", f"{ref}:calib"))
    argv = [sys.executable, "-m", "codesign", "flow", "--model", model,
            "--calib", calib, "--device", device, "--frames", str(frames),
            "--stall", str(stall), "--out", str(out), "--synth" if synth else "--no-synth",
            "--clock", clock, "--least", least, *(["--formats", formats] if formats else [])]
    t0 = time.time()
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    row = {"network": net, "device": device, "wall_s": round(time.time() - t0, 1)}
    if clock != "estimate":
        row["dse_clock"] = clock
    if least != "resources":
        row["dse_least"] = least
    if formats:
        row["formats"] = formats
    if r.returncode != 0:
        err = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
        row["result"] = err[-1][7:] if err else f"exit {r.returncode}"
        return row
    return collect(row, out, frames=frames)


def run_tag(clock: str = "estimate", least: str = "resources", formats: str | None = None) -> str:
    """A run directory's suffix: what its flow's DSE did other than by default (the weight
    formats it was given, e.g. ``-int8``; cycles; the fewest multipliers)."""
    return ((f"-{formats.replace(',', '-')}" if formats else "")
            + ("-cycles" if clock == "assumed" else "")
            + ("-fewest" if least == "multipliers" else ""))


def lone_latency(run: Path) -> int:
    """The lone-frame latency the current model (:mod:`dse.latency`) predicts for a run's design
    point on its workload (what ``latency_cycles`` of a DSE run today says)."""
    from contract.point import LayerChoice
    from dse import devices
    from dse.cost import for_budget, layer_cost
    from dse.latency import layer_timing, lone_frame_latency, rows_of
    from dse.workload import Workload

    w = Workload.from_json((run / "dse" / "workload.json").read_text())
    point = json.loads((run / "point.json").read_text())
    b = point["dse"]["budget"]
    model = for_budget(devices.budget(b["device"], b["util"]))
    choice = {c["name"]: LayerChoice.from_dict(c) for c in point["layers"]}
    pos = {x.name: i for i, x in enumerate(w.layers)}
    rows = [rows_of(x, tuple(pos[p] for p in x.producers)) for x in w.layers]
    return lone_frame_latency(rows, [layer_cost(x, choice[x.name], model=model).cycles
                                     for x in w.layers],
                              [layer_timing(x, choice[x.name]) for x in w.layers])


def collect(row: dict, out: Path, *, frames: int) -> dict:
    """``row`` completed from a finished flow run in ``out``."""
    pick = json.loads((out / "pick.json").read_text())
    sim = json.loads((out / "build" / "sim_summary.json").read_text())
    point = json.loads((out / "point.json").read_text())["dse"]
    # the II: frames back to back with no stalls, the first frame (pipeline fill) left out
    r0 = subprocess.run([sys.executable, "-m", "codesign", "sim", "--build", str(out / "build"),
                         "--frames", str(frames + 1), "--stall", "0"], cwd=ROOT,
                        capture_output=True, text=True)
    steady = lone = None
    if r0.returncode == 0:
        s0 = json.loads((out / "build" / "sim_summary.json").read_text())
        steady = s0["interval_cycles"]["mean"]  # frames 2..N back to back
        lone = s0["first_frame_cycles"]  # into an empty pipeline: a lone frame's latency
    row.update(result="ok", mismatches=sim["mismatches"], frames=sim["frames"],
               stall=sim["stall"][0], ii_pred=pick["ii_cycles"], ii_sim=steady,
               latency_pred=lone_latency(out), latency_sim=lone,
               dsp=point["dsp"], lut=point["lut"], ff=point["ff"], bram18=point["bram18"],
               clock_mhz=json.loads((out / "point.json").read_text())["clock_mhz"])
    res = out / "build" / "resources.json"
    if res.is_file():
        y = json.loads(res.read_text())
        row.update(yosys_lut=y.get("lut_total", y.get("lut")), yosys_dsp=y.get("dsp"),
                   yosys_bram18=y.get("bram18"))
    return row


def report_notes(md: Path) -> list[str]:
    """The paragraphs a written report holds between its method paragraph and its table (what
    was said of its rows by hand), so that ``--merge`` keeps them; none when there is no
    report."""
    if not md.is_file():
        return []
    lines = md.read_text().splitlines()
    table = next((i for i, ln in enumerate(lines) if ln.startswith("| network |")), len(lines))
    return [ln for ln in lines[4:table] if ln.strip()]


def write_report(rows, out: Path, *, frames: int, stall: float, notes=()) -> None:
    """``standard_networks.csv`` and ``.md`` in ``out`` from the rows of :func:`run_one`;
    ``notes``: paragraphs between the method paragraph and the table."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    df.to_csv(out / "standard_networks.csv", index=False)
    lines = ["# Standard networks through `codesign flow`", "",
             f"`python benchmarks/standard_networks.py` ({frames} frames per run at stall "
             f"{stall}, Verilator, against the integer golden model). II in cycles per "
             "frame: predicted by the DSE, and simulated with frames back to back and no stalls "
             "(the first frame's fill left out). Latency: a lone frame (the first one, into an "
             "empty pipeline, no stalls), predicted and simulated. Resources: the DSE's model "
             "of the chosen point.",
             "", *(x for n in notes for x in (n, "")),
             "| network | device | result | mismatches | II pred | II sim | latency pred | "
             "latency sim | DSP | LUT | BRAM18 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        how = ([str(r["formats"])] if r.get("formats") else []) + [
            w for k, w in (("dse_clock", "cycles"), ("dse_least", "fewest multipliers"))
            if r.get(k) in ("assumed", "multipliers")]
        if how:  # its formats; the DSE minimised cycles, not time; kept the fewest multipliers
            r = {**r, "network": f"{r['network']} ({', '.join(how)})"}
        if r.get("result") != "ok":
            lines.append(f"| {r['network']} | {r['device']} | {r['result']} | | | | | | | | |")
            continue
        lines.append(f"| {r['network']} | {r['device']} | ok ({int(r['frames'])} frames) | "
                     f"{int(r['mismatches'])} | {_num(r['ii_pred'])} | {_num(r['ii_sim'])} | "
                     f"{_num(r['latency_pred'])} | {_num(r['latency_sim'])} | "
                     f"{_num(r['dsp'])} | {_num(r['lut'])} | {_num(r['bram18'])} |")
    (out / "standard_networks.md").write_text("\n".join(lines) + "\n")


def _num(v) -> str:
    return "n/a" if v is None or v != v else f"{v:,.0f}"


def main(argv=None) -> int:
    import pandas as pd

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nets", default=",".join(NETS))
    p.add_argument("--devices", default=",".join(DEVICES))
    p.add_argument("--frames", type=int, default=5)
    p.add_argument("--stall", type=float, default=0.3)
    p.add_argument("--synth", action="store_true", help="Yosys resource counts (slow)")
    p.add_argument("--clock", choices=("estimate", "assumed"), default="estimate",
                   help="the flow's DSE objective: time at each design's estimated clock "
                        "(default) or cycles (`codesign flow --clock`); an `assumed` run's "
                        "directory and row say so")
    p.add_argument("--least", choices=("resources", "multipliers"), default="resources",
                   help="what the DSE's points keep least of at their II (`codesign flow "
                        "--least`); a `multipliers` run's directory and row say so")
    p.add_argument("--formats", default=None,
                   help="the weight formats the flow's DSE may choose (`codesign flow --formats`; "
                        "default the flow's); a run's directory and row name them")
    p.add_argument("--runs", default=str(ROOT / "runs" / "standard"))
    p.add_argument("--out", default=str(ROOT / "reports"))
    p.add_argument("--merge", nargs="+", metavar="CSV",
                   help="no runs: write the report from the rows of earlier runs' CSVs (with the "
                        "lone-frame latency the current model predicts for their run directories)")
    args = p.parse_args(argv)
    if args.merge:
        rows = []
        for f in args.merge:
            rows += [{k: v for k, v in r.items() if not pd.isna(v)}
                     for r in pd.read_csv(f).to_dict("records")]
        for r in rows:  # the latency the current model predicts for each run's design
            tag = run_tag(r.get("dse_clock", "estimate"), r.get("dse_least", "resources"),
                          r.get("formats"))
            run = Path(args.runs) / f"{r['network']}-{r['device']}{tag}"
            if r.get("result") == "ok" and (run / "dse" / "workload.json").is_file():
                r["latency_pred"] = lone_latency(run)
        # what the report said of its rows by hand stays (edit it for the new ones)
        write_report(rows, Path(args.out), frames=args.frames, stall=args.stall,
                     notes=report_notes(Path(args.out) / "standard_networks.md"))
        print(f"wrote {Path(args.out) / 'standard_networks.csv'}, .md")
        return 0
    rows = []
    for net in args.nets.split(","):
        for dev in args.devices.split(","):
            print(f"{net} on {dev} ...", flush=True)
            tag = run_tag(args.clock, args.least, args.formats)
            row = run_one(net, dev, out=Path(args.runs) / f"{net}-{dev}{tag}",
                          frames=args.frames, stall=args.stall, synth=args.synth,
                          clock=args.clock, least=args.least, formats=args.formats)
            print(f"  {row}", flush=True)
            rows.append(row)
    write_report(rows, Path(args.out), frames=args.frames, stall=args.stall)
    print(f"wrote {Path(args.out) / 'standard_networks.csv'}, .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
