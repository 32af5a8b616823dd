"""A network as a small graph of quantizable modules, with calibration and export to a QGraph.

Dense and sparse networks use the same container: the nodes are :mod:`models.quant.layers` modules
(or their sparse subclasses in :mod:`models.sparse`), so quantization, scale linking and export are
written once.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from . import ops
from .qgraph import QGraph, QNode
from .quant.formats import WEIGHT_FORMATS, FormatError
from .quant.layers import (
    QAdd,
    QGlobalAvgPool,
    QInput,
    QLayer,
    QLinear,
    QModule,
    feat,
    mse_act_scale,
)
from .reference import check_acc_bits

__all__ = ["QNet", "map_shape"]


def map_shape(x) -> tuple[int, int, int]:
    """``(C, H, W)`` of one sample of a dense or sparse map (``(C, 1, 1)`` for a vector)."""
    if isinstance(x, torch.Tensor):
        if x.dim() == 2:
            return (int(x.shape[1]), 1, 1)
        return tuple(int(v) for v in x.shape[1:])
    return (int(x.feats.shape[1]), *(int(v) for v in x.spatial_shape))


class QNet(nn.Module):
    """Modules connected as a DAG; the first node is a :class:`QInput`, the last the output."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.nodes = nn.ModuleDict()
        self.edges: dict[str, tuple[str, ...]] = {}
        self.formats: dict[str, str] = {}

    def add(self, name: str, module: QModule, *inputs: str) -> str:
        if name in self.nodes:
            raise ValueError(f"duplicate node {name!r}")
        if not self.nodes and not isinstance(module, QInput):
            raise TypeError("the first node must be a QInput")
        for i in inputs:
            if i not in self.nodes:
                raise ValueError(f"node {name!r}: unknown input {i!r}")
        self.nodes[name] = module
        self.edges[name] = tuple(inputs)
        return name

    # -- execution ---------------------------------------------------------------------------
    def forward(self, x, *, return_all: bool = False):
        env = {}
        for name, mod in self.nodes.items():
            ins = self.edges[name]
            env[name] = mod(x) if not ins else mod(*(env[i] for i in ins))
        return env if return_all else env[name]

    def set_mode(self, mode: str) -> QNet:
        for m in self.nodes.values():
            m.set_mode(mode)
        return self

    @contextlib.contextmanager
    def in_mode(self, mode: str):
        """Every node in ``mode`` inside the ``with`` block, each back in its own mode after."""
        was = {k: m.mode for k, m in self.nodes.items()}
        self.set_mode(mode)
        try:
            yield self
        finally:
            for k, m in self.nodes.items():
                m.mode = was[k]

    @property
    def input_node(self) -> QInput:
        return next(iter(self.nodes.values()))

    def quantize_input(self, x):
        """The integer map (int64) the integer model and the hardware take."""
        return self.input_node.quantize(x)

    def layers(self) -> dict[str, QLayer]:
        return {k: m for k, m in self.nodes.items() if isinstance(m, QLayer)}

    # -- quantization ------------------------------------------------------------------------
    def fold_bn(self) -> QNet:
        for m in self.layers().values():
            m.fold_bn()
        return self

    @property
    def folded(self) -> bool:
        return all(m.bn is None for m in self.layers().values())

    def resolve_formats(self, formats) -> dict[str, str]:
        """A format per layer from one name or a ``{layer: format}`` dict (validated)."""
        names = list(self.layers())
        if isinstance(formats, str):
            if formats not in WEIGHT_FORMATS:
                raise FormatError(
                    f"unknown weight format {formats!r}; valid formats: {', '.join(WEIGHT_FORMATS)}"
                )
            return dict.fromkeys(names, formats)
        formats = dict(formats)
        unknown = sorted(set(formats) - set(names))
        if unknown:
            raise FormatError(f"unknown layer {unknown[0]!r}; layers: {', '.join(names)}")
        missing = [n for n in names if n not in formats]
        if missing:
            raise FormatError(f"no format given for layer {missing[0]!r}")
        for layer, f in formats.items():
            if f not in WEIGHT_FORMATS:
                raise FormatError(
                    f"layer {layer!r}: unknown weight format {f!r}; valid formats: "
                    f"{', '.join(WEIGHT_FORMATS)}"
                )
        return formats

    #: The formats and weight scales are the model's own (an imported QONNX model's quantizers):
    #: :meth:`set_formats` takes only those formats and keeps the scales.
    fixed_formats = False

    def set_formats(self, formats) -> QNet:
        """Weight format and MSE-optimal weight scales per layer (a layer already in its format
        keeps its scales), then (M, S) everywhere."""
        wanted = self.resolve_formats(formats)
        if self.fixed_formats:
            for layer, fmt in wanted.items():
                if fmt != self.formats[layer]:
                    raise FormatError(
                        f"layer {layer!r} is quantized by its model to {self.formats[layer]}; "
                        f"an imported model keeps its own quantizers (not {fmt})")
            self.link_scales()
            return self
        self.formats = wanted
        for name, m in self.layers().items():
            # a layer already in its format keeps its scales: the same MSE choice for a PTQ
            # network, and the fine-tuned ones after QAT (a mixed point keeps them too)
            if m.wformat != self.formats[name]:
                m.set_format(self.formats[name])
        self.link_scales()
        return self

    @torch.no_grad()
    def calibrate(self, batches, *, abits: int = 8) -> QNet:
        """Per-tensor activation scales from float-mode outputs on calibration batches."""
        if not self.folded:
            raise RuntimeError("fold BatchNorm before calibrating")
        was_training = self.training
        self.eval()
        samples: dict[str, list[torch.Tensor]] = {}
        with self.in_mode("float"):
            for x in batches:
                env = self(x, return_all=True)
                for name, mod in self.nodes.items():
                    if self._has_own_scale(mod):
                        samples.setdefault(name, []).append(feat(env[name]).reshape(-1).double())
        for name, mod in self.nodes.items():
            mod.abits = abits
            if self._has_own_scale(mod):
                clip = getattr(mod, "clip", None)
                nonneg = bool(getattr(mod, "relu", False) or getattr(mod, "nonneg", False)
                              or (clip is not None and clip[0] >= 0))
                s = mse_act_scale(torch.cat(samples[name]), abits, nonneg=nonneg)
                mod.out_scale.fill_(s)
        self.train(was_training)
        self._share_scales()
        if self.formats:
            self.link_scales()
        return self

    def _scale_owner(self, name: str) -> str:
        """The node whose output scale ``name``'s output has (through pooling and the like)."""
        while getattr(self.nodes[name], "keeps_scale", False) and self.edges[name]:
            name = self.edges[name][0]
        return name

    def _share_scales(self) -> None:
        """A join on one scale (a concat): its inputs' scale owners all take the largest of their
        scales, so both tensors are on one grid (exact, at a little resolution)."""
        for name, mod in self.nodes.items():
            if getattr(mod, "shares_scale", False):
                owners = {self._scale_owner(i) for i in self.edges[name]}
                s = max(float(self.nodes[o].out_scale) for o in owners)
                for o in owners:
                    self.nodes[o].out_scale.fill_(s)

    @staticmethod
    def _has_own_scale(mod) -> bool:
        if isinstance(mod, QLayer):
            return mod.requant_out
        return isinstance(mod, (QInput, QAdd)) or getattr(mod, "own_scale", False)

    def link_scales(self) -> None:
        """Propagate producer scales to consumers and compute every (M, S)."""
        for name, mod in self.nodes.items():
            ins = [self.nodes[i] for i in self.edges[name]]
            if isinstance(mod, QLayer):
                mod.in_scale.copy_(ins[0].out_scale)
                if mod.wformat is not None and mod.requant_out:
                    mod.set_requant()
            elif isinstance(mod, QAdd):
                mod.in_scales.copy_(torch.stack([ins[0].out_scale, ins[1].out_scale]))
                mod.set_requant()
            elif getattr(mod, "keeps_scale", False):  # pooling: output at the input's scale
                mod.out_scale.copy_(ins[0].out_scale)
            elif hasattr(mod, "set_table"):  # a table activation: over its input's range
                mod.in_scale.copy_(ins[0].out_scale)
                lo, hi = self.value_range(self.edges[name][0])
                mod.set_table(lo, hi)

    def value_range(self, name: str) -> tuple[int, int]:
        """``(lo, hi)`` of the integers node ``name`` outputs: its own bounds, or (pooling, a
        crop, a concatenation) its inputs' (the widest)."""
        mod = self.nodes[name]
        if getattr(mod, "keeps_scale", False) and self.edges[name]:
            rs = [self.value_range(i) for i in self.edges[name]]
            return min(r[0] for r in rs), max(r[1] for r in rs)
        return mod.bounds()

    # -- persistence -------------------------------------------------------------------------
    def quant_state(self) -> dict:
        """What ``state_dict`` does not hold: formats, shifts and add multipliers."""
        out = {"formats": dict(self.formats), "abits": self.input_node.abits, "nodes": {}}
        for name, m in self.nodes.items():
            if isinstance(m, QLayer):
                out["nodes"][name] = {"S": m.S}
            elif isinstance(m, QAdd):
                out["nodes"][name] = {"S": m.S, "Ma": m.Ma, "Mb": m.Mb}
        return out

    def load_quant_state(self, state: dict) -> None:
        for m in self.nodes.values():
            m.abits = state.get("abits", 8)
        self.formats = dict(state.get("formats", {}))
        for name, fmt in self.formats.items():
            self.nodes[name].wformat = fmt
        for name, d in state.get("nodes", {}).items():
            for k, v in d.items():
                setattr(self.nodes[name], k, v)

    # -- export ------------------------------------------------------------------------------
    @torch.no_grad()
    def to_qgraph(self, example) -> QGraph:
        """Integer graph of the quantized network; ``example`` is one float input batch."""
        if not self.formats:
            raise RuntimeError("quantize the network (set_formats) before exporting it")
        with self.in_mode("int"):
            env = self(self.quantize_input(example), return_all=True)
        shape = {k: map_shape(v) for k, v in env.items()}
        nodes = []
        for name, m in self.nodes.items():
            ins = self.edges[name]
            in_shape = shape[ins[0]] if ins else shape[name]
            common = dict(name=name, inputs=ins, in_shape=in_shape, out_shape=shape[name],
                          out_scale=float(m.out_scale))
            if isinstance(m, QInput):
                lo, hi = m.bounds()
                nodes.append(QNode(op="input", lo=lo, hi=hi, **common))
            elif isinstance(m, QLayer):
                lo, hi = m.bounds()
                is_linear = isinstance(m, QLinear)
                weight = m.int_weight().numpy()
                src = self.nodes[ins[0]]
                if hasattr(src, "site_major"):  # after a flatten: the stream's column order
                    weight = src.site_major(weight, shape[self.edges[ins[0]][0]])
                nodes.append(QNode(
                    op="linear" if is_linear else "conv",
                    kernel=1 if is_linear else int(m.weight.shape[-2]),
                    kernel_w=0 if is_linear or m.weight.shape[-1] == m.weight.shape[-2]
                    else int(m.weight.shape[-1]),
                    stride=1 if is_linear else m.stride,
                    groups=1 if is_linear else m.groups,
                    relu=m.relu, requant=m.requant_out, wformat=m.wformat, lo=lo, hi=hi, S=m.S,
                    in_scale=float(m.in_scale),
                    weight=weight, bias=m.int_bias().numpy(),
                    M=m.M.numpy().copy(), w_scale=m.w_scale.numpy().copy(),
                    R=None if m.R is None else np.asarray(m.R, dtype=np.int64), **common))
            elif isinstance(m, QAdd):
                lo, hi = m.bounds()
                nodes.append(QNode(op="add", relu=m.relu, lo=lo, hi=hi, S=m.S, Ma=m.Ma, Mb=m.Mb,
                                   **common))
            elif isinstance(m, QGlobalAvgPool):
                nodes.append(QNode(op="gap", in_scale=float(m.out_scale), **common))
            elif hasattr(m, "qnode_fields"):  # layers an op module defines, with their export
                nodes.append(QNode(**m.qnode_fields(**common)))
            else:
                raise TypeError(f"node {name!r}: cannot export {type(m).__name__}")
        abits = self.input_node.abits
        # a dense input tensor (an image) makes every map of the network dense
        dense = isinstance(env[next(iter(self.nodes))], torch.Tensor)
        graph = QGraph(self.name, tuple(nodes), abits, dense)
        for n in graph.compute_nodes():
            src = graph.node(n.inputs[0])
            while ops.of(src).keeps_range:  # pooling keeps its input's range
                src = graph.node(src.inputs[0])
            check_acc_bits(torch.from_numpy(n.weight), torch.from_numpy(n.bias),
                           src.lo, src.hi, name=n.name)
        return graph
