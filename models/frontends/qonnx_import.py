"""QONNX front end: a quantized ONNX model (what Brevitas exports, FINN's input) as a :class:`QNet`.

The model's own quantizers are honoured, not re-chosen. The graph (after ``qonnx``'s cleanup and
shape inference) is walked in order through a table of handlers, one per ONNX op type:

- ``Quant`` on a weight initializer gives the layer's integer weights (``q = clip(round(w / s))``
  as ``qonnx`` computes them) and its scale per tensor or per output channel; the weight format is
  the smallest of the project's that holds every value (``int4`` for 4-bit narrow-range weights,
  else ``int8``).
- ``Quant`` on the graph input is the input quantizer (its scale, range and half-to-even rounding).
- ``Quant`` on a layer's output (after its ``Relu`` / ``BatchNormalization``) is that layer's
  output quantizer: its scale becomes the output scale and its integer range (e.g. ``[0, 15]`` for
  4-bit unsigned) the output clamp of the integer contract's requantizer.
- ``Conv`` (1x1 or 3x3, "same" padding, stride 1 or 2, groups 1 or depthwise 3x3), ``Gemm`` /
  ``MatMul`` (+ ``Add`` of a bias), ``BatchNormalization`` after a conv or linear layer (folded into
  its weight scales and bias), ``Relu``, ``MaxPool`` 2x2/2, ``GlobalAveragePool``,
  ``GlobalMaxPool`` (``ReduceMax`` over H, W; a ``MaxPool`` over the whole map), ``Resize``
  nearest by 2,
  ``Reshape`` / ``Flatten`` (a dense head over a map), ``Add`` of two quantized maps (a residual
  add), ``Mul`` / ``Div`` by a positive constant on the input or on the output logits, ``Identity``
  and ``Dropout``.
- An elementwise activation (``Sigmoid``, ``Tanh``, ``LeakyRelu``, ``PRelu`` (one slope, or one
  per channel: a table per channel),
  ``HardSigmoid``, ``HardSwish``, ``Elu``, ``Celu``, ``Selu``, ``Softplus``, ``Softsign``,
  ``Mish``, ``Gelu``, and torch's patterns ``x * Sigmoid(x)``: SiLU, and ``Where(x > t, x,
  Softplus(x))``: its Softplus) between two ``Quant`` nodes: a table of its
  quantized input (:class:`~models.ops.act.QActTable`), the ONNX function (with the node's
  attributes, ONNX's defaults) computed in float32 as qonnx executes it and rounded half to
  even onto the ``Quant``
  after it, whose scale and range are its output's. ``Softmax`` / ``LogSoftmax``, and ``Sigmoid``
  / ``Tanh``, on the logits as the model's output are dropped (the same argmax).

Where the integer contract and the QONNX float semantics part: the requantizer's fixed-point
multiplier (15 bits) and round-half-up stand in for the float scale ratio and ``ROUND`` (half to
even); a float bias is rounded onto the accumulator grid; a global average pool rounds its mean.
Those cases are measured, not assumed: :func:`agreement` compares every quantized tensor with
``qonnx``'s own execution (``benchmarks/qonnx_agreement.py``, ``docs/FRONTENDS.md``).

Anything the hardware cannot take (an op, a quantizer range wider than the 8-bit signed streams, a
zero point, per-channel activation scales) fails before any work with one line naming the node,
what it is and what is supported (:class:`~models.frontends.torch_fx.FrontendError`).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch

from ..ops.act import ChannelPReLU, QActTable, nonneg_fn
from ..ops.avgpool import QAvgPool2d
from ..ops.concat import QConcat
from ..ops.crop import QCrop
from ..ops.flatten import QFlatten
from ..ops.gmp import QGlobalMaxPool
from ..ops.maxpool import QMaxPool2d
from ..ops.upsample import QUpsample2x
from ..ops.wmaxpool import QMaxPoolK
from ..qnet import QNet
from ..quant.formats import WEIGHT_FORMATS
from ..quant.layers import QAdd, QConv2d, QGlobalAvgPool, QInput, QLayer, QLinear
from .torch_fx import FrontendError

__all__ = ["SUPPORTED_ONNX", "load_qonnx", "from_qonnx", "qonnx_execute", "agreement"]

SUPPORTED_ONNX = (
    "Quant (2-8 bits, zero point 0, per-tensor activation scales; weights per tensor or channel)",
    "AveragePool 2x2 stride 2", "Concat on channels (one scale)",
    "Conv (1x1, 3x3, 5x5, 7x7; 'same' padding at stride 1 or 2, or pads 0 at stride 1; groups 1 "
    "or depthwise 3x3)",
    "BatchNormalization after Conv / Gemm", "Relu",
    "MaxPool 2x2 stride 2, or k x k (k = 3, 5, 7) at stride 1 or 2 with pads k // 2",
    "GlobalAveragePool (or ReduceMean over H, W)",
    "GlobalMaxPool (or ReduceMax over H, W, or a MaxPool over the whole map)",
    "Resize / Upsample, nearest, by 2",
    "Reshape / Flatten (after a pool, or of a map: a dense head)",
    "Gemm / MatMul (+ Add of a bias)", "Add of two quantized maps",
    "Mul / Div by a positive constant on the input or the output", "Identity", "Dropout",
    "Softmax / LogSoftmax, Sigmoid / Tanh on the logits as the output (dropped: the same argmax)",
    "Sigmoid, Tanh, LeakyRelu, PRelu, HardSigmoid, HardSwish, Elu, Celu, Selu, "
    "Softplus (or torch's Where(x > t, x, Softplus(x))), Softsign, Mish, Gelu, x * Sigmoid(x) "
    "(SiLU) from a Quant to a Quant (a table)",
)


# -- elementwise activations: the ONNX functions (module level: picklable) ---------------------

def _leaky_relu(x, *, alpha):
    return torch.where(x >= 0, x, x * alpha)


def _hard_sigmoid(x, *, alpha, beta):
    return (x * alpha + beta).clamp(0.0, 1.0)


def _hard_swish(x):
    return x * _hard_sigmoid(x, alpha=1.0 / 6.0, beta=0.5)


def _elu(x, *, alpha):
    return torch.where(x >= 0, x, alpha * torch.expm1(x.clamp(max=0)))


def _celu(x, *, alpha):
    return x.clamp(min=0) + (alpha * torch.expm1(x.clamp(max=0) / alpha)).clamp(max=0)


def _selu(x, *, alpha, gamma):
    return gamma * torch.where(x > 0, x, alpha * torch.expm1(x.clamp(max=0)))


def _softplus(x):
    return torch.logaddexp(x, torch.zeros_like(x))


def _softplus_above(x, *, threshold):
    return torch.where(x > threshold, x, _softplus(x))


def _softsign(x):
    return x / (1 + x.abs())


def _mish(x):
    return x * torch.tanh(_softplus(x))


def _gelu(x, *, approximate):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def _silu(x):
    return x * torch.sigmoid(x)


#: ONNX op -> (its attributes with ONNX's defaults, the float function of those attributes)
_ACT_OPS = {
    "Sigmoid": ({}, lambda a: torch.sigmoid),
    "Tanh": ({}, lambda a: torch.tanh),
    "LeakyRelu": ({"alpha": 0.01}, lambda a: functools.partial(_leaky_relu, **a)),
    "HardSigmoid": ({"alpha": 0.2, "beta": 0.5}, lambda a: functools.partial(_hard_sigmoid, **a)),
    "HardSwish": ({}, lambda a: _hard_swish),
    "Elu": ({"alpha": 1.0}, lambda a: functools.partial(_elu, **a)),
    "Celu": ({"alpha": 1.0}, lambda a: functools.partial(_celu, **a)),
    "Selu": ({"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875},
             lambda a: functools.partial(_selu, **a)),
    "Softplus": ({}, lambda a: _softplus),
    "Softsign": ({}, lambda a: _softsign),
    "Mish": ({}, lambda a: _mish),
    "Gelu": ({"approximate": "none"}, lambda a: functools.partial(_gelu, **a)),
    "PRelu": ({}, lambda a: functools.partial(_leaky_relu, **a)),   # alpha: its slope input
}

#: The streams carry 8-bit signed values, symmetric, or 9-bit ones for a model with 8-bit unsigned
#: (or 8-bit signed non-narrow) activations.
_STREAM_LO, _STREAM_HI = -255, 255


def _unsupported(node, what: str, why: str = "") -> FrontendError:
    reason = f" ({why})" if why else ""
    return FrontendError(f"{node.name}: {what} is not supported{reason}; supported: "
                         + "; ".join(SUPPORTED_ONNX))


def load_qonnx(path):
    """The cleaned-up ``qonnx`` ``ModelWrapper`` of the file at ``path`` (one line on failure)."""
    path = Path(path)
    if not path.is_file():
        raise FrontendError(f"{path} does not exist (QONNX model)")
    try:
        import onnx
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.util.cleanup import cleanup_model
    except ImportError as exc:
        raise FrontendError(f"reading {path} needs the onnx and qonnx packages ({exc}); "
                            "install the project with `make setup`") from None
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as exc:  # noqa: BLE001  (onnx raises many kinds for a damaged file)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FrontendError(f"{path} is not a readable ONNX model: {first[:200]}") from None
    try:
        model = cleanup_model(ModelWrapper(proto))
    except Exception as exc:  # noqa: BLE001
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FrontendError(f"{path}: qonnx cannot clean up the graph: {first[:200]}") from None
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise FrontendError(f"{path}: the model must have one input and one output, not "
                            f"{len(model.graph.input)} and {len(model.graph.output)}")
    return model


def _attr(node, name, default=None):
    import onnx

    for a in node.attribute:
        if a.name == name:
            v = onnx.helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def _int_range(signed: bool, narrow: bool, bits: int) -> tuple[int, int]:
    if signed:
        return (-(1 << (bits - 1)) + int(narrow), (1 << (bits - 1)) - 1)
    return (0, (1 << bits) - 1 - int(narrow))


class _Builder:
    def __init__(self, model, name: str):
        self.model = model
        self.net = QNet(name)
        self.val: dict[str, tuple] = {}
        self.kind: dict[str, str] = {}       # QNet node -> "map" | "flat" | "pooled" | "vector"
        self.shape_of: dict[str, tuple] = {}  # QNet node -> (C, H, W) of its output
        self.onnx_names: dict[str, str] = {}  # QNet node -> ONNX tensor of its quantized output
        self.notes: list[str] = []
        self.pre_scale = 1.0
        self.logit_scale = 1.0
        self.logits_tensor: str | None = None  # the raw logits' tensor before a dropped softmax
        self.crop_after: dict[str, int] = {}   # conv -> k: cropped where its value is used
        self.cropped: dict[str, str] = {}
        self.act_input: dict[str, str] = {}   # table activation -> its ONNX input tensor
        self.consumers: dict[str, int] = {}
        for n in model.graph.node:
            for t in n.input:
                self.consumers[t] = self.consumers.get(t, 0) + 1

    # -- helpers ---------------------------------------------------------------------------
    def const(self, name):
        return self.model.get_initializer(name)

    def _name(self, node) -> str:
        import re

        base = re.sub(r"[^A-Za-z0-9_]", "_", node.name or node.op_type) or "n"
        name, k = base, 1
        while name in self.net.nodes:
            name, k = f"{base}_{k}", k + 1
        return name

    def _add(self, node, module, *inputs, kind="map") -> str:
        name = self._name(node)
        self.net.add(name, module, *inputs)
        self.kind[name] = kind
        return name

    def _get(self, node, tensor, *kinds):
        v = self.val.get(tensor)
        if v is None:
            c = self.const(tensor)
            v = ("const", c) if c is not None else None
        if v is not None and v[0] == "act" and "act" not in kinds:
            raise self._unquantized_act(v[1], f"goes on to {node.name} ({node.op_type})")
        if v is None or (kinds and v[0] not in kinds):
            what = "nothing" if v is None else v[0]
            raise _unsupported(node, f"{node.op_type} on {tensor!r} ({what})")
        if v[0] == "q" and v[1] in self.crop_after and node.op_type != "Quant":
            src = v[1]
            if src not in self.cropped:
                name = f"{src}_crop"
                k = self.crop_after[src]
                self.net.add(name, QCrop(k), src)
                self.kind[name] = "map"
                c_, h_, w_ = self.shape_of[src]
                self.shape_of[name] = (c_, h_ - 2 * (k // 2), w_ - 2 * (k // 2))
                if src in self.onnx_names:  # qonnx's tensor is the cropped map
                    self.onnx_names[name] = self.onnx_names.pop(src)
                self.cropped[src] = name
            v = ("q", self.cropped[src])
        return v

    def _map_shape(self, tensor) -> tuple[int, ...]:
        s = self.model.get_tensor_shape(tensor)
        if s is None:
            raise FrontendError(f"no shape for tensor {tensor!r} after shape inference")
        return tuple(int(v) for v in s[1:])

    def _unquantized_act(self, name, where: str) -> FrontendError:
        return FrontendError(
            f"{name}: the output of {self.net.nodes[name].what} {where} without a Quant; a table "
            "activation takes its output scale and range from a Quant after it: add one (Brevitas: "
            "a QuantIdentity after the activation, or QuantSigmoid / QuantTanh)")

    def _scalar(self, node, arr, what) -> float:
        a = np.asarray(arr, dtype=np.float64)
        if a.size != 1:
            raise _unsupported(node, f"{what} of shape {list(a.shape)}", "per-tensor only")
        return float(a.reshape(-1)[0])

    # -- handlers --------------------------------------------------------------------------
    def quant(self, node):
        x, s_name, z_name, b_name = node.input[:4]
        s, z, b = self.const(s_name), self.const(z_name), self.const(b_name)
        if s is None or z is None or b is None:
            raise _unsupported(node, "Quant with computed scale, zero point or bit width")
        if np.any(np.asarray(z) != 0):
            raise _unsupported(node, "Quant with a non-zero zero point", "zero point 0")
        bits = float(np.asarray(b).reshape(-1)[0])
        signed, narrow = bool(_attr(node, "signed", 1)), bool(_attr(node, "narrow", 0))
        mode = _attr(node, "rounding_mode", "ROUND")
        if bits != int(bits) or not 2 <= bits <= 8:
            raise _unsupported(node, f"a {bits:g}-bit Quant", "2 to 8 bits")
        bits = int(bits)
        lo, hi = _int_range(signed, narrow, bits)
        s = np.asarray(s, dtype=np.float64)
        if np.any(s <= 0) or not np.all(np.isfinite(s)):
            raise _unsupported(node, "Quant with a non-positive scale")
        src = self.val.get(x)
        w = self.const(x)
        if w is not None and src is None:   # a weight quantizer
            from qonnx.custom_op.general.quant import resolve_rounding_mode

            q = np.clip(np.asarray(w, dtype=np.float64) / s, lo, hi)
            q = resolve_rounding_mode(mode)(q).astype(np.int64)
            self.val[node.output[0]] = ("wq", q, s, bits, signed)
            return
        if mode != "ROUND":
            raise _unsupported(node, f"an activation Quant with rounding_mode {mode}",
                               "ROUND (half to even)")
        if lo < _STREAM_LO or hi > _STREAM_HI:
            raise _unsupported(
                node, f"a {bits}-bit {'signed' if signed else 'unsigned'} activation quantizer "
                f"with range [{lo}, {hi}]", f"the streams carry at most [{_STREAM_LO}, "
                f"{_STREAM_HI}] (9-bit)")
        scale = self._scalar(node, s, "an activation scale")
        v = self._get(node, x, "input", "acc", "q", "act")
        if v[0] == "act" and self.consumers.get(x, 0) != 1:
            raise _unsupported(node, f"a Quant of {v[1]}'s output, which also goes elsewhere",
                               "a table activation's output goes to its Quant only")
        if v[0] == "input":
            if self.net.nodes:
                raise _unsupported(node, "a second input quantizer")
            q = QInput(nonneg=not signed)
            q.rounding = "half_even"
            q.qrange = (lo, hi)
            q.out_scale.fill_(scale / self.pre_scale)
            name = self._add(node, q)
            self.shape_of[name] = self._map_shape(node.output[0])
            self.kind[name] = "map" if len(self.shape_of[name]) == 3 else "vector"
            self.val[node.output[0]] = ("q", name)
            self.onnx_names[name] = node.output[0]
            return
        name = v[1]
        mod = self.net.nodes[name]
        if v[0] == "q":
            # a quantizer on a value already on a grid: the same grid and a range that holds it
            # change nothing (e.g. after a max pool or a global pool)
            if math.isclose(float(mod.out_scale), scale, rel_tol=1e-6) and \
                    lo <= mod.bounds()[0] and mod.bounds()[1] <= hi:
                self.val[node.output[0]] = v
                self.onnx_names.setdefault(name, node.output[0])
                return
            raise _unsupported(node, f"requantizing the output of {name} to another scale or "
                               "range", "only layers and adds requantize")
        mod.out_scale.fill_(scale)
        mod.qrange = (lo, hi)
        if isinstance(mod, QLayer):
            mod.requant_out = True
        if isinstance(mod, QActTable):
            mod.rounding = "half_even"   # rounding_mode ROUND (the only one taken, above)
        self.val[node.output[0]] = ("q", name)
        self.onnx_names[name] = node.output[0]

    def conv(self, node):
        x, wt = node.input[0], node.input[1]
        v = self._get(node, x, "q")
        if self.kind[v[1]] != "map":
            raise _unsupported(node, "Conv on a vector")
        wq = self._get(node, wt, "wq")
        _, q, s, bits, _ = wq
        k = tuple(_attr(node, "kernel_shape", list(q.shape[2:])))
        strides = tuple(_attr(node, "strides", [1, 1]))
        pads = tuple(_attr(node, "pads", [0, 0, 0, 0]))
        group = int(_attr(node, "group", 1))
        auto_pad = _attr(node, "auto_pad", "NOTSET")
        if k[0] != k[1] or k[0] not in (1, 3, 5, 7):
            raise _unsupported(node, f"Conv with kernel {list(k)}")
        k = k[0]
        if strides[0] != strides[1] or strides[0] not in (1, 2):
            raise _unsupported(node, f"Conv with strides {list(strides)}")
        same = auto_pad in ("SAME_UPPER", "SAME_LOWER") or pads == (k // 2,) * 4
        valid = auto_pad in ("NOTSET", "VALID") and not any(pads)
        if not same and not (valid and (k == 1 or strides[0] == 1)):
            raise _unsupported(node, f"Conv {k}x{k} with pads {list(pads)} and strides "
                               f"{list(strides)}", "'same' padding, or pads 0 at stride 1")
        if tuple(_attr(node, "dilations", [1, 1])) != (1, 1):
            raise _unsupported(node, "Conv with dilation")
        c_out, c_in_g = q.shape[0], q.shape[1]
        c_in = c_in_g * group
        if group != 1 and not (group == c_in == c_out and k == 3):
            # grouped: the full conv with a block-diagonal weight (docs/FRONTENDS.md)
            from .torch_fx import grouped_as_full

            q = grouped_as_full(torch.from_numpy(q), group).numpy()
            group = 1
        m = QConv2d(c_in, c_out, k, stride=strides[0], groups=group, bias=True)
        self._set_weights(node, m, q, s, bits, node.input[2] if len(node.input) > 2 else None)
        name = self._add(node, m, v[1])
        self.shape_of[name] = self._map_shape(node.output[0])
        if valid and k > 1:
            # the "same" conv, cropped by k // 2 where its (quantized) value is used
            c_, h_, w_ = self.shape_of[name]
            self.shape_of[name] = (c_, h_ + 2 * (k // 2), w_ + 2 * (k // 2))
            self.crop_after[name] = k
        self.val[node.output[0]] = ("acc", name)

    def gemm(self, node):
        a, b = node.input[0], node.input[1]
        if node.op_type == "Gemm":
            if _attr(node, "alpha", 1.0) != 1.0 or _attr(node, "beta", 1.0) != 1.0 or \
                    _attr(node, "transA", 0):
                raise _unsupported(node, "Gemm with alpha, beta != 1 or transA")
        v = self._get(node, a, "q")
        if self.kind[v[1]] == "map":
            raise _unsupported(node, f"{node.op_type} on a spatial map", "flatten it first")
        _, q, s, bits, _ = self._get(node, b, "wq")
        trans = node.op_type == "Gemm" and bool(_attr(node, "transB", 0))
        if not trans:              # [in, out] -> [out, in]
            q, s = q.T, (s.T if s.ndim == 2 else s)
        s = s.reshape(-1) if s.size > 1 else s
        out_f, in_f = q.shape
        m = QLinear(in_f, out_f, bias=True)
        bias = node.input[2] if node.op_type == "Gemm" and len(node.input) > 2 else None
        self._set_weights(node, m, q, s, bits, bias)
        name = self._add(node, m, v[1], kind="vector")
        self.shape_of[name] = (out_f, 1, 1)
        self.val[node.output[0]] = ("acc", name)

    def _set_weights(self, node, m: QLayer, q, s, bits, bias_name):
        qmax = int(np.abs(q).max()) if q.size else 0
        fmt = "int4" if bits <= 4 and qmax <= WEIGHT_FORMATS["int4"].qmax else "int8"
        if qmax > WEIGHT_FORMATS["int8"].qmax:
            raise _unsupported(node, f"weights reaching {int(q.min())}",
                               "int8 weights are symmetric [-127, 127]: use narrow range")
        s = np.asarray(s, dtype=np.float64).reshape(-1)
        scale = np.broadcast_to(s, (q.shape[0],)).copy()
        with torch.no_grad():
            view = (-1,) + (1,) * (q.ndim - 1)
            m.weight.copy_(torch.from_numpy(q * scale.reshape(view)))
            m.w_scale.copy_(torch.from_numpy(scale))
            m.bias.zero_()
            if bias_name is not None:
                b = self.const(bias_name)
                if b is None:
                    raise _unsupported(node, "a computed (not constant) bias")
                m.bias.copy_(torch.from_numpy(np.asarray(b, dtype=np.float64).reshape(-1)))
        m.wformat = fmt
        m.fine_bias = True      # the float bias's fraction goes into the rounding offsets
        m.requant_out = False   # until an output quantizer follows

    def batchnorm(self, node):
        v = self._get(node, node.input[0], "acc")
        m = self.net.nodes[v[1]]
        if not isinstance(m, QLayer) or m.relu or self.consumers.get(node.input[0], 0) != 1:
            raise _unsupported(node, "BatchNormalization not right after a Conv or Gemm")
        gamma, beta, mean, var = (np.asarray(self.const(t), dtype=np.float64)
                                  for t in node.input[1:5])
        eps = float(_attr(node, "epsilon", 1e-5))
        g = gamma / np.sqrt(var + eps)
        if np.any(g == 0):
            raise _unsupported(node, "BatchNormalization with a zero scale")
        with torch.no_grad():
            gt = torch.from_numpy(g)
            view = (-1,) + (1,) * (m.weight.dim() - 1)
            # q * s * g = (q * sign g) * (s * |g|): the integers keep their magnitudes
            m.weight.copy_(m.weight.double() * gt.view(view))
            m.w_scale.mul_(gt.abs())
            m.bias.copy_((m.bias.double() - torch.from_numpy(mean)) * gt + torch.from_numpy(beta))
        self.val[node.output[0]] = v

    def relu(self, node):
        v = self._get(node, node.input[0], "acc", "q")
        m = self.net.nodes[v[1]]
        if v[0] == "acc" and isinstance(m, (QLayer, QAdd)) and \
                self.consumers.get(node.input[0], 0) == 1:
            m.relu = True
        elif v[0] == "q" and m.bounds()[0] >= 0:
            pass  # already non-negative
        elif v[0] == "q" and isinstance(m, (QLayer, QAdd)) and \
                self.consumers.get(node.input[0], 0) == 1:
            m.relu = True  # relu(quant(x)) = quant(relu(x)) for a zero point of 0
        else:
            raise _unsupported(node, "Relu not right after a layer or an add")
        self.val[node.output[0]] = v

    def maxpool(self, node):
        v = self._get(node, node.input[0], "q")
        k = tuple(_attr(node, "kernel_shape", []))
        st = tuple(_attr(node, "strides", [1, 1]))
        pads = tuple(_attr(node, "pads", [0, 0, 0, 0]))
        shape = self.shape_of.get(v[1], ())
        if len(shape) == 3 and k == tuple(shape[1:]) and not any(pads) and \
                tuple(_attr(node, "dilations", [1, 1])) == (1, 1) and k != (2, 2):
            self.global_max_pool(node)  # a max pool over the whole map
            return
        window = len(k) == 2 and k[0] == k[1] and k[0] in (3, 5, 7) and len(set(st)) == 1 \
            and st[0] in (1, 2) and pads == (k[0] // 2,) * 4 \
            and tuple(_attr(node, "dilations", [1, 1])) == (1, 1)
        if not window and (k != (2, 2) or st != (2, 2) or any(pads)) or \
                _attr(node, "ceil_mode", 0) or self.kind[v[1]] != "map":
            raise _unsupported(node, f"MaxPool kernel {list(k)} strides {list(st)} pads "
                               f"{list(pads)}", "2x2, stride 2, no padding; or k x k (k = 3, "
                               "5, 7), stride 1 or 2, pads k // 2; on a map")
        name = self._add(node, QMaxPoolK(k[0], st[0]) if window else QMaxPool2d(), v[1])
        self.shape_of[name] = self._map_shape(node.output[0])
        self.val[node.output[0]] = ("q", name)
        self.onnx_names[name] = node.output[0]

    def avgpool(self, node):
        v = self._get(node, node.input[0], "q")
        k = tuple(_attr(node, "kernel_shape", []))
        st = tuple(_attr(node, "strides", [1, 1]))
        pads = tuple(_attr(node, "pads", [0, 0, 0, 0]))
        if k != (2, 2) or st != (2, 2) or any(pads) or _attr(node, "ceil_mode", 0) or \
                self.kind[v[1]] != "map":
            raise _unsupported(node, f"AveragePool kernel {list(k)} strides {list(st)} pads "
                               f"{list(pads)}", "2x2, stride 2, no padding, on a map")
        name = self._add(node, QAvgPool2d(), v[1])
        self.shape_of[name] = self._map_shape(node.output[0])
        self.val[node.output[0]] = ("q", name)
        self.notes.append(f"{name}: the 2x2 average is rounded (half to even) onto its input's "
                          "grid; QONNX keeps the float mean unless a Quant follows")

    def global_pool(self, node):
        v = self._get(node, node.input[0], "q")
        if self.kind[v[1]] != "map":
            raise _unsupported(node, "a global pool of a vector")
        name = self._add(node, QGlobalAvgPool(), v[1], kind="pooled")
        self.shape_of[name] = (self.shape_of[v[1]][0], 1, 1)
        self.val[node.output[0]] = ("q", name)
        self.notes.append(f"{name}: the global average is rounded (half up) onto its input's "
                          "grid; QONNX keeps the float mean")

    def resize(self, node):
        """``Resize`` (``Upsample`` before opset 10), nearest, by 2 on H and W, with a coordinate
        mapping that puts output ``i`` on input ``i // 2`` (torch's export of
        ``nn.Upsample(scale_factor=2)``: asymmetric, floor): the ``upsample`` op."""
        v = self._get(node, node.input[0], "q")
        mode = _attr(node, "mode", "nearest")
        ctm = _attr(node, "coordinate_transformation_mode", "half_pixel")
        nm = _attr(node, "nearest_mode", "round_prefer_floor")
        exact = (ctm, nm) == ("asymmetric", "floor") or (
            ctm in ("half_pixel", "pytorch_half_pixel")
            and nm in ("round_prefer_floor", "round_prefer_ceil"))
        shape = self.shape_of.get(v[1], ())
        out = self.model.get_tensor_shape(node.output[0]) or []
        by2 = len(shape) == 3 and len(out) == 4 and tuple(out[1:]) == (
            shape[0], 2 * shape[1], 2 * shape[2])
        if mode != "nearest" or (node.op_type == "Resize" and not exact) or not by2 or \
                self.kind[v[1]] != "map":
            raise _unsupported(node, f"{node.op_type} mode {mode!r} ({ctm}, {nm}) to shape "
                               f"{list(out)}", "nearest, by 2 on H and W, on a map")
        name = self._add(node, QUpsample2x(), v[1])
        self.shape_of[name] = (shape[0], 2 * shape[1], 2 * shape[2])
        self.val[node.output[0]] = ("q", name)
        self.onnx_names[name] = node.output[0]

    def global_max_pool(self, node):
        """``GlobalMaxPool`` (and ``ReduceMax`` over H, W; a ``MaxPool`` over the whole map):
        the global max pool, exact (the maximum of values on one grid)."""
        v = self._get(node, node.input[0], "q")
        if self.kind[v[1]] != "map":
            raise _unsupported(node, "a global max pool of a vector")
        name = self._add(node, QGlobalMaxPool(), v[1], kind="pooled")
        self.shape_of[name] = (self.shape_of[v[1]][0], 1, 1)
        self.val[node.output[0]] = ("q", name)
        self.onnx_names[name] = node.output[0]

    def _reduce_axes(self, node):
        axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
        if axes is None and len(node.input) > 1 and node.input[1]:
            c = self.const(node.input[1])
            axes = None if c is None else [int(a) for a in np.asarray(c).reshape(-1)]
        if axes is None or sorted(a % 4 for a in axes) != [2, 3] or len(axes) != 2:
            what = "a mean" if node.op_type == "ReduceMean" else "a max"
            raise _unsupported(node, f"{node.op_type} over axes {axes}", f"{what} over H, W")

    def reduce_mean(self, node):
        """``ReduceMean`` over H and W (what torch's ONNX exporter emits for
        ``AdaptiveAvgPool2d(1)`` at opset 18 and later, axes as an input): the global pool."""
        self._reduce_axes(node)
        self.global_pool(node)

    def reduce_max(self, node):
        """``ReduceMax`` over H and W (``torch.amax(x, (2, 3))``): the global max pool."""
        self._reduce_axes(node)
        self.global_max_pool(node)

    def reshape(self, node):
        v = self._get(node, node.input[0], "q")
        out = self.model.get_tensor_shape(node.output[0])
        if out is None or len(out) != 2:
            raise _unsupported(node, f"{node.op_type} to shape {out}", "a flatten to [N, F]")
        src = v[1]
        c, h, w = (tuple(self.shape_of[src]) + (1, 1))[:3]
        if self.kind[src] != "map" or h * w == 1:
            self.val[node.output[0]] = v
            if self.kind[src] == "map":
                self.kind[src] = "pooled"
            return
        name = self._add(node, QFlatten(), src, kind="flat")
        self.shape_of[name] = (c * h * w, 1, 1)
        self.val[node.output[0]] = ("q", name)
        self.onnx_names[name] = node.output[0]

    def add(self, node):
        a, b = node.input[0], node.input[1]
        ca, cb = self.const(a), self.const(b)
        if ca is not None or cb is not None:   # a bias after a MatMul
            v = self._get(node, b if ca is not None else a, "acc")
            m = self.net.nodes[v[1]]
            if not isinstance(m, QLayer) or m.relu:
                raise _unsupported(node, "Add of a constant not right after a layer")
            c = np.asarray(ca if ca is not None else cb, dtype=np.float64).reshape(-1)
            with torch.no_grad():
                m.bias.add_(torch.from_numpy(np.broadcast_to(c, m.bias.shape).copy()))
            self.val[node.output[0]] = v
            return
        va, vb = self._get(node, a, "q"), self._get(node, b, "q")
        if self.kind[va[1]] != "map" or self.kind[vb[1]] != "map":
            raise _unsupported(node, "an Add of non-map values")
        name = self._add(node, QAdd(), va[1], vb[1])
        self.shape_of[name] = self.shape_of[va[1]]
        self.val[node.output[0]] = ("acc", name)

    def concat(self, node):
        if _attr(node, "axis", 1) not in (1, -3) or len(node.input) < 2:
            raise _unsupported(node, f"Concat on axis {_attr(node, 'axis', 1)}", "channels")
        vals = [self._get(node, t, "q") for t in node.input]
        if any(self.kind[v[1]] != "map" for v in vals):
            raise _unsupported(node, "Concat of non-map values")
        scales = [float(self.net.nodes[v[1]].out_scale) for v in vals]
        if not all(math.isclose(s, scales[0], rel_tol=1e-6) for s in scales):
            raise _unsupported(node, f"Concat of tensors on different scales {scales}",
                               "one quantizer scale for every input")
        cur = vals[0][1]
        for i, v in enumerate(vals[1:]):
            name = self._name(node) + (f"_{i}" if len(vals) > 2 else "")
            self.net.add(name, QConcat(), cur, v[1])
            self.kind[name] = "map"
            c, h, w = self.shape_of[cur]
            self.shape_of[name] = (c + self.shape_of[v[1]][0], h, w)
            cur = name
        self.val[node.output[0]] = ("q", cur)
        self.onnx_names[cur] = node.output[0]

    def scale(self, node):
        a, b = node.input[0], node.input[1]
        c = self.const(b)
        if c is None and node.op_type == "Mul" and self.const(a) is None and self._silu(node):
            return
        if c is None:
            raise _unsupported(node, f"{node.op_type} by a computed value")
        c = self._scalar(node, c, f"{node.op_type} by a constant")
        if c <= 0:
            raise _unsupported(node, f"{node.op_type} by {c:g}", "positive constants only")
        factor = c if node.op_type == "Mul" else 1.0 / c
        v = self._get(node, a, "input", "acc")
        if v[0] == "input":
            self.pre_scale *= factor
        else:
            if self.consumers.get(node.output[0], 0) != 0 or \
                    node.output[0] != self.model.graph.output[0].name:
                raise _unsupported(node, f"{node.op_type} by a constant between layers",
                                   "on the input or the output only")
            self.logit_scale *= factor
        self.val[node.output[0]] = v

    def passthrough(self, node):
        v = self.val.get(node.input[0])
        if v is not None and v[0] == "act" and self.consumers.get(node.input[0]) == 1:
            self.val[node.output[0]] = v   # e.g. a Dropout between an activation and its Quant
            return
        self.val[node.output[0]] = self._get(node, node.input[0])

    def softmax(self, node):
        """A ``Softmax`` / ``LogSoftmax`` over the classes as the graph's output: dropped, as the
        PyTorch front end drops it (the same argmax; the accelerator emits the logits)."""
        v = self._get(node, node.input[0])
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
        if v[0] not in ("acc", "q") or self.kind.get(v[1]) in ("map", "flat") \
                or axis not in (1, -1):
            raise _unsupported(node, f"{node.op_type} on axis {axis} of a {self.kind.get(v[1])}",
                               "only over the classes of the output logits")
        if self.consumers.get(node.output[0], 0) != 0 or \
                node.output[0] != self.model.graph.output[0].name:
            raise _unsupported(node, f"{node.op_type} not as the model's output",
                               "a softmax is dropped as the output only")
        self.logits_tensor = node.input[0]
        self.val[node.output[0]] = v

    def _act_fn(self, node):
        """``(fn, what)`` of an activation node: its ONNX function with the node's attributes
        (ONNX's defaults for those it omits); anything else is refused in one line."""
        op = node.op_type
        defaults, make = _ACT_OPS[op]
        params = dict(defaults)
        for a in node.attribute:
            if a.name not in defaults:
                raise _unsupported(node, f"{op} with attribute {a.name!r}",
                                   f"attributes {sorted(defaults) or 'none'}")
            v = _attr(node, a.name)
            if a.name == "approximate":
                if v not in ("none", "tanh"):
                    raise _unsupported(node, f"Gelu with approximate={v!r}", "'none' or 'tanh'")
            elif not isinstance(v, (int, float)) or not math.isfinite(v):
                raise _unsupported(node, f"{op} with {a.name}={v!r}", "a finite number")
            params[a.name] = v if a.name == "approximate" else float(v)
        n_in = 2 if op == "PRelu" else 1
        if len(node.input) != n_in or len(node.output) != 1 or not all(node.input):
            raise _unsupported(node, f"{op} with {len(node.input)} inputs and "
                               f"{len(node.output)} outputs", f"{n_in} input(s), one output")
        if op == "PRelu":
            slope = self.const(node.input[1])
            if slope is None:
                raise _unsupported(node, "PRelu with a computed slope", "a constant slope")
            slope = np.asarray(slope, dtype=np.float64)
            shape = self.model.get_tensor_shape(node.input[0]) or []
            c = int(shape[1]) if len(shape) >= 2 else 1
            # ONNX broadcasts from the last axis: per channel is [C, 1, 1] (torch's export)
            if slope.size != 1 and tuple(slope.shape) not in ((c, 1, 1), (1, c, 1, 1)):
                raise _unsupported(node, f"PRelu with a slope of shape {list(slope.shape)}",
                                   f"one slope, or one per channel ({c}) along axis 1, "
                                   f"[{c}, 1, 1]")
            if not np.isfinite(slope).all():
                raise _unsupported(node, "PRelu with a slope that is not finite",
                                   "finite slopes")
            if slope.size > 1:  # a table per channel (models.ops.act)
                return ChannelPReLU(slope), f"PRelu({slope.size} slopes)"
            params["alpha"] = float(slope.reshape(-1)[0])
        if op == "Celu" and params["alpha"] == 0:
            raise _unsupported(node, "Celu with alpha=0", "a non-zero alpha")
        shown = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in params.items())
        return make(params), f"{op}({shown})"

    def activation(self, node):
        """An elementwise activation from a ``Quant`` to a ``Quant``: a table of its quantized
        input (:class:`QActTable`); its output scale and range are the next ``Quant``'s. A
        ``Sigmoid`` / ``Tanh`` on the logits as the model's output is dropped as a softmax is."""
        op = node.op_type
        if op in ("Sigmoid", "Tanh") and self.consumers.get(node.output[0], 0) == 0 and \
                node.output[0] == self.model.graph.output[0].name:
            v = self.val.get(node.input[0])
            if v is not None and v[0] in ("acc", "q") and \
                    self.kind.get(v[1]) not in ("map", "flat"):
                self.softmax(node)
                return
        fn, what = self._act_fn(node)
        v = self.val.get(node.input[0])
        if v is not None and v[0] in ("acc", "input"):
            src = "the model's input" if v[0] == "input" else f"the output of {v[1]}"
            raise _unsupported(node, f"{op} on {src} without a Quant before it",
                               "a table activation reads a quantized tensor: add a Quant before "
                               "it (Brevitas: a QuantIdentity, or the layer's output_quant)")
        src = self._get(node, node.input[0], "q")[1]
        mod = QActTable(fn, what, nonneg=nonneg_fn(fn))
        mod.table_dtype = torch.float32  # as qonnx executes it: ties fall where qonnx's do
        name = self._add(node, mod, src, kind=self.kind[src])
        self.shape_of[name] = self.shape_of[src]
        self.act_input[name] = node.input[0]
        self.val[node.output[0]] = ("act", name)

    def _silu(self, node) -> bool:
        """``Mul(x, Sigmoid(x))`` (what torch exports ``SiLU`` as): the sigmoid's table becomes
        SiLU's. False when ``node`` is not that."""
        for i in (0, 1):
            sig, x = node.input[i], node.input[1 - i]
            v = self.val.get(sig)
            if v is not None and v[0] == "act" and self.act_input.get(v[1]) == x and \
                    self.net.nodes[v[1]].fn is torch.sigmoid and self.consumers.get(sig) == 1:
                m = self.net.nodes[v[1]]
                m.fn, m.what, m.nonneg = _silu, "SiLU", nonneg_fn(_silu)
                self.val[node.output[0]] = v
                return True
        return False

    def greater(self, node):
        """``Greater(x, t)`` of a quantized ``x`` and a constant: the condition of torch's
        ``Softplus`` export (``Where(x > t, x, Softplus(x))``), taken by :meth:`where`."""
        t = self.const(node.input[1])
        if t is None:
            raise _unsupported(node, "Greater than a computed value",
                               "Where(x > t, x, Softplus(x)): torch's Softplus")
        v = self._get(node, node.input[0], "q")
        self.val[node.output[0]] = ("cmp", v[1], node.input[0],
                                    self._scalar(node, t, "Greater than a constant"))

    def where(self, node):
        """``Where(x > t, x, Softplus(x))`` (torch's ``Softplus`` with its threshold): the
        softplus's table takes the threshold."""
        cond, _, b = (self.val.get(t) for t in node.input[:3])
        if len(node.input) == 3 and cond is not None and cond[0] == "cmp" and \
                self.consumers.get(node.input[0]) == 1 and node.input[1] == cond[2] and \
                b is not None and b[0] == "act" and self.act_input.get(b[1]) == cond[2] and \
                self.net.nodes[b[1]].fn is _softplus and self.consumers.get(node.input[2]) == 1:
            m = self.net.nodes[b[1]]
            m.fn = functools.partial(_softplus_above, threshold=cond[3])
            m.what = f"Softplus(threshold={cond[3]:g})"
            self.val[node.output[0]] = b
            return
        raise _unsupported(node, "Where other than Where(x > t, x, Softplus(x))",
                           "torch's Softplus export")

    # -- dispatch --------------------------------------------------------------------------
    def run(self) -> QNet:
        g = self.model.graph
        self.val[g.input[0].name] = ("input",)
        table = {
            "Quant": self.quant, "Conv": self.conv, "Gemm": self.gemm, "MatMul": self.gemm,
            "BatchNormalization": self.batchnorm, "Relu": self.relu, "MaxPool": self.maxpool,
            "GlobalAveragePool": self.global_pool, "AveragePool": self.avgpool,
            "ReduceMean": self.reduce_mean,
            "GlobalMaxPool": self.global_max_pool, "ReduceMax": self.reduce_max,
            "Resize": self.resize, "Upsample": self.resize,
            "Reshape": self.reshape, "Concat": self.concat,
            "Flatten": self.reshape, "Add": self.add, "Mul": self.scale, "Div": self.scale,
            "Identity": self.passthrough, "Dropout": self.passthrough,
            "Softmax": self.softmax, "LogSoftmax": self.softmax,
            **{op: self.activation for op in _ACT_OPS},
            "Greater": self.greater, "Where": self.where,
        }
        for node in g.node:
            fn = table.get(node.op_type)
            if fn is None:
                raise _unsupported(node, f"op {node.op_type}")
            fn(node)
        out = self.val.get(g.output[0].name)
        if out is not None and out[0] == "act":
            raise self._unquantized_act(out[1], "is the model's output")
        if out is None or out[0] not in ("acc", "q") or out[1] != list(self.net.nodes)[-1]:
            raise FrontendError("the model's output must be its last layer's")
        last = self.net.nodes[out[1]]
        if out[0] == "acc" and isinstance(last, QAdd):
            raise FrontendError(f"{out[1]}: an Add as the output needs an output Quant")
        if out[0] == "acc" and last.relu:
            raise FrontendError(f"{out[1]}: a Relu output needs an output Quant")
        if isinstance(last, QLayer) and out[0] == "acc":
            if last.w_scale.numel() > 1 and not torch.allclose(
                    last.w_scale, last.w_scale[:1].expand_as(last.w_scale), rtol=1e-9):
                raise FrontendError(f"{out[1]}: raw output logits need one weight scale per "
                                    "tensor (they are compared across channels)")
            self.onnx_names[out[1]] = self.logits_tensor or g.output[0].name
        for name, m in self.net.nodes.items():
            if isinstance(m, QLayer) and not m.requant_out and name != out[1]:
                raise FrontendError(f"{name}: its output goes on without a Quant (every layer "
                                    "but the last needs an output quantizer)")
            if isinstance(m, QAdd) and self.onnx_names.get(name) is None:
                raise FrontendError(f"{name}: an Add needs an output Quant")
            if isinstance(m, QActTable):
                if self.onnx_names.get(name) is None:
                    raise self._unquantized_act(name, "is not used")
                self.notes.append(
                    f"{name}: {m.what} is a table of its quantized input, computed in float32 as "
                    "qonnx executes it and rounded half to even onto its Quant's grid (equal to "
                    "qonnx's on every input value where onnxruntime's float32 function is "
                    "torch's)")
        net = self.net
        # 8-bit streams when every quantizer fits [-127, 127], else 9-bit ones (8-bit unsigned
        # activations, Brevitas' default QuantReLU)
        widest = max(max(-m.qrange[0], m.qrange[1]) for m in net.nodes.values()
                     if m.qrange is not None)
        abits = 8 if widest <= 127 else 9
        for m in net.nodes.values():
            m.abits = abits
        net.formats = {k: m.wformat for k, m in net.layers().items()}
        net.fixed_formats = True
        net.onnx_names = dict(self.onnx_names)
        net.logit_scale = self.logit_scale
        net.import_notes = list(self.notes)
        net.sparse = False
        net.link_scales()
        return net.eval()


