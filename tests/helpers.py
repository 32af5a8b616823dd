"""Helpers shared by test modules: small hand-made integer graphs.

``pythonpath = ["tests"]`` in pyproject.toml makes this importable as ``helpers``.
"""

import numpy as np

from models.qgraph import QGraph, QNode
from models.quant.formats import weight_format

__all__ = ["conv_node", "tiny_qgraph"]


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
        nodes.append(QNode(name="gap", op="gap", inputs=("add",), in_shape=(4, h, w),
                           out_shape=(4, 1, 1)))
        levels = weight_format(fmt).levels.numpy()
        nodes.append(QNode(name="fc", op="linear", inputs=("gap",), in_shape=(4, 1, 1),
                           out_shape=(3, 1, 1), requant=False, wformat=fmt,
                           weight=rng.choice(levels, size=(3, 4)).astype(np.int64),
                           bias=rng.integers(-500, 500, size=3).astype(np.int64),
                           M=np.ones(3, dtype=np.int64)))
    return QGraph(name="tiny", nodes=tuple(nodes))
