"""Helpers shared by test modules: small hand-made integer graphs, and the benchmark scripts
loaded as modules.

``pythonpath = ["tests"]`` in pyproject.toml makes this importable as ``helpers``.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np

from models.qgraph import QGraph, QNode
from models.quant.formats import weight_format

__all__ = ["conv_node", "classifier_head", "tiny_qgraph", "maxpool_qgraph", "valid_qgraph",
           "golden_frames", "load_benchmark"]

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str):
    """``benchmarks/<name>.py`` as a module (benchmarks/ is not a package), registered in
    ``sys.modules`` under ``name`` so that the scripts that import each other find it."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def conv_node(rng, name, inp, c_in, c_out, hw, *, k, groups=1, stride=1, relu=True, fmt="int8",
              S=12):
    """A conv node ``name`` on ``inp`` with random ``fmt`` weights, bias and requant multipliers."""
    levels = weight_format(fmt).levels.numpy()
    h, w = hw
    ho, wo = -(-h // stride), -(-w // stride)
    weight = rng.choice(levels, size=(c_out, c_in // groups, k, k)).astype(np.int64)
    return QNode(name=name, op="conv", inputs=(inp,), in_shape=(c_in, h, w),
                 out_shape=(c_out, ho, wo), kernel=k, stride=stride, groups=groups, relu=relu,
                 wformat=fmt, lo=0 if relu else -127, hi=127, S=S,
                 weight=weight, bias=rng.integers(-300, 300, size=c_out).astype(np.int64),
                 M=rng.integers(1 << 10, 1 << 12, size=c_out).astype(np.int64))


def golden_frames(g, frames):
    """The golden model's output of each ``(coords, feats)`` frame (non-empty), as the streams
    regroup it: ``[([(y, x), ...], [[...], ...]), ...]``."""
    import torch

    out = []
    for coords, feats in frames:
        c = torch.tensor(coords, dtype=torch.int64).reshape(-1, 2)
        f = torch.tensor(feats, dtype=torch.int64).reshape(len(coords), g.input.in_shape[0])
        oc, of = g.run_frame(c, f)
        out.append(([tuple(v) for v in oc.tolist()], of.tolist()))
    return out


def classifier_head(rng, src, shape, n_out, *, fmt="int8") -> list:
    """A global pool of ``src`` (a ``(C, H, W)`` map) and a raw-logit linear layer to ``n_out``."""
    c = shape[0]
    levels = weight_format(fmt).levels.numpy()
    return [QNode(name="gap", op="gap", inputs=(src,), in_shape=tuple(shape), out_shape=(c, 1, 1)),
            QNode(name="fc", op="linear", inputs=("gap",), in_shape=(c, 1, 1),
                  out_shape=(n_out, 1, 1), requant=False, wformat=fmt,
                  weight=rng.choice(levels, size=(n_out, c)).astype(np.int64),
                  bias=rng.integers(-500, 500, size=n_out).astype(np.int64),
                  M=np.ones(n_out, dtype=np.int64))]


def tiny_qgraph(seed=0, *, fmt="int8", h=6, w=5, with_dw=True, classifier=True, stem_stride=1):
    """A small network with every node kind: 3x3 stem, 1x1, depthwise, residual add, gap, fc."""
    rng = np.random.default_rng(seed)
    nodes = [QNode(name="input", op="input", inputs=(), in_shape=(2, h, w), out_shape=(2, h, w))]
    nodes.append(conv_node(rng, "stem", "input", 2, 4, (h, w), k=3, fmt=fmt, S=10,
                           stride=stem_stride))
    h, w = nodes[-1].out_shape[1:]
    nodes.append(conv_node(rng, "pw1", "stem", 4, 8, (h, w), k=1, fmt=fmt))
    last = "pw1"
    if with_dw:
        nodes.append(conv_node(rng, "dw", "pw1", 8, 8, (h, w), k=3, groups=8, fmt=fmt, S=11))
        last = "dw"
    nodes.append(conv_node(rng, "pw2", last, 8, 4, (h, w), k=1, relu=False, fmt=fmt))
    nodes.append(QNode(name="add", op="add", inputs=("stem", "pw2"), in_shape=(4, h, w),
                       out_shape=(4, h, w), Ma=1 << 13, Mb=3 << 12, S=14, lo=0, hi=127))
    if classifier:
        nodes += classifier_head(rng, "add", (4, h, w), 3, fmt=fmt)
    return QGraph(name="tiny", nodes=tuple(nodes))


def synth_small_build(tmp_path, device="XC7Z020"):
    """``codesign build --synth`` of the smallest network with a conv, a requantizer and the
    classifier head (which keeps Yosys short) for ``device``: its build directory."""
    from codesign.cli import main

    small = tmp_path / "small.json"
    tiny_qgraph(0, h=3, w=3, with_dw=False).save(small)
    out = tmp_path / "s"
    assert main(["build", "--model", str(small), "--out", str(out), "--synth",
                 "--device", device]) == 0
    return out


def maxpool_qgraph(seed=0, *, h=8, w=8, c_in=2, formats=("int8", "int8", "int8"), head="classifier",
                   pool_first=False):
    """A LeNet-like network with 2x2 max pools: 3x3 stem, max pool, 1x1, max pool, then a global
    pool and a raw-logit linear (``head="classifier"``) or the pooled map itself (``"map"``).
    ``pool_first`` puts a max pool straight after the input. Each layer's S is calibrated on a
    random dense activation so that outputs are mostly unsaturated."""
    import torch

    from models import reference as ref
    from models.ops.maxpool import maxpool2

    rng = np.random.default_rng(seed)
    fmts = iter(formats)
    nodes = [QNode(name="input", op="input", inputs=(), in_shape=(c_in, h, w),
                   out_shape=(c_in, h, w))]
    act = {"input": torch.from_numpy(rng.integers(0, 128, size=(c_in, h, w)))}

    def pool(name, src):
        c, hh, ww = nodes[-1].out_shape
        nodes.append(QNode(name=name, op="maxpool", inputs=(src,), in_shape=(c, hh, ww),
                           out_shape=(c, hh // 2, ww // 2), kernel=2, stride=2, requant=False))
        coords = torch.tensor([(y, x) for y in range(hh) for x in range(ww)])
        _, f = maxpool2(coords, act[src].reshape(c, -1).t(), height=hh, width=ww)
        act[name] = f.t().reshape(c, hh // 2, ww // 2)
        return name

    def conv(name, src, c_out, k):
        fmt = next(fmts)
        c, hh, ww = nodes[-1].out_shape
        weight = rng.choice(weight_format(fmt).levels.numpy(), size=(c_out, c, k, k))
        M = rng.integers(1 << 10, 1 << 13, size=c_out).astype(np.int64)
        acc = ref.conv2d(act[src][None], torch.from_numpy(weight), None, padding=k // 2)[0]
        S = max(1, round(np.log2(max(float(acc.abs().double().median()) * M.mean() / 40, 2.0))))
        bias = rng.integers(-1, 2, size=c_out).astype(np.int64) * int(acc.abs().max() // 8)
        act[name] = ref.requant(acc + torch.from_numpy(bias)[:, None, None],
                                torch.from_numpy(M), S, 0, 127, channel_dim=0)
        nodes.append(QNode(name=name, op="conv", inputs=(src,), in_shape=(c, hh, ww),
                           out_shape=(c_out, hh, ww), kernel=k, relu=True, wformat=fmt, lo=0,
                           hi=127, S=S, weight=weight.astype(np.int64), bias=bias, M=M))
        return name

    last = pool("mp0", "input") if pool_first else "input"
    last = pool("mp1", conv("stem", last, 4, 3))
    last = pool("mp2", conv("pw", last, 8, 1))
    if head == "classifier":
        nodes += classifier_head(rng, last, nodes[-1].out_shape, 5, fmt=next(fmts))
    return QGraph(name="lenet_mp", nodes=tuple(nodes))


def valid_qgraph(seed=0, *, h=11, w=12, dense=True, formats=("int8", "int8", "int8", "int8")):
    """Zero-padded ("valid") window convs, each a "same" conv and a crop: 3x3, 5x5 and a
    depthwise 3x3, then a global pool and a raw-logit linear. ``dense``: an image network, where
    the composer folds each crop into its conv's line buffer (models.ops.crop.folded_margin)."""
    rng = np.random.default_rng(seed)
    fmts = iter(formats)
    nodes = [QNode(name="input", op="input", inputs=(), in_shape=(2, h, w), out_shape=(2, h, w))]

    def conv_crop(name, src, c_in, c_out, k, groups=1, S=12):
        hh, ww = nodes[-1].out_shape[1:]
        nodes.append(conv_node(rng, name, src, c_in, c_out, (hh, ww), k=k, groups=groups,
                               fmt=next(fmts), S=S))
        p = k // 2
        nodes.append(QNode(name=f"{name}_crop", op="crop", inputs=(name,),
                           in_shape=(c_out, hh, ww), out_shape=(c_out, hh - 2 * p, ww - 2 * p),
                           kernel=k, requant=False))
        return f"{name}_crop"

    last = conv_crop("c1", "input", 2, 4, 3, S=10)
    last = conv_crop("c2", last, 4, 6, 5, S=12)
    last = conv_crop("dw", last, 6, 6, 3, groups=6, S=10)
    nodes += classifier_head(rng, last, nodes[-1].out_shape, 3, fmt=next(fmts))
    return QGraph(name="valid", nodes=tuple(nodes), dense=dense)
