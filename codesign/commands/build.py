"""``codesign build``: Verilog, manifest and (optionally) Yosys resources of one design point."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.errors import CodesignError

from . import add_model_arguments, resolve_model

NAME = "build"
HELP = ("generate the accelerator of a model at a design point: DIR/verilog/<top>.v, "
        "DIR/manifest.json and, with --synth, DIR/resources.json")


def locks(args) -> list:
    """The directories this command writes (held locked while it runs)."""
    return [args.out]


def add_arguments(p):
    add_model_arguments(p)
    p.add_argument("--point", default="default", metavar="P.json|default",
                   help="design point JSON from `codesign dse`, or 'default' (default)")
    p.add_argument("--format", default="int8",
                   help="weight format of every layer for --point default (default int8)")
    p.add_argument("--out", required=True, metavar="DIR", help="build directory")
    p.add_argument("--synth", action=argparse.BooleanOptionalAction, default=False,
                   help="also synthesize with Yosys (synth_xilinx) and write resources.json, "
                        "with the estimated Fmax of a Xilinx part (no placer: an estimate)")
    p.add_argument("--device", default=None, metavar="PART",
                   help="the target part: its DSP width sizes the requantizers' multipliers "
                        "(a Lattice part's MULT18X18D splits accumulators over 19 bits), and "
                        "--synth synthesizes for its family: a 7-series part (XC7Z020, "
                        "XC7A100T) in Yosys' xc7 cells, UltraScale+ in xcup cells (default: "
                        "xcup)")


def _qgraph(model: str, formats):
    path = Path(model)
    if path.suffix == ".json":
        if not path.is_file():
            raise CodesignError(f"QGraph file {path} does not exist")
        from models.qgraph import GraphError, QGraph

        try:
            return QGraph.load(path), path.stem
        except (GraphError, KeyError, TypeError, ValueError) as exc:
            raise CodesignError(f"{path} is not a valid QGraph: {exc}") from None
    from models import zoo
    from models.quant.formats import FormatError

    try:
        bundle = zoo.load(model)
        return bundle.qgraph(formats), bundle.name
    except (zoo.ModelError, FormatError) as exc:
        raise CodesignError(str(exc)) from None


def run(args) -> int:
    from contract.point import DesignPoint, load_point

    family = "xcup"
    if args.device is not None:
        from dse.devices import device

        family = device(args.device).synth_family

    args.model = resolve_model(args.model, args.calib, args.val)
    from hw.build import build, top_name
    from models.quant.formats import WEIGHT_FORMATS

    if args.point == "default":
        if args.format not in WEIGHT_FORMATS:
            raise CodesignError(
                f"unknown format {args.format!r}; valid formats: {', '.join(WEIGHT_FORMATS)}")
        qgraph, name = _qgraph(args.model, args.format)
        point = DesignPoint.default(qgraph, model=name)
    else:
        point = load_point(args.point)
        formats = {c.name: c.format for c in point.layers}
        qgraph, name = _qgraph(args.model, formats)
        point.validate(qgraph)
        fixed = {n.name: n.wformat for n in qgraph.compute_nodes()}
        for layer, fmt in formats.items():
            if fixed.get(layer) != fmt:
                raise CodesignError(
                    f"layer {layer}: the point asks for {fmt} weights but {args.model} holds "
                    f"{fixed.get(layer)} (a QGraph file is already quantized); use a point with "
                    "its formats, or build from the model or checkpoint")
    # the manifest names the model as cosim must reload it: a registry name, or an absolute path
    ref = str(Path(args.model).resolve()) if Path(args.model).exists() else args.model
    manifest = build(qgraph, point, args.out, synth=args.synth, model=ref, top=top_name(name),
                     family=family,
                     progress=lambda msg: print(f"build: {msg}", file=sys.stderr, flush=True))
    summary = {"top": manifest["top"], "verilog": str(Path(args.out) / manifest["verilog"]),
               "manifest": str(Path(args.out) / "manifest.json")}
    if args.synth:
        res = json.loads((Path(args.out) / "resources.json").read_text())
        summary.update({k: res[k] for k in ("lut", "ff", "dsp", "bram18")})
        if (res.get("timing") or {}).get("fmax_mhz"):
            summary["fmax_estimate_mhz"] = res["timing"]["fmax_mhz"]
    print(json.dumps(summary), file=sys.stdout)
    return 0
