"""``codesign flow``: model -> DSE Pareto front -> fastest point within an accuracy drop -> Verilog
+ Yosys resources -> bit-exact co-simulation -> (Lattice parts) placement, routing, timing and the
bitstream -> ``DIR/report.md``.

Every stage is skipped on a re-run when its inputs are unchanged (see :mod:`codesign.pipeline`).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from common.digest import file_digest
from common.errors import CodesignError
from common.fsutil import write_json

from ..options import (
    arg,
    check_count,
    check_drop,
    check_fraction,
    check_mhz,
    check_probability,
    check_seconds,
)
from ..pipeline import FlowConfig, Stage, run_flow
from . import add_model_arguments, resolve_model

NAME = "flow"
HELP = "run the whole flow (train/reuse, DSE, pick, build, co-simulate, report)"


def add_arguments(p):
    d = FlowConfig()
    add_model_arguments(p, required=False, default=d.model)
    p.add_argument("--device", default=d.device, help=f"FPGA part (default {d.device})")
    p.add_argument("--util", type=arg(check_fraction, "--util"), default=d.util,
                   help="utilisation ceiling (0, 1]")
    p.add_argument("--formats", default=d.formats, help="weight formats the DSE may choose")
    p.add_argument("--clock-mhz", type=arg(check_mhz, "--clock-mhz"), default=d.clock_mhz,
                   help=f"the assumed clock (default {d.clock_mhz:g}): of --clock assumed, of "
                        "the figures in us, and of the implement stage under --clock assumed "
                        "(under --clock estimate it constrains place and route to the chosen "
                        "point's estimated Fmax)")
    p.add_argument("--points", type=arg(check_count, "--points", high=1000), default=d.points,
                   help="Pareto points to sweep")
    p.add_argument("--time-limit", type=arg(check_seconds, "--time-limit"),
                   default=d.time_limit,
                   help=f"the DSE's CBC seconds per program (default {d.time_limit:g}; a large "
                        "network on a tight part may need more)")
    p.add_argument("--clock", choices=("estimate", "assumed"), default=d.clock,
                   help="the DSE's objective: time at each design's estimated clock (default) "
                        "or cycles at --clock-mhz (as `codesign dse --clock`)")
    p.add_argument("--least", choices=("resources", "multipliers"), default=d.least,
                   help="what the DSE's points keep least of among the designs of their II (as "
                        "`codesign dse --least`)")
    p.add_argument("--max-drop", type=arg(check_drop, "--max-drop"), default=d.max_drop,
                   help="accuracy drop allowed for the chosen point, as a fraction (0.01 = 1 pt)")
    p.add_argument("--frames", type=arg(check_count, "--frames", high=100_000), default=d.frames,
                   help="frames to co-simulate")
    p.add_argument("--sim", default=d.sim, choices=("verilator", "icarus"))
    p.add_argument("--stall", type=arg(check_probability, "--stall"), default=d.stall,
                   help="stall probability in the sim")
    p.add_argument("--synth", action=argparse.BooleanOptionalAction, default=d.synth,
                   help="Yosys resource counts (default on)")
    p.add_argument("--implement", action=argparse.BooleanOptionalAction, default=d.implement,
                   help="place, route and time the design with nextpnr (`codesign implement`); "
                        "default on for Lattice ECP5 parts, which are the parts it takes")
    p.add_argument("--finetune", type=arg(check_count, "--finetune", low=0, high=10_000),
                   default=d.finetune, metavar="N",
                   help="fine-tune every front point N epochs in its formats (QAT); the chosen "
                        "point is built, simulated and measured with its fine-tuned weights")
    p.add_argument("--out", default=None, help="run directory (default runs/flow-<model>)")
    p.add_argument("--force", action="store_true", help="redo every stage")


def out_dir(args) -> str:
    """The run directory: ``--out`` or ``runs/flow-<model file stem>``."""
    return args.out or f"runs/flow-{Path(str(args.model).split(':')[0]).stem}"


def locks(args) -> list:
    """The directories this command writes (held locked while it runs)."""
    return [out_dir(args)]


def defaults(**kw) -> argparse.Namespace:
    """The arguments of ``codesign flow`` with its defaults, overridden by ``kw``."""
    p = argparse.ArgumentParser()
    add_arguments(p)
    ns = p.parse_args([])
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def _cli(argv: list[str]) -> None:
    from ..cli import build_parser, run_command

    args = build_parser().parse_args(argv)
    code = run_command(args)  # holding the step's own directory lock (out/dse, out/build)
    if code:
        raise CodesignError(f"`codesign {' '.join(argv)}` exited with {code}", code)


def pick_point(pareto_csv: Path, max_drop: float) -> dict:
    """The fastest Pareto point (in time at its estimated clock where the DSE counted time, in
    cycles otherwise) whose predicted accuracy is within ``max_drop`` of the best and,
    where the DSE measured the points (``accuracy_measured``, the held-out ``eval`` set), whose
    measured accuracy is within ``max_drop`` of the best measured one too."""
    import pandas as pd

    df = pd.read_csv(pareto_csv)
    if df.empty:
        raise CodesignError(f"{pareto_csv} holds no Pareto point")
    best = float(df["accuracy_pred"].max())
    ok = df[df["accuracy_pred"] >= best - max_drop - 1e-12]
    measured = df["accuracy_measured"] if "accuracy_measured" in df else None
    best_measured = None
    if measured is not None and measured.notna().any():
        best_measured = float(measured.max())
        both = ok[ok["accuracy_measured"].isna()
                  | (ok["accuracy_measured"] >= best_measured - max_drop - 1e-12)]
        ok = both if len(both) else ok
    info = pareto_csv.parent / "front.json"
    if info.is_file() and json.loads(info.read_text()).get("clock") == "estimate":
        # the DSE numbered its points fastest first in time at each one's estimated clock
        row = ok.sort_values("point").iloc[0]
    else:
        row = ok.sort_values(["ii_cycles", "latency_cycles", "accuracy_pred"],
                             ascending=[True, True, False]).iloc[0]
    got = row.get("accuracy_measured")
    return {"point": int(row["point"]), "accuracy_pred": float(row["accuracy_pred"]),
            "accuracy_measured": None if got is None or pd.isna(got) else float(got),
            "best_accuracy_pred": best, "best_accuracy_measured": best_measured,
            "max_drop": max_drop,
            "ii_cycles": int(row["ii_cycles"]), "latency_cycles": int(row["latency_cycles"]),
            "candidates": int(len(ok)), "front": int(len(df))}


def run(args) -> int:
    from models.zoo import ModelError

    cfg = FlowConfig(model=resolve_model(args.model, args.calib, args.val), device=args.device,
                     util=args.util, formats=args.formats,
                     clock_mhz=args.clock_mhz, points=args.points, max_drop=args.max_drop,
                     frames=args.frames, sim=args.sim, stall=args.stall, synth=args.synth,
                     implement=args.implement, finetune=args.finetune,
                     time_limit=args.time_limit, clock=args.clock, least=args.least,
                     out=out_dir(args))
    _check_inputs(cfg)
    out = Path(cfg.out)
    paths = {
        "model": out / "model.json",
        "dse": out / "dse",
        "pick": out / "pick.json",
        "point": out / "point.json",
        "build": out / "build",
        "accuracy": out / "accuracy.json",
        "report": out / "report.md",
    }
    state = {}

    def ckpt() -> str:
        return json.loads(paths["model"].read_text())["checkpoint"]

    def hw_ckpt() -> str:
        """The weights that go to hardware: the model's, or with ``--finetune`` the chosen
        point's fine-tuned ones."""
        if not cfg.finetune:
            return ckpt()
        k = json.loads(paths["pick"].read_text())["point"]
        path = paths["dse"] / "finetuned" / f"point_{k}" / "model.pt"
        if not path.is_file():
            raise CodesignError(f"{path} is missing; re-run with --force")
        return str(path)

    def verilog() -> Path:
        m = json.loads((paths["build"] / "manifest.json").read_text())
        return paths["build"] / m["verilog"]

    def do_model():
        from models import zoo

        try:
            b = zoo.load(cfg.model)
        except ModelError as exc:
            raise CodesignError(str(exc)) from None
        write_json(paths["model"], {"model": b.name, "checkpoint": str(b.checkpoint.resolve()),
                                    "sha256": file_digest(b.checkpoint),
                                    "metrics": b.meta.get("metrics", {})})

    def do_dse():
        if paths["dse"].exists():
            shutil.rmtree(paths["dse"])
        _cli(["dse", "--model", ckpt(), "--device", cfg.device, "--util", str(cfg.util),
              "--formats", cfg.formats, "--clock-mhz", str(cfg.clock_mhz),
              "--points", str(cfg.points), "--finetune", str(cfg.finetune),
              "--time-limit", str(cfg.time_limit), "--clock", cfg.clock, "--least", cfg.least,
              "--out", str(paths["dse"])])

    def do_pick():
        choice = pick_point(paths["dse"] / "pareto.csv", cfg.max_drop)
        src = paths["dse"] / f"point_{choice['point']}.json"
        if not src.is_file():
            raise CodesignError(f"{src} is missing; re-run with --force")
        write_json(paths["point"], json.loads(src.read_text()))
        write_json(paths["pick"], choice)

    def do_build():
        if paths["build"].exists():
            shutil.rmtree(paths["build"])
        argv = ["build", "--model", hw_ckpt(), "--point", str(paths["point"]),
                "--out", str(paths["build"])]
        # a Lattice part's resources come from nextpnr (implement), not synth_xilinx; the part
        # sizes the requantizers' multipliers either way
        synth = cfg.synth and not cfg.lattice
        _cli(argv + ["--synth" if synth else "--no-synth", "--device", cfg.device])

    def do_sim():
        _cli(["sim", "--build", str(paths["build"]), "--frames", str(cfg.frames),
              "--sim", cfg.sim, "--stall", str(cfg.stall)])

    def do_implement():
        clock = cfg.implement_clock_mhz(json.loads(paths["point"].read_text()))
        _cli(["implement", "--build", str(paths["build"]), "--device", cfg.device,
              "--clock-mhz", str(clock)])

    def do_accuracy():
        from models import zoo

        b = zoo.load(ckpt())
        hw = zoo.load(hw_ckpt()) if cfg.finetune else b  # the weights in the hardware
        point = json.loads(paths["point"].read_text())
        formats = {layer["name"]: layer["format"] for layer in point["layers"]}
        fixed = bool(getattr(b.qnet_base, "fixed_formats", False))
        imported = (b.meta.get("metrics") or {}) if fixed else {}
        res = {
            # an imported QONNX model: its own (qonnx) execution, and no int8 variant of it
            "float": imported.get("float_accuracy") if fixed else
            b.evaluate(None, split="test")["accuracy"],
            "float_is": imported.get("float_is", "the float model"),
            "int8": None if fixed else b.evaluate("int8", split="test", mode="int").get("accuracy"),
            "chosen": hw.evaluate(formats, split="test", mode="int").get("accuracy"),
            "chosen_metrics": hw.evaluate(formats, split="test", mode="int"),
            "predicted": json.loads(paths["pick"].read_text())["accuracy_pred"],
            "split": "test",
        }
        if not fixed:
            # the DSE's held-out evaluation set (pooled over cross-validation folds where the
            # data set is small): the chosen point against all-int8, and the flow's bound
            e8 = b.evaluate("int8", split="eval", mode="int")
            ec = b.evaluate(formats, split="eval", mode="int")
            metric = "accuracy" if "accuracy" in ec else next(iter(ec))
            chosen = ec[metric]
            if cfg.finetune:
                # measured by the DSE on the same samples (every fold's model fine-tuned alike)
                import pandas as pd

                front = pd.read_csv(paths["dse"] / "pareto.csv").set_index("point")
                k = json.loads(paths["pick"].read_text())["point"]
                chosen = float(front.loc[k, "accuracy_finetuned"])
                res["finetune"] = {"epochs": cfg.finetune, "before": ec[metric],
                                   "after": chosen, "gain": chosen - ec[metric],
                                   "checkpoint": hw_ckpt()}
            res["eval"] = {"n": int(ec.get("n", 0)), "int8": e8[metric], "chosen": chosen,
                           "drop": e8[metric] - chosen, "max_drop": cfg.max_drop,
                           "within_bound": e8[metric] - chosen <= cfg.max_drop + 1e-12,
                           "cv_folds": b.spec.cv_folds}
            res["test_n"] = int(res["chosen_metrics"].get("n", 0))
        if imported.get("qonnx_agreement"):
            res["qonnx_agreement"] = imported["qonnx_agreement"]
        write_json(paths["accuracy"], res)

    def do_report():
        from reports.report import write_report

        state["summary"] = write_report(out, cfg)

    def digests(*names, keys=None):
        """A stage's key: the digests of the files it reads and the options it uses (``keys``;
        None: every option), so that changing ``--frames`` re-runs the simulation only."""
        def f():
            d = cfg.to_json()
            if keys is not None:
                d = {k: d[k] for k in keys}
            for n in names:
                p = paths[n] if n in paths else out / n
                d[n] = file_digest(p) if p.is_file() else None
            return d
        return f

    stages = [
        Stage("model", do_model, lambda: [paths["model"]], lambda: {"model": cfg.model}),
        Stage("dse", do_dse, lambda: [paths["dse"] / "pareto.csv"],
              digests("model", keys=("device", "util", "formats", "clock_mhz", "points",
                                     "finetune", "time_limit", "clock", "least"))),
        Stage("pick", do_pick, lambda: [paths["pick"], paths["point"]],
              lambda: {**digests(keys=("max_drop",))(),
                       "pareto": file_digest(paths["dse"] / "pareto.csv")}),
        Stage("build", do_build, lambda: [paths["build"] / "manifest.json", verilog()],
              lambda: {**digests("model", "point", keys=("synth", "device"))(),
                       "weights": file_digest(hw_ckpt())}),
        Stage("sim", do_sim, lambda: [paths["build"] / "sim_summary.json"],
              lambda: {**digests("model", "point", keys=("frames", "sim", "stall"))(),
                       "manifest": file_digest(paths["build"] / "manifest.json"),
                       "verilog": file_digest(verilog())}),
        *([Stage("implement", do_implement,
                 lambda: [paths["build"] / "implementation.json"],
                 lambda: {**digests("point", keys=("device", "clock_mhz", "clock"))(),
                          "verilog": file_digest(verilog())})]
          if cfg.implements else []),
        Stage("accuracy", do_accuracy, lambda: [paths["accuracy"]],
              lambda: {**digests("model", "point", "pick", keys=("finetune",))(),
                       "weights": file_digest(hw_ckpt())}),
        Stage("report", do_report, lambda: [paths["report"]],
              lambda: {**digests("model", "point", "pick", "accuracy")(),
                       "sim": file_digest(paths["build"] / "sim_summary.json"),
                       "implementation": (file_digest(paths["build"] / "implementation.json")
                                          if cfg.implements else None),
                       "verilog": file_digest(verilog())}),
    ]
    run_flow(stages, out / ".flow", force=args.force)
    from reports.report import summary_text

    print(summary_text(out))
    return 0


def _check_inputs(cfg: FlowConfig) -> None:
    """Fail before any work on a bad model, device or format name."""
    from models import zoo
    from models.quant.formats import WEIGHT_FORMATS

    name = cfg.model
    if not (name.endswith(".pt") or "/" in name):
        try:
            zoo.spec(name)
        except zoo.ModelError as exc:
            raise CodesignError(str(exc)) from None
    elif not Path(name).exists():
        raise CodesignError(f"checkpoint {name} does not exist")
    try:
        from dse.devices import device

        device(cfg.device)
    except ImportError:
        pass
    except Exception as exc:  # the device table names the valid parts
        raise CodesignError(str(exc).splitlines()[0]) from None
    if cfg.implement and not cfg.lattice:
        from dse.devices import lattice_parts

        raise CodesignError(f"--implement: {cfg.device} has no open place-and-route flow; it "
                            f"takes the Lattice ECP5 parts ({lattice_parts()})")
    for f in cfg.formats.split(","):
        if f not in WEIGHT_FORMATS:
            raise CodesignError(
                f"unknown format {f!r} in --formats; valid formats: {', '.join(WEIGHT_FORMATS)}"
            )
