"""What the PyTorch front end makes of the forms users write, idiom by idiom.

Each idiom is a small module written as tutorials and model zoos write it (a CIFAR ResNet's
``F.avg_pool2d(out, 4)``, ``x.view(x.size(0), -1)``, an output softmax, ``(x - mean) / std`` in
``forward()``, in-place ops, ...), traced by :func:`models.frontends.from_torch` with an example
batch. For each: the ops it became, whether the float graph computes the module's output (its
logits before a dropped softmax) to float rounding, or the one line it was refused with. Writes
``reports/frontend_idioms.md``; nothing is synthesised or simulated (the tests build and
co-simulate the forms that matter, tests/frontends/).

    python benchmarks/frontend_idioms.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _idioms():
    import torch
    import torch.nn.functional as F

    def gap(y):
        return y.mean((2, 3))

    return {
        # the global pool and the flatten
        "x.mean((2, 3))": lambda m, x: m.fc(gap(m.body(x))),
        "x.mean(dim=(2, 3), keepdim=True).flatten(1)":
            lambda m, x: m.fc(m.body(x).mean(dim=(2, 3), keepdim=True).flatten(1)),
        "torch.mean(x, dim=[-1, -2])": lambda m, x: m.fc(torch.mean(m.body(x), dim=[-1, -2])),
        "F.adaptive_avg_pool2d(x, 1).view(x.size(0), -1)":
            lambda m, x: m.fc(F.adaptive_avg_pool2d(m.body(x), 1).view(x.size(0), -1)),
        "F.adaptive_avg_pool2d(x, (1, 1)).squeeze(-1).squeeze(-1)":
            lambda m, x: m.fc(F.adaptive_avg_pool2d(m.body(x), (1, 1)).squeeze(-1).squeeze(-1)),
        "F.avg_pool2d(x, 4) (the whole 4x4 map)":
            lambda m, x: m.fc(F.avg_pool2d(m.body(x), 4).view(x.shape[0], -1)),
        "F.avg_pool2d(x, x.size()[2:])":
            lambda m, x: m.fc(F.avg_pool2d(m.body(x), m.body(x).size()[2:]).flatten(1)),
        "x.view(-1, C * H * W) (a dense head)":
            lambda m, x: m.head(m.body(x).view(-1, 6 * 4 * 4)),
        "torch.amax(x, (2, 3)) (global max pool)":
            lambda m, x: m.fc(torch.amax(m.body(x), (2, 3))),
        # outputs
        "F.softmax(logits, dim=1)": lambda m, x: F.softmax(m.fc(gap(m.body(x))), dim=1),
        "logits.log_softmax(-1)": lambda m, x: m.fc(gap(m.body(x))).log_softmax(-1),
        "torch.sigmoid(logits)": lambda m, x: torch.sigmoid(m.fc(gap(m.body(x)))),
        # activations and in-place forms
        "x.clamp(min=0)": lambda m, x: m.fc(gap(m.c2(m.c1(x).clamp(min=0)))),
        "torch.clamp(x, 0, 6)": lambda m, x: m.fc(gap(m.c2(torch.clamp(m.c1(x), 0, 6)))),
        "x.relu_()": lambda m, x: m.fc(gap(m.c2(m.c1(x).relu_()))),
        "F.leaky_relu(x)": lambda m, x: m.fc(gap(m.c2(F.leaky_relu(m.c1(x))))),
        "F.silu(x)": lambda m, x: m.fc(gap(m.c2(F.silu(m.c1(x))))),
        "nn.Hardswish(inplace=True) (MobileNetV3)":
            lambda m, x: m.fc(gap(m.c2(m.hswish(m.c1(x))))),
        "y * torch.sigmoid(y) (a swish written out)":
            lambda m, x: m.fc(gap(m.c2((lambda y: y * torch.sigmoid(y))(m.c1(x))))),
        "F.gelu(x)": lambda m, x: m.fc(gap(m.c2(F.gelu(m.c1(x))))),
        "nn.PReLU(6) (a slope per channel)":
            lambda m, x: m.fc(gap(m.c2(m.prelu(m.c1(x))))),
        "out += identity; relu": lambda m, x: m.fc(gap(m.res(x, "iadd"))),
        "out.add_(identity); relu": lambda m, x: m.fc(gap(m.res(x, "add_"))),
        # the input
        "(x - mean) / std from per-channel buffers": lambda m, x: m.fc(gap(m.body(m.norm(x)))),
        "x * 2 - 1": lambda m, x: m.fc(gap(m.body(x * 2 - 1))),
        "1 - x (an inverted image)": lambda m, x: m.fc(gap(m.body(1 - x))),
        "1 / x": lambda m, x: m.fc(gap(m.body(1 / x))),
        # pools
        "F.max_pool2d(x, kernel_size=2, stride=2)":
            lambda m, x: m.fc(gap(F.max_pool2d(m.c2(F.relu(m.c1(x))), kernel_size=2, stride=2))),
        "nn.MaxPool2d(3, 2, 1) (ImageNet stem)":
            lambda m, x: m.fc(gap(F.max_pool2d(m.c2(F.relu(m.c1(x))), 3, 2, 1))),
    }


def _module(forward):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor([0.3, 0.4, 0.5]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1))
            self.c1 = nn.Conv2d(3, 6, 3, padding=1)
            self.c2 = nn.Conv2d(6, 6, 3, stride=2, padding=1)
            self.fc = nn.Linear(6, 4)
            self.head = nn.Linear(6 * 4 * 4, 4)
            self.prelu = nn.PReLU(6)
            self.hswish = nn.Hardswish(inplace=True)

        def body(self, x):
            return torch.relu(self.c2(torch.relu(self.c1(x))))      # [N, 6, 4, 4]

        def norm(self, x):
            return (x - self.mean) / self.std

        def res(self, x, how):
            y = torch.relu(self.c1(x))
            out = self.c2(torch.relu(self.c1(x)))
            skip = self.c2(y)
            if how == "iadd":
                out += skip
            else:
                out.add_(skip)
            return torch.relu(out)

        def forward(self, x):
            return forward(self, x)

    torch.manual_seed(0)
    return Net().eval()


def rows() -> list[dict]:
    import torch

    from models.frontends import FrontendError, from_torch
    from models.frontends.torch_fx import DROPPED_OUTPUTS

    x = torch.rand(16, 3, 8, 8)
    out = []
    for idiom, forward in _idioms().items():
        m = _module(forward)
        try:
            net = from_torch(m, name="idiom", example=x[:2])
        except FrontendError as e:
            out.append({"idiom": idiom, "result": "refused",
                        "detail": str(e).split("; supported:")[0]})
            continue
        ops = [type(v).__name__ for v in net.nodes.values()][1:]
        net.set_mode("float")
        with torch.no_grad():
            ours, theirs = net(x), m(x)
        if net.dropped_output:   # a dropped output function: ours are the logits before it
            ours = DROPPED_OUTPUTS[net.dropped_output](ours)
        same = bool(torch.allclose(ours, theirs.to(ours.dtype), rtol=1e-5, atol=1e-5))
        out.append({"idiom": idiom, "result": "imported" if same else "imported, DIFFERS",
                    "detail": " -> ".join(ops)})
    return out


def main(argv=None) -> int:
    table = rows()
    lines = ["# What the PyTorch front end makes of common idioms",
             "",
             "Written by `python benchmarks/frontend_idioms.py`: each idiom in a small module "
             "(3-channel 8x8 input, two 3x3 convs, a linear head), traced with an example batch. "
             "*imported*: the float graph computes the module's output (its logits before a "
             "dropped softmax or sigmoid) to float rounding on 16 random inputs; *refused*: "
             "the one line the user gets.",
             "",
             "| idiom | result | ops, or the line |", "|---|---|---|"]
    for r in table:
        lines.append(f"| `{r['idiom']}` | {r['result']} | {r['detail']} |")
    out = ROOT / "reports" / "frontend_idioms.md"
    out.write_text("\n".join(lines) + "\n")
    for r in table:
        print(f"{r['result']:18} {r['idiom']:58} {r['detail'][:90]}")
    print(f"wrote {out.relative_to(ROOT)}")
    return 1 if any("DIFFERS" in r["result"] for r in table) else 0


if __name__ == "__main__":
    sys.exit(main())
