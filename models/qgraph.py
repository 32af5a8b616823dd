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

from common.digest import json_digest

from . import ops
from .ops.registry import GraphError
from .quant.formats import act_format

__all__ = ["QNode", "QGraph", "GraphError"]


@dataclass(frozen=True)
class QNode:
    """One integer layer. Array fields hold integer values (numpy int64)."""

    name: str
    op: str
    inputs: tuple[str, ...]
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: int = 1
    #: The kernel's width when it differs from its height (``kernel``); 0: square.
    kernel_w: int = 0
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
    #: Per-channel rounding offsets of the requantizer (None: ``2^(S-1)``), see
    #: :func:`models.quant.requant.rounding_offsets`.
    R: np.ndarray | None = field(default=None, compare=False, repr=False)
    #: A table activation's outputs by input, ``2^bits`` entries in two's-complement order
    #: (:mod:`models.ops.act`); None for every other op.
    table: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        try:
            ops.of(self).check_node(self)
        except ValueError as exc:
            raise GraphError(f"node {self.name!r}: {exc}") from None

    @property
    def channels_in(self) -> int:
        return self.in_shape[0]

    @property
    def channels_out(self) -> int:
        return self.out_shape[0]

    @property
    def kind(self) -> str:
        """The node's op in the registry (its hardware block kind: ``conv3x3``, ``gap``, ...)."""
        return ops.kind_of(self)

    def to_json(self) -> dict:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if (f.name in ("R", "table") and v is None) or (f.name == "kernel_w" and not v):
                continue  # defaults: graphs without them keep their digests
            if isinstance(v, np.ndarray):
                v = {"shape": list(v.shape), "values": v.reshape(-1).tolist()}
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_json(cls, d: dict) -> QNode:
        kw = dict(d)
        for k in ("weight", "bias", "M", "w_scale", "R", "table"):
            v = kw.get(k)
            if v is not None:
                dtype = np.float64 if k == "w_scale" else np.int64
                kw[k] = np.asarray(v["values"], dtype=dtype).reshape(v["shape"])
        for k in ("inputs", "in_shape", "out_shape"):
            kw[k] = tuple(kw[k])
        return cls(**kw)


@dataclass(frozen=True)
class QGraph:
    """An integer network: nodes in topological order, the first one the input.

    ``dense``: every frame holds every site of the input map (an image network), so every map
    in the network is dense and the hardware may use the blocks that rely on it (the dense line
    buffer); a sparse network (event camera) has ``dense`` False.
    """

    name: str
    nodes: tuple[QNode, ...]
    abits: int = 8
    dense: bool = False

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

    @staticmethod
    def op_of(node: QNode):
        """The registry's op of ``node`` (:func:`models.ops.of`)."""
        return ops.of(node)

    def compute_nodes(self) -> list[QNode]:
        """The nodes a design point configures (the ops with weights)."""
        return [n for n in self.nodes if ops.of(n).compute]

    def consumers(self, name: str) -> list[QNode]:
        return [n for n in self.nodes if name in n.inputs]

    def formats(self) -> dict[str, str]:
        return {n.name: n.wformat for n in self.compute_nodes()}

    # -- serialisation -----------------------------------------------------------------------
    def stream_bits(self) -> dict[str, int | None]:
        """Bits of the signed lanes of every node's output stream (docs/CONTRACT.md, "Stream
        widths"): the input's are :attr:`abits`, a requantized layer's its clamp range's
        (:func:`contract.constants.act_width`), a stage's its input's
        (:meth:`models.ops.base.Op.out_bits`); None for raw accumulators (logits)."""
        bits: dict[str, int | None] = {self.input.name: self.abits}
        for n in self.nodes[1:]:
            ins = [bits[s] for s in n.inputs]
            if any(b is None for b in ins):
                raise GraphError(f"node {n.name!r} takes raw accumulators from "
                                 f"{n.inputs!r}; only the network's last node may leave them")
            bits[n.name] = self.op_of(n).out_bits(n, ins)
        return bits

    def to_json(self) -> dict:
        d = {"name": self.name, "abits": self.abits}
        if self.dense:  # sparse graphs keep their digests
            d["dense"] = True
        return {**d, "nodes": [n.to_json() for n in self.nodes]}

    @classmethod
    def from_json(cls, d: dict) -> QGraph:
        return cls(d["name"], tuple(QNode.from_json(n) for n in d["nodes"]), d.get("abits", 8),
                   bool(d.get("dense", False)))

    def fingerprint(self) -> str:
        """SHA-256 of the graph's canonical JSON: the integer network (weights, M, S, ...)."""
        return json_digest(self.to_json())

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
        if self.dense and len(coords) != h * w:
            raise GraphError(f"the network is dense: a frame must hold all {h}x{w} sites, not "
                             f"{len(coords)}")
        lo, hi = act_format(self.abits).bounds(False)
        if len(feats) and (feats.min() < lo or feats.max() > hi):
            raise GraphError(f"frame features must lie in [{lo}, {hi}]")

    def run_frame_all(self, coords, feats) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Every node's output ``(coords [N, 2], feats int64 [N, C])`` for one input frame."""
        coords = torch.as_tensor(coords, dtype=torch.int64).reshape(-1, 2)
        feats = torch.as_tensor(feats, dtype=torch.int64).reshape(len(coords),
                                                                  self.input.in_shape[0])
        self.check_frame(coords, feats)
        env: dict[str, tuple[torch.Tensor, torch.Tensor]] = {self.input.name: (coords, feats)}
        for n in self.nodes[1:]:
            env[n.name] = ops.of(n).golden(n, [env[s] for s in n.inputs])
        return env

    def run_frame(self, coords, feats) -> tuple[torch.Tensor, torch.Tensor]:
        """The network output for one input frame (the golden model the RTL must match)."""
        return self.run_frame_all(coords, feats)[self.output.name]