def from_qonnx(path, *, name: str = "net") -> QNet:
    """The :class:`QNet` of the QONNX model at ``path``, quantized by the model's quantizers.

    The result has ``fixed_formats`` set (its formats and scales are the model's), ``onnx_names``
    (``{QNet node: ONNX tensor}`` of each quantized output, for :func:`agreement`) and
    ``logit_scale`` (a constant the model multiplies its raw output by).
    """
    model = load_qonnx(path)
    if not any(n.op_type == "Quant" for n in model.graph.node):
        # a float ONNX: its first layer would be refused, which says nothing about why
        raise FrontendError(f"{path} has no Quant node: it is a float ONNX model, not QONNX; "
                            "export the quantized model with its quantizers (Brevitas: "
                            "export_qonnx) or give the PyTorch module as file.py:factory")
    return _Builder(model, name).run()


def _ready_for_exec(model):
    m = model
    if m.model.ir_version > 10:   # onnxruntime reads at most IR 10-13 (docs/TOOLCHAIN)
        m.model.ir_version = 10
    return m


def qonnx_execute(model, x: np.ndarray, *, tensors=()) -> dict[str, np.ndarray]:
    """``qonnx.core.onnx_exec`` on every row of ``x`` (the model's batch is 1): the output and the
    named ``tensors`` stacked over rows."""
    from qonnx.core.onnx_exec import execute_onnx

    m = _ready_for_exec(model)
    iname, oname = m.graph.input[0].name, m.graph.output[0].name
    want = list(dict.fromkeys([oname, *tensors]))
    out = {t: [] for t in want}
    for row in np.asarray(x, dtype=np.float32):
        ctx = execute_onnx(m, {iname: row[None]}, return_full_exec_context=bool(tensors))
        for t in want:
            out[t].append(np.asarray(ctx[t])[0])
    return {t: np.stack(v) for t, v in out.items()}


