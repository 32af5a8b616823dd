"""Accuracy of fp32 and every weight format, PTQ vs QAT at equal epochs, over several seeds.

For each seed: float training for ``--epochs``; then, from that model, per format,
- PTQ: ``--ft-epochs`` more float epochs at lr/10, then quantize (MSE scales, calibrated
  activations);
- QAT: ``--ft-epochs`` fake-quant epochs at lr/10 with the same schedule.
Accuracies are test-split accuracies of the integer reference (equal to the fake-quant model's).
Prints a table (mean and spread over seeds) and writes ``reports/quant_accuracy.csv``.

    python benchmarks/quant_accuracy.py [--model digits] [--seeds 0 1 2] [--epochs 30] \
        [--ft-epochs 10]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.fsutil import atomic_path  # noqa: E402
from models.quant.formats import WEIGHT_FORMATS  # noqa: E402
from models.zoo import spec as get_spec  # noqa: E402


def run_seed(s, seed, epochs, ft_epochs, formats, progress):
    torch.manual_seed(seed)
    lr = getattr(s, "lr", 1e-2)
    base = s.build()
    s.fit(base, epochs=epochs, lr=lr, seed=seed, progress=progress)
    rows = [{"seed": seed, "format": "fp32", "method": "float",
             "accuracy": s.evaluate(base, split="test", mode="float")["accuracy"]}]
    s.qnet(base).fold_bn()
    s.qnet(base).calibrate(s.calibration_batches(base))
    ptq_base = copy.deepcopy(base)
    s.fit(ptq_base, epochs=ft_epochs, lr=lr / 10, seed=seed + 1, progress=progress)
    rows.append({"seed": seed, "format": "fp32", "method": "float+ft",
                 "accuracy": s.evaluate(ptq_base, split="test", mode="float")["accuracy"]})
    s.qnet(ptq_base).calibrate(s.calibration_batches(ptq_base))
    for fmt in formats:
        ptq = copy.deepcopy(ptq_base)
        s.qnet(ptq).set_formats(fmt)
        rows.append({"seed": seed, "format": fmt, "method": "PTQ",
                     "accuracy": s.evaluate(ptq, split="test", mode="int")["accuracy"]})
        qat = copy.deepcopy(base)
        s.qnet(qat).set_formats(fmt)
        s.qnet(qat).set_mode("fake")
        s.fit(qat, epochs=ft_epochs, lr=lr / 10, seed=seed + 1, progress=progress)
        fake = s.evaluate(qat, split="test", mode="fake")["accuracy"]
        integer = s.evaluate(qat, split="test", mode="int")["accuracy"]
        assert fake == integer, (fmt, fake, integer)
        rows.append({"seed": seed, "format": fmt, "method": "QAT", "accuracy": integer})
        print(f"  seed {seed} {fmt:7s} PTQ {rows[-2]['accuracy']:.4f}  QAT {integer:.4f}",
              flush=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="digits")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--ft-epochs", type=int, default=10)
    p.add_argument("--formats", default=",".join(WEIGHT_FORMATS))
    p.add_argument("--out", default=str(ROOT / "reports" / "quant_accuracy.csv"))
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    s = get_spec(args.model)
    formats = args.formats.split(",")
    t0 = time.time()
    rows = []
    for seed in args.seeds:
        rows += run_seed(s, seed, args.epochs, args.ft_epochs, formats, args.progress)
    df = pd.DataFrame(rows)
    df["model"] = args.model
    df["epochs"] = args.epochs
    df["ft_epochs"] = args.ft_epochs
    summary = (df.groupby(["format", "method"], sort=False)["accuracy"]
               .agg(["mean", "std", "min", "max", "count"]).reset_index())
    with atomic_path(args.out) as tmp:
        df.to_csv(tmp, index=False)
    pd.set_option("display.width", 120)
    print(f"\n{args.model}: test accuracy over seeds {args.seeds} "
          f"({args.epochs} float epochs + {args.ft_epochs} PTQ-float / QAT epochs), "
          f"{time.time() - t0:.0f} s")
    print(summary.assign(**{c: summary[c] * 100 for c in ("mean", "std", "min", "max")})
           .round(2).to_string(index=False))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
