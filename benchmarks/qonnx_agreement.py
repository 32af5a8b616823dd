"""Agreement of the QONNX front end's integer model with ``qonnx``'s own execution.

For a QONNX file (default: the Brevitas W4A4 example) and inputs (default: its held-out digits),
runs ``qonnx.core.onnx_exec.execute_onnx`` on every input and the imported integer golden model on
the same inputs, and reports per quantized tensor the share of integers that are identical: through
the whole integer network (a difference upstream propagates) and for the layer alone (fed qonnx's
own input integers: its own rounding only), plus the argmax agreement. Writes
``reports/qonnx_agreement.md``, ``.json`` and ``.png``.

    python benchmarks/qonnx_agreement.py [--model F.onnx --inputs X.npz --tag NAME]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    import numpy as np

    from models.frontends.qonnx_import import agreement, from_qonnx

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "examples" / "brevitas_w4a4.onnx"))
    p.add_argument("--inputs", default=str(ROOT / "examples" / "brevitas_w4a4_calib.npz"))
    p.add_argument("--out", default=str(ROOT / "reports"))
    p.add_argument("--tag", default="qonnx_agreement")
    args = p.parse_args(argv)

    with np.load(args.inputs) as z:
        x = z["x"]
    net = from_qonnx(args.model, name=Path(args.model).stem)
    t0 = time.perf_counter()
    print(f"qonnx execution and the integer model on {len(x)} inputs ...", flush=True)
    res = agreement(args.model, net, x)
    res.update(model=str(Path(args.model).relative_to(ROOT)) if Path(args.model).is_relative_to(
        ROOT) else args.model, formats=dict(net.formats), seconds=time.perf_counter() - t0)
    out = Path(args.out)
    (out / f"{args.tag}.json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [
        f"# Agreement with qonnx's execution: `{res['model']}`", "",
        f"Written by `python benchmarks/qonnx_agreement.py` on {res['n']} inputs "
        f"(`{Path(args.inputs).name}`). Weight formats: "
        + ", ".join(f"{k} {v}" for k, v in res["formats"].items()) + ".", "",
        f"**Argmax agreement: {res['argmax_agreement']:.4f}** ({res['n']} inputs).", "",
        "Per quantized tensor, the share of integers identical to qonnx's (its float tensor "
        "divided by the tensor's scale; the logits on the accumulator's grid): through the whole "
        "integer network, and for the layer alone, fed qonnx's own input integers.", "",
        "| node | op | ONNX tensor | values | identical | layer alone | differing (alone) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["layers"]:
        alone = r["isolated"]
        diff = "" if alone is None else str(round((1 - alone) * r["values"]))
        lines.append(f"| {r['node']} | {r['op']} | `{r['tensor']}` | {r['values']} | "
                     f"{r['identical']:.6f} | {'' if alone is None else f'{alone:.6f}'} | "
                     f"{diff} |")
    lines += ["", "Where they part: the requantizer's 15-bit fixed-point multiplier stands in for "
              "the float ratio of scales, and it rounds half up where qonnx's `ROUND` rounds half "
              "to even; the float bias's fraction of an accumulator step is carried in the "
              "requantizer's rounding offsets (without them, 0.1-0.4 % of each layer's outputs "
              "differed). See docs/FRONTENDS.md."]
    if res["notes"]:
        lines += [""] + [f"- {n}" for n in res["notes"]]
    (out / f"{args.tag}.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = res["layers"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    idx = np.arange(len(rows))
    ax.bar(idx - 0.2, [100 * (1 - r["identical"]) for r in rows], 0.4,
           label="through the network")
    ax.bar(idx + 0.2, [100 * (1 - (r["isolated"] if r["isolated"] is not None else
                                   r["identical"])) for r in rows], 0.4, label="layer alone")
    ax.set_xticks(idx, [r["node"] for r in rows], rotation=30, ha="right")
    ax.set_ylabel("integers differing from qonnx (%)")
    ax.set_title(f"{Path(res['model']).name}: argmax agreement {res['argmax_agreement']:.4f} "
                 f"on {res['n']} inputs", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / f"{args.tag}.png", dpi=120)
    print(f"argmax agreement {res['argmax_agreement']:.4f} on {res['n']} inputs; wrote "
          f"{out / args.tag}.md, .json, .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