def agreement(path, net: QNet, x: np.ndarray, *, outputs: dict | None = None) -> dict:
    """Agreement of ``net``'s integer model with ``qonnx``'s execution of ``path`` on inputs ``x``.

    Per quantized tensor (the input quantizer, every layer and pool output, the raw logits), the
    share of integers that are identical (QONNX's float tensor divided by its scale and rounded;
    the logits on the accumulator's grid): ``identical`` when the whole integer network runs (a
    difference upstream propagates), ``isolated`` for a layer fed QONNX's own input integers (its
    own rounding only). And the argmax agreement of the outputs. Returns ``{"n",
    "argmax_agreement", "layers": [{"node", "tensor", "values", "identical", "isolated"}],
    "notes"}``. ``outputs``, when given, receives qonnx's output tensor (``"qonnx"``).
    """
    model = load_qonnx(path)
    names = net.onnx_names
    ref = qonnx_execute(model, x, tensors=list(names.values()))
    qnet = _int_copy(net)
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64))
    with torch.no_grad():
        env = qnet(qnet.quantize_input(xt), return_all=True)

    def onto_grid(node, arr):
        mod = net.nodes[node]
        a = arr.astype(np.float64)
        if isinstance(mod, QLayer) and not mod.requant_out:
            grid = float(mod.in_scale) * mod.w_scale.double().numpy().reshape(-1)
            a = a / net.logit_scale
            return np.round(a / grid[None] if a.ndim == 2 else a / grid[0])
        return np.round(a / float(mod.out_scale))

    layers = []
    for node, tensor in names.items():
        ours = env[node].double().numpy()
        theirs = onto_grid(node, ref[tensor]).reshape(ours.shape)
        row = {"node": node, "op": type(net.nodes[node]).__name__, "tensor": tensor,
               "values": int(ours.size), "identical": float((ours == theirs).mean()),
               "isolated": None}
        ins = net.edges[node]
        if ins and all(i in names for i in ins):
            feed = [torch.from_numpy(onto_grid(i, ref[names[i]]).reshape(env[i].shape)).long()
                    for i in ins]
            with torch.no_grad():
                alone = qnet.nodes[node](*feed).double().numpy()
            row["isolated"] = float((alone == theirs).mean())
        layers.append(row)
    out_name = model.graph.output[0].name
    last = list(net.nodes)[-1]
    argmax = float((env[last].argmax(1).numpy() == ref[out_name].argmax(1)).mean())
    if outputs is not None:
        outputs["qonnx"] = ref[out_name]
    return {"n": int(len(x)), "argmax_agreement": argmax, "layers": layers,
            "notes": list(getattr(net, "import_notes", []))}


def _int_copy(net: QNet) -> QNet:
    import copy

    q = copy.deepcopy(net).double()
    return q.set_mode("int")
