"""Weight SQNR of DyBit against integer formats on real pretrained weights.

The weights are MTCNN's (P-Net, R-Net, O-Net: 14 conv and linear layers, trained on WIDER FACE and
CelebA), shipped inside the ``facenet-pytorch`` wheel on the package index. The wheel is fetched
with ``pip download --no-deps`` (its torch pin is not installed) into the model cache and its
``.pt`` state dicts are read from the zip; no code of the package runs.

Every weight tensor is quantized per output channel with the project's MSE-optimal scale
(``models.quant.layers.mse_weight_scale``) to int4, dybit4, int8 and dybit8, and its SQNR is
``10 log10(sum w^2 / sum (w - q(w))^2)`` dB. Writes ``reports/dybit_sqnr.csv``, ``.md`` and a plot.

    python benchmarks/dybit_sqnr.py
"""

from __future__ import annotations

import argparse
import io
import math
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FORMATS = ("int4", "dybit4", "int8", "dybit8")
WHEEL = "facenet-pytorch==2.6.0"
NETS = ("pnet", "rnet", "onet")


def fetch_wheel(cache: Path) -> Path:
    """The facenet-pytorch wheel, downloaded once into ``cache``."""
    found = sorted(cache.glob("facenet_pytorch-*.whl"))
    if found:
        return found[-1]
    cache.mkdir(parents=True, exist_ok=True)
    print(f"fetching {WHEEL} (weights only, no dependencies) into {cache}", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache),
                    WHEEL], check=True)
    found = sorted(cache.glob("facenet_pytorch-*.whl"))
    if not found:
        raise SystemExit(f"error: pip did not leave a facenet_pytorch wheel in {cache}")
    return found[-1]


def weights(wheel: Path) -> dict:
    """``{"pnet.conv1.weight": tensor, ...}``: every conv / linear weight of the three nets."""
    import torch

    out = {}
    with zipfile.ZipFile(wheel) as z:
        for net in NETS:
            state = torch.load(io.BytesIO(z.read(f"facenet_pytorch/data/{net}.pt")),
                               map_location="cpu", weights_only=True)
            for k, v in state.items():
                if k.endswith(".weight") and v.dim() in (2, 4):
                    out[f"{net}.{k[:-len('.weight')]}"] = v.double()
    return out


def sqnr(w, fmt: str) -> float:
    from models.quant.formats import weight_format
    from models.quant.layers import mse_weight_scale

    f = weight_format(fmt)
    s = mse_weight_scale(w, fmt).view(-1, *[1] * (w.dim() - 1))
    q = f.round(w / s) * s
    noise = float(((w - q) ** 2).sum())
    return math.inf if noise == 0 else 10 * math.log10(float((w ** 2).sum()) / noise)


def main(argv=None) -> int:
    import pandas as pd

    from models.checkpoint import cache_dir

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "reports"), help="report directory")
    args = p.parse_args(argv)
    ws = weights(fetch_wheel(cache_dir() / "wheels"))
    rows = []
    for name, w in ws.items():
        row = {"layer": name, "shape": "x".join(map(str, w.shape)), "weights": w.numel()}
        for fmt in FORMATS:
            row[fmt] = round(sqnr(w, fmt), 2)
        rows.append(row)
        print(f"{name:18s} {row['shape']:>12s}  " + "  ".join(f"{f} {row[f]:6.2f} dB"
                                                             for f in FORMATS), flush=True)
    df = pd.DataFrame(rows)
    mean = {f: round(float(df[f].mean()), 2) for f in FORMATS}
    gain4 = round(float((df["dybit4"] - df["int4"]).mean()), 2)
    gain8 = round(float((df["dybit8"] - df["int8"]).mean()), 2)
    out = Path(args.out)
    df.to_csv(out / "dybit_sqnr.csv", index=False)
    lines = ["# Weight SQNR: DyBit vs integer formats on MTCNN's pretrained weights", "",
             "`python benchmarks/dybit_sqnr.py`. Per-output-channel MSE-optimal scales (the "
             "project's quantizer), SQNR in dB; weights from the `facenet-pytorch` 2.6.0 wheel "
             "(P-Net, R-Net, O-Net).", "",
             "| layer | shape | " + " | ".join(FORMATS) + " |",
             "|---|---|" + "---|" * len(FORMATS)]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['shape']} | "
                     + " | ".join(f"{r[f]:.2f}" for f in FORMATS) + " |")
    lines += ["| **mean** | | " + " | ".join(f"**{mean[f]:.2f}**" for f in FORMATS) + " |", "",
              f"Mean gain of DyBit over the integer format of the same width: 4 bits "
              f"{gain4:+.2f} dB, 8 bits {gain8:+.2f} dB."]
    (out / "dybit_sqnr.md").write_text("\n".join(lines) + "\n")
    _plot(df, out / "dybit_sqnr.png")
    print(f"mean SQNR: {mean}; dybit4 - int4 {gain4:+.2f} dB, dybit8 - int8 {gain8:+.2f} dB")
    print(f"wrote {out / 'dybit_sqnr.csv'}, .md, .png")
    return 0


def _plot(df, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(9, 4))
    x = np.arange(len(df))
    for k, fmt in enumerate(FORMATS):
        ax.bar(x + (k - 1.5) * 0.2, df[fmt], 0.2, label=fmt)
    ax.set_xticks(x, df["layer"], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("weight SQNR [dB]")
    ax.set_title("MTCNN weights, per-channel MSE scales: DyBit vs int at 4 and 8 bits", fontsize=9)
    ax.legend(fontsize=8, ncol=4)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
