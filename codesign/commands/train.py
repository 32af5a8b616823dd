"""``codesign train``: train a zoo model, quantize it (PTQ or QAT) and write metrics; or import
your own PyTorch model (``file.py:factory`` with ``--calib``: traced, calibrated, PTQ)."""

from __future__ import annotations

import json

from codesign.options import arg, check_abits, check_count, check_seed
from common.errors import CodesignError

NAME = "train"
HELP = "train and quantize a model; writes DIR/model.pt and DIR/metrics.json"


def locks(args) -> list:
    """The directories this command writes (held locked while it runs)."""
    return [args.out]


def add_arguments(p):
    from models.quant.formats import TRAIN_FORMATS

    p.add_argument("--model", required=True,
                   help="digits, eventdigits or eye; or your model as file.py:factory (imported "
                        "with its own weights and calibrated on --calib)")
    p.add_argument("--calib", default=None, help="calibration inputs of a file.py:factory model")
    p.add_argument("--val", default=None,
                   help="held-out inputs of a file.py:factory model (the DSE's sens and eval "
                        "sets; default: the halves of --calib)")
    p.add_argument("--format", default="fp32", help=f"one of {', '.join(TRAIN_FORMATS)}")
    p.add_argument("--qat", action="store_true", help="quantization-aware fine-tuning")
    p.add_argument("--epochs", type=arg(check_count, "--epochs", high=100_000), default=None,
                   help="float training epochs")
    p.add_argument("--qat-epochs", type=arg(check_count, "--qat-epochs", low=0, high=100_000),
                   default=None, help="QAT epochs (default epochs/3)")
    p.add_argument("--abits", type=arg(check_abits, "--abits"), default=8,
                   help="activation bits (8 or 4)")
    p.add_argument("--seed", type=arg(check_seed, "--seed"), default=0)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    from pathlib import Path

    from models import user
    from models.checkpoint import CHECKPOINT_VERSION
    from models.quant.formats import FormatError
    from models.train import TrainConfig, train
    from models.zoo import ModelError

    if user.is_user_ref(args.model):
        if args.epochs is not None or (args.format != "fp32" and not args.qat):
            raise CodesignError("a file.py:factory model is imported with its own weights: "
                                "--epochs is for the built-in networks; --format goes with --qat "
                                "(quantization-aware fine-tuning of the import)")
        if args.qat and args.format == "fp32":
            raise CodesignError("--qat needs a quantized --format (int8, int4, dybit4, dybit8)")
        if args.calib is None:
            raise CodesignError(f"{args.model} is a PyTorch model: give its calibration inputs "
                                "with --calib")
        try:
            metrics = user.import_model(
                args.model, args.calib, Path(args.out) / "model.pt", version=CHECKPOINT_VERSION,
                abits=args.abits, qat_format=args.format if args.qat else None,
                qat_epochs=5 if args.qat_epochs is None else args.qat_epochs,
                progress=not args.quiet, val=args.val)
        except (ModelError, ValueError) as exc:
            raise CodesignError(str(exc).splitlines()[0]) from None
        print(json.dumps(metrics))
        return 0
    for name, given in (("--calib", args.calib), ("--val", args.val)):
        if given is not None:
            raise CodesignError(f"{name} is for a file.py:factory model, not {args.model!r}")

    try:
        cfg = TrainConfig(model=args.model, format=args.format, qat=args.qat, epochs=args.epochs,
                          qat_epochs=args.qat_epochs, seed=args.seed, abits=args.abits)
    except (FormatError, ModelError, ValueError) as exc:
        raise CodesignError(str(exc)) from None
    metrics = train(cfg, args.out, progress=not args.quiet)
    print(json.dumps(metrics))
    return 0
