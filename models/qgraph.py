"""The quantized network as data: what hw/ builds and what cosim/ checks against.

A :class:`QGraph` is a list of :class:`QNode` in topological order holding integer weights,
biases and requantization parameters. :meth:`QGraph.run_frame` is the golden model of one frame
in the token view (active sites in raster order with their feature vectors); it is written from
the definitions (dense convolution of the zero-filled map, sampled at the output's active sites)
so it is independent of the sparse kernels it checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch
import torch.nn.functional as F

from . import reference as ref
from .quant.formats import act_format

__all__ = ["OPS", "QNode", "QGraph", "GraphError"]

OPS = ("input", "conv", "add", "gap", "linear")


class GraphError(ValueError):
    """A malformed quantized graph or frame."""


@dataclass(frozen=True)
class QNode:
    """One integer layer. Array fields hold integer values (numpy int64)."""

    name: str
    op: str
    inputs: tuple[str, ...]
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    relu: bool = False
    requant: bool = True
    wformat: str | None = None
    lo: int = 0
    hi: int = 0
    S: int = 1
    Ma: int = 0
    Mb: int = 0
    in_scale: float = 1.0
    out_scale: float = 1.0
    weight: np.ndarray | None = field(default=None, compare=False, repr=False)
    bias: np.ndarray | None = field(default=None, compare=False, repr=False)
    M: np.ndarray | None = field(default=None, compare=False, repr=False)
    w_scale: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.op not in OPS:
            raise GraphError(f"node {self.name!r}: unknown op {self.op!r}; valid: {', '.join(OPS)}")
        if self.op in ("conv", "linear"):
            if self.weight is None or self.bias is None or self.M is None:
                raise GraphError(f"node {self.name!r}: {self.op} needs weight, bias and M")
            if self.op == "conv" and self.kernel not in (1, 3):
                raise GraphError(f"node {self.name!r}: kernel must be 1 or 3, not {self.kernel}")
            if self.stride not in (1, 2) or (self.kernel == 1 and self.stride != 1):
                raise GraphError(f"node {self.name!r}: unsupported stride {self.stride}")

    @property
    def channels_in(self) -> int:
        return self.in_shape[0]

    @property
    def channels_out(self) -> int:
        return self.out_shape[0]

    @property
    def kind(self) -> str:
        """Hardware block kind: conv3x3, dwconv3x3, conv1x1, linear, add, gap, input."""
        if self.op == "conv":
            if self.kernel == 1:
                return "conv1x1"
            return "dwconv3x3" if self.groups > 1 else "conv3x3"
        return self.op

    def to_json(self) -> dict:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v = {"shape": list(v.shape), "values": v.reshape(-1).tolist()}
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_json(cls, d: dict) -> QNode:
        kw = dict(d)
        for k in ("weight", "bias", "M", "w_scale"):
            v = kw.get(k)
            if v is not None:
                dtype = np.float64 if k == "w_scale" else np.int64
                kw[k] = np.asarray(v["values"], dtype=dtype).reshape(v["shape"])
        for k in ("inputs", "in_shape", "out_shape"):
            kw[k] = tuple(kw[k])
        return cls(**kw)


def _dense(coords, feats, shape):
    c, h, w = shape
    x = torch.zeros((1, c, h, w), dtype=torch.int64)
    if len(coords):
        x[0, :, coords[:, 0], coords[:, 1]] = feats.t()
    return x


def _mask(coords, h, w):
    m = torch.zeros((1, 1, h, w), dtype=torch.float64)
    if len(coords):
        m[0, 0, coords[:, 0], coords[:, 1]] = 1.0
    return m


@dataclass(frozen=True)
class QGraph:
    """An integer network: nodes in topological order, the first one the input."""

    name: str
    nodes: tuple[QNode, ...]
    abits: int = 8

    def __post_init__(self):
        names = set()
        for i, n in enumerate(self.nodes):
            if (n.op == "input") != (i == 0):
                raise GraphError("the first node, and only it, must be the input")
            for src in n.inputs:
                if src not in names:
                    raise GraphError(f"node {n.name!r}: input {src!r} is not an earlier node")
            if n.name in names:
                raise GraphError(f"duplicate node name {n.name!r}")
            names.add(n.name)

    # -- access ------------------------------------------------------------------------------
    def node(self, name: str) -> QNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise GraphError(f"no node {name!r}; nodes: {', '.join(n.name for n in self.nodes)}")

    def fork_of(self, node: QNode) -> str:
        """Name of the nearest common ancestor (ancestor-or-self) of ``node``'s two inputs: where
        a residual ``add``'s branches split."""
        def ancestors(name):
            seen, todo = set(), [name]
            while todo:
                x = todo.pop()
                if x not in seen:
                    seen.add(x)
                    todo.extend(self.node(x).inputs)
            return seen
        common = ancestors(node.inputs[0]) & ancestors(node.inputs[1])
        order = [n.name for n in self.nodes]
        return max(common, key=order.index)

    @property
    def input(self) -> QNode:
        return self.nodes[0]

    @property
    def output(self) -> QNode:
        return self.nodes[-1]

    def compute_nodes(self) -> list[QNode]:
        """The nodes a design point configures (conv and linear)."""
        return [n for n in self.nodes if n.op in ("conv", "linear")]

    def consumers(self, name: str) -> list[QNode]:
        return [n for n in self.nodes if name in n.inputs]

    def formats(self) -> dict[str, str]:
        return {n.name: n.wformat for n in self.compute_nodes()}

    # -- serialisation -----------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"name": self.name, "abits": self.abits, "nodes": [n.to_json() for n in self.nodes]}

    @classmethod
    def from_json(cls, d: dict) -> QGraph:
        return cls(d["name"], tuple(QNode.from_json(n) for n in d["nodes"]), d.get("abits", 8))

    def save(self, path) -> None:
        from common.fsutil import write_text

        write_text(path, json.dumps(self.to_json()))

    @classmethod
    def load(cls, path) -> QGraph:
        with open(path) as f:
            return cls.from_json(json.load(f))

    def with_node(self, node: QNode) -> QGraph:
        return replace(self, nodes=tuple(node if n.name == node.name else n for n in self.nodes))

    # -- golden model ------------------------------------------------------------------------
    def check_frame(self, coords: torch.Tensor, feats: torch.Tensor) -> None:
        """Raise :class:`GraphError` unless (coords, feats) is a valid input frame."""
        c, h, w = self.input.in_shape
        if coords.dim() != 2 or coords.shape[1] != 2 or feats.shape != (coords.shape[0], c):
            raise GraphError(f"frame must be coords [N, 2] and feats [N, {c}]")
        if len(coords):
            if coords.min() < 0 or (coords[:, 0] >= h).any() or (coords[:, 1] >= w).any():
                raise GraphError(f"frame has sites outside the {h}x{w} map")
            lin = coords[:, 0] * w + coords[:, 1]
            if (lin[1:] <= lin[:-1]).any():
                raise GraphError("frame sites must be in strictly increasing raster order")
        lo, hi = act_format(self.abits).bounds(False)
        if len(feats) and (feats.min() < lo or feats.max() > hi):
            raise GraphError(f"frame features must lie in [{lo}, {hi}]")

    def run_frame_all(self, coords, feats) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Every node's output ``(coords [N, 2], feats int64 [N, C])`` for one input frame."""
        coords = torch.as_tensor(coords, dtype=torch.int64).reshape(-1, 2)
        feats = torch.as_tensor(feats, dtype=torch.int64).reshape(len(coords),
                                                                  self.input.in_shape[0])
        self.check_frame(coords, feats)
        env: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for n in self.nodes:
            if n.op == "input":
                env[n.name] = (coords, feats)
                continue
            xc, xf = env[n.inputs[0]]
            if n.op == "conv":
                env[n.name] = self._conv(n, xc, xf)
            elif n.op == "add":
                yc, yf = env[n.inputs[1]]
                if not torch.equal(xc, yc):
                    raise GraphError(f"node {n.name!r}: residual inputs have different sites")
                env[n.name] = (xc, ref.add_requant(xf, yf, n.Ma, n.Mb, n.S, n.lo, n.hi))
            elif n.op == "gap":
                total = xf.sum(0) if len(xf) else torch.zeros(n.in_shape[0], dtype=torch.int64)
                pooled = ref.avg_round(total, len(xc)).reshape(1, -1)
                env[n.name] = (torch.zeros((1, 2), dtype=torch.int64), pooled)
            elif n.op == "linear":
                acc = ref.linear(xf, torch.from_numpy(n.weight), torch.from_numpy(n.bias))
                if n.requant:
                    acc = ref.requant(acc, torch.from_numpy(n.M), n.S, n.lo, n.hi)
                env[n.name] = (xc, acc)
        return env

    def run_frame(self, coords, feats) -> tuple[torch.Tensor, torch.Tensor]:
        """The network output for one input frame (the golden model the RTL must match)."""
        return self.run_frame_all(coords, feats)[self.output.name]

    @staticmethod
    def _conv(n: QNode, xc, xf):
        _, h, w = n.in_shape
        dense = _dense(xc, xf, n.in_shape)
        acc = ref.conv2d(dense, torch.from_numpy(n.weight), torch.from_numpy(n.bias),
                         stride=n.stride, padding=n.kernel // 2, groups=n.groups)
        if n.stride == 1:
            oc = xc
        else:
            m = F.max_pool2d(_mask(xc, h, w), 3, stride=2, padding=1)
            oc = torch.nonzero(m[0, 0] > 0)
        of = acc[0][:, oc[:, 0], oc[:, 1]].t() if len(oc) else acc.new_zeros((0, acc.shape[1]))
        if n.requant:
            of = ref.requant(of, torch.from_numpy(n.M), n.S, n.lo, n.hi)
        return oc, of
