"""Measured per-layer statistics of a zoo model, as data (JSON) and a plot, for the DSE.

    .venv/bin/python benchmarks/layer_stats.py --model digits|eventdigits|eye|all [--frames 128]

For each model: load the cached fp32 checkpoint (never trains; run ``codesign train`` first),
quantize it (``--format``, int8 by default), draw ``--frames`` test frames
(``Bundle.frames``, seeded) and run :func:`models.stats.layer_stats` (the integer golden model).
Writes, atomically:

- ``reports/layer_stats_<model>.json``: per node its op, kernel, stride, groups, output shape,
  active sites and density (mean, p95) and, for 3x3 convs, the 10-bin histogram of active input
  sites in each output's window (counts over all frames);
- ``reports/layer_stats_<model>.png``: density per layer (mean bar, p95 tick) and the share of
  output sites by active-neighbour count for each 3x3 layer.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.errors import CodesignError  # noqa: E402
from common.fsutil import write_json, write_png  # noqa: E402

__all__ = ["MODELS", "collect", "plot", "main"]

MODELS = ("digits", "eventdigits", "eye")


def collect(model: str, *, frames: int = 128, fmt: str = "int8", seed: int = 0) -> dict:
    """The JSON document of one model (see the module doc)."""
    from models import ops, zoo
    from models.stats import layer_stats

    try:
        bundle = zoo.load(model, train_if_missing=False, progress=False)
    except zoo.ModelError as exc:
        raise CodesignError(f"{exc}; run `codesign train --model {model}` first") from None
    qgraph = bundle.qgraph(fmt)
    frame_list = bundle.frames(frames, seed=seed, split="test")  # fewer if the split is smaller
    t0 = time.perf_counter()
    stats = layer_stats(qgraph, frame_list)
    secs = time.perf_counter() - t0
    layers = {}
    for node in qgraph.nodes:
        geo = {"op": node.op}
        if ops.of(node).compute:
            geo.update(kernel=int(node.kernel), stride=int(node.stride), groups=int(node.groups))
        layers[node.name] = {**geo, "inputs": list(node.inputs), **stats[node.name]}
    print(f"{model}: measured {len(frame_list)} frames in {secs:.1f} s")
    return {
        "model": model,
        # the digest, not the machine's cache path: the document must be reproducible
        "checkpoint_sha256": hashlib.sha256(Path(bundle.checkpoint).read_bytes()).hexdigest(),
        "format": fmt,
        "split": "test",
        "frames": len(frame_list),
        "seed": seed,
        "command": f"benchmarks/layer_stats.py --model {model} --frames {frames} --format {fmt} "
                   f"--seed {seed}",
        "layers": layers,
    }


def plot(doc: dict, path) -> None:
    """Density per spatial layer and neighbour-count shares of the 3x3 layers, to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = doc["layers"]
    spatial = [n for n, d in layers.items() if d["shape"][1] * d["shape"][2] > 1]
    conv3 = [n for n, d in layers.items() if "neighbour_hist" in d]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.6))
    x = range(len(spatial))
    ax1.bar(x, [layers[n]["density_mean"] for n in spatial], color="tab:blue", label="mean")
    ax1.scatter(x, [layers[n]["density_p95"] for n in spatial], marker="_", s=300,
                color="tab:red", label="p95", zorder=3)
    ax1.set_xticks(list(x), [f"{n}\n{layers[n]['shape'][1]}x{layers[n]['shape'][2]}"
                             for n in spatial], rotation=90, fontsize=7)
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("active sites / (H x W)")
    ax1.set_title(f"{doc['model']}: density per layer ({doc['frames']} test frames)")
    ax1.legend(fontsize=8)
    for n in conv3:
        h = layers[n]["neighbour_hist"]
        total = sum(h) or 1
        stride = layers[n].get("stride", 1)
        ax2.plot(range(10), [v / total for v in h], marker="o", markersize=3,
                 label=f"{n} (s{stride})")
    ax2.set_xticks(range(10))
    ax2.set_xlabel("active input sites in the 3x3 window")
    ax2.set_ylabel("share of output sites")
    ax2.set_title("3x3 layers: active-neighbour count")
    ax2.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    write_png(path, fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, choices=[*MODELS, "all"])
    p.add_argument("--frames", type=int, default=128)
    p.add_argument("--format", default="int8", help="weight format of the quantized graph")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default=str(ROOT / "reports"))
    a = p.parse_args(argv)
    if a.frames < 1:
        p.error("--frames must be at least 1")
    try:
        for model in MODELS if a.model == "all" else (a.model,):
            doc = collect(model, frames=a.frames, fmt=a.format, seed=a.seed)
            out = Path(a.out_dir)
            write_json(out / f"layer_stats_{model}.json", doc)
            plot(doc, out / f"layer_stats_{model}.png")
            print(f"{model}: {len(doc['layers'])} nodes -> {out}/layer_stats_{model}.json, .png")
            for name, d in doc["layers"].items():
                hist = f" hist {d['neighbour_hist']}" if "neighbour_hist" in d else ""
                print(f"  {name:>8} {str(d['shape']):>14} density {d['density_mean']:.3f} "
                      f"(p95 {d['density_p95']:.3f}){hist}")
    except CodesignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
