"""PyTorch front end: a plain ``torch.nn.Module``, traced with ``torch.fx``, as a :class:`QNet`.

The traced graph is walked in order and each node goes through a table of small handlers, one per
module type or function (as hls4ml's ``@pytorch_handler`` tables): a conv starts a layer, and the
BatchNorm and ReLU that follow it alone fold into it (BatchNorm into its weights and bias, ReLU into
its output clamp); ``+`` becomes a residual add (a ReLU after it folds into the add); max pooling,
the global average pool and the linear classifier after it map to their quantized layers; identity,
dropout and the flatten after the global pool pass the value through. The result computes, in float
mode, what the module computes (to float rounding); ``quantize`` then calibrates and quantizes it
as every built-in network is (PTQ).

Anything else fails with one line naming the node, its type and what is supported
(:class:`FrontendError`).
"""

from __future__ import annotations

import functools
import operator
import re

import torch
import torch.nn.functional as F
from torch import nn

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
from ..quant.layers import QAdd, QConv2d, QGlobalAvgPool, QInput, QLayer, QLinear, QModule

__all__ = ["FrontendError", "from_torch", "SUPPORTED"]

#: What the front end takes, for the error message.
SUPPORTED = (
    "Conv2d (1x1, 3x3, 5x5, 7x7; stride 1 or 2 with 'same' padding, or stride 1 with padding 0;"
    " groups 1, depthwise 3x3, or grouped (as the block-diagonal full conv); any other kernel"
    " or ZeroPad2d / F.pad before it whose centred window is odd and at most 11x11, such as a"
    " DS-CNN's 10x4 / 2 stem)",
    "BatchNorm2d after a conv, BatchNorm1d after a Linear", "ReLU after a conv or an add",
    "ReLU6 / Hardtanh / clamp(a, b) after a conv or Linear",
    "LeakyReLU, PReLU, Hardswish, Hardsigmoid, SiLU, sigmoid, tanh, GELU, ELU, CELU, SELU,"
    " Softplus, Mish, Softsign, x * f(x) of one of them (a table of the quantized input; a"
    " sigmoid or tanh as the output is dropped)",
    "MaxPool2d(2); MaxPool2d(k, s, k // 2) for k = 3, 5, 7, s = 1, 2", "AvgPool2d(2) (dense maps)",
    "Upsample / F.interpolate, nearest, by 2",
    "AdaptiveAvgPool2d(1) / mean over H, W / AvgPool2d over the whole map",
    "AdaptiveMaxPool2d(1) / amax over H, W / MaxPool2d over the whole map",
    "Flatten / view / reshape (after the global pool, or of a dense map: a dense head);"
    " squeeze after the global pool",
    "a softmax / log_softmax as the output (dropped: the same argmax)",
    "Linear after the global pool or a flatten, or on a vector input (an MLP)",
    "+ / torch.add of two maps", "torch.cat of maps on channels (dim 1)",
    "Identity", "Dropout",
    "the project's quantizable and sparse layers (models.quant.layers, models.sparse)",
)


class FrontendError(ValueError):
    """A module the front end cannot take (one line: the node, its type, what is supported)."""


def grouped_as_full(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """The ``[C_out, C_in, k, k]`` weight of a grouped conv's ``[C_out, C_in / g, k, k]`` one:
    block diagonal, zero where an output channel's group does not see an input channel."""
    c_out, c_in_g = weight.shape[:2]
    full = weight.new_zeros((c_out, c_in_g * groups, *weight.shape[2:]))
    per = c_out // groups
    for i in range(groups):
        full[i * per:(i + 1) * per, i * c_in_g:(i + 1) * c_in_g] = weight[i * per:(i + 1) * per]
    return full


def _unsupported(node, what: str, why: str = "") -> FrontendError:
    reason = f" ({why})" if why else ""
    return FrontendError(f"{node.name}: {what} is not supported{reason}; supported: "
                         + "; ".join(SUPPORTED))


#: Elementwise arithmetic by target (operator, torch function or method name): what an input
#: normalisation is made of (:meth:`_Builder.input_affine`).
_ARITH = {operator.sub: "sub", torch.sub: "sub", "sub": "sub",
          operator.add: "add", torch.add: "add", "add": "add",
          operator.mul: "mul", torch.mul: "mul", "mul": "mul",
          operator.truediv: "div", torch.div: "div", "div": "div"}


#: Elementwise activations that become a table (:mod:`models.ops.act`): modules ...
_ACT_MODULES = (nn.LeakyReLU, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.GELU,
                nn.ELU, nn.CELU, nn.SELU, nn.Softplus, nn.Mish, nn.Softsign, nn.PReLU)
#: ... and functions or methods by target.
_ACT_FUNCTIONS = {F.leaky_relu, F.hardswish, F.hardsigmoid, F.silu, torch.sigmoid, F.sigmoid,
                  torch.tanh, F.tanh, F.gelu, F.elu, F.celu, F.selu, torch.selu, F.softplus,
                  F.mish, F.softsign, F.prelu, torch.prelu, "sigmoid", "tanh"}
#: Activations increasing in every input: as the module's output after the logits, dropped (the
#: class is the logits' argmax), as a softmax is; the check applies them again.
DROPPED_OUTPUTS = {"softmax": lambda t: t.softmax(1), "log_softmax": lambda t: t.log_softmax(1),
                   "sigmoid": torch.sigmoid, "tanh": torch.tanh}


class _Gated:
    """``x * f(x)`` for an activation ``f`` (SiLU written as ``x * torch.sigmoid(x)``); a class,
    so that a user model's checkpoint pickles it."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, v):
        return v * self.fn(v)


def _one(v):
    """A pool's square size or step: ``v`` or ``v[0]`` when both sides agree, else None."""
    return v if isinstance(v, int) else (v[0] if v[0] == v[1] else None)


def _pair(v) -> tuple:
    return (v, v) if isinstance(v, int) else tuple(v)


def _whole_map(x, kernel, stride, padding) -> bool:
    """Whether a pool of ``kernel`` (steps ``stride``, no ``padding``) covers the whole map of
    the traced value ``x`` (its shape known from an example batch): the global pool."""
    meta = getattr(x, "meta", {}).get("tensor_meta")
    return (meta is not None and len(meta.shape) == 4 and _pair(kernel) == tuple(meta.shape[2:])
            and _pair(stride) == _pair(kernel) and _one(padding) == 0)


def _over_hw(node, args, kw, what: str, want: str) -> None:
    """A reduction (``mean``, ``amax``) must be over the two spatial dims (any order or sign,
    ``keepdim`` or not, no ``dtype``): one line naming its dims otherwise."""
    p = dict(zip(("dim", "keepdim"), args[1:], strict=False)) | dict(kw)
    dims = p.get("dim")
    dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
    if sorted(d % 4 for d in dims) != [2, 3] or len(dims) != 2 or p.get("dtype"):
        raise _unsupported(node, f"{what} over dims {p.get('dim')}", want)


def _constant_params(node, what: str, *params) -> None:
    """A pool's kernel, stride and padding must be constants: one computed in ``forward()``
    (``F.avg_pool2d(x, x.size()[2:])``) is a traced value the import cannot read."""
    def traced(v):
        return isinstance(v, torch.fx.Node) or (isinstance(v, (list, tuple))
                                                and any(traced(e) for e in v))
    if any(traced(v) for v in params):
        raise _unsupported(node, f"{what} with a kernel, stride or padding computed in forward()",
                           "give constants; for a pool over the whole map, "
                           "AdaptiveAvgPool2d(1) / F.adaptive_avg_pool2d(x, 1)")


class _Builder:
    def __init__(self, gm: torch.fx.GraphModule, name: str, nonneg_input: bool):
        self.gm, self.net = gm, QNet(name)
        self.nonneg_input = nonneg_input
        self.value: dict = {}     # fx node -> QNet node name (or None for a non-map value)
        self.kind: dict = {}      # QNet node name -> "map" | "pooled" | "vector"
        self.users = {n: len(n.users) for n in gm.graph.nodes}
        self.sparse = False
        self.pad_of: dict = {}                 # fx node -> (left, right, top, bottom) zeros
        self.crop_after: dict[str, int] = {}   # conv -> k: crop its border when it is used
        self.cropped: dict[str, str] = {}      # conv -> its crop node
        self.consts: dict = {}                 # fx get_attr node -> its tensor (a buffer)
        self.superseded: set = set()           # fx nodes of the input before its normalisation
        self.input_taken = False               # a layer has read the input
        self.dropped_output: str | None = None  # "softmax" / "log_softmax" after the logits

    # -- helpers ---------------------------------------------------------------------------------
    def _name(self, node) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", node.name) or "n"
        name, k = base, 1
        while name in self.net.nodes:
            name, k = f"{base}_{k}", k + 1
        return name

    def _raw(self, node, arg, padded=False):
        if arg in self.superseded:
            raise _unsupported(node, f"the input before its normalisation ({arg.name}) used "
                                     "again", "normalise the input once, before any layer")
        if isinstance(arg, torch.fx.Node) and arg in self.consts:
            raise _unsupported(node, f"a constant tensor ({arg.name}) used as a map")
        if not isinstance(arg, torch.fx.Node) or arg not in self.value:
            raise _unsupported(node, f"an input of type {type(arg).__name__}")
        if arg in self.pad_of and not padded:
            raise _unsupported(node, f"a zero padding ({arg.name}) not right before a Conv2d")
        if self.value[arg] is None:
            raise _unsupported(node, f"a shape value ({arg.name}) used as a map")
        return self.value[arg]

    def _src(self, node, arg, padded=False):
        """The QNet node whose value ``arg`` is, as a layer's input: a zero-padded conv's crop
        goes in here, once."""
        src = self._raw(node, arg, padded)
        if src == next(iter(self.net.nodes)):
            self.input_taken = True
        if src in self.crop_after:
            if src not in self.cropped:
                name = f"{src}_crop"
                self.net.add(name, QCrop(self.crop_after[src]), src)
                self.kind[name] = "map"
                self.cropped[src] = name
            return self.cropped[src]
        return src

    def _add(self, node, module, *inputs, kind="map") -> str:
        name = self._name(node)
        self.net.add(name, module, *inputs)
        self.value[node] = name
        self.kind[name] = kind
        return name

    def _fold_target(self, node, arg, types):
        """The QNet layer ``arg`` is, when ``node`` may fold into it (its only user)."""
        src = self._raw(node, arg)
        mod = self.net.nodes[src]
        if isinstance(mod, types) and self.users[arg] == 1 and not getattr(mod, "relu", False):
            return src, mod
        return None, None

    # -- handlers ----------------------------------------------------------------------------------
    def placeholder(self, node):
        if self.net.nodes:
            raise _unsupported(node, "a second input")
        self._add(node, QInput(nonneg=self.nonneg_input))

    def conv2d(self, node, m: nn.Conv2d):
        (x,) = node.args
        k = m.kernel_size
        # first: a dilated window is named as such, not by the padding its 'same' size needs
        if m.dilation != (1, 1) or m.padding_mode != "zeros":
            raise _unsupported(node, f"Conv2d with dilation {tuple(m.dilation)} or padding "
                                     f"mode {m.padding_mode!r}")
        extra = self.pad_of.get(x)
        if extra is not None or k[0] != k[1]:
            self.padded_conv2d(node, m, x, extra or (0, 0, 0, 0))
            return
        if k[0] not in (1, 3, 5, 7):
            raise _unsupported(node, f"Conv2d with kernel {k}")
        k, s = k[0], m.stride
        if s[0] != s[1] or s[0] not in (1, 2):
            raise _unsupported(node, f"Conv2d {k}x{k} with stride {s}")
        pad = m.padding if isinstance(m.padding, tuple) else None
        valid = m.padding == "valid" or pad == (0, 0)
        if k > 1 and valid and s[0] != 1:
            raise _unsupported(node, f"Conv2d {k}x{k} with padding 0 and stride {s}",
                               "padding 0 at stride 1 only")
        if m.padding != "same" and pad != (k // 2, k // 2) and not valid:
            raise _unsupported(node, f"Conv2d {k}x{k} with padding {m.padding}")
        g = m.groups
        depthwise = g == m.in_channels == m.out_channels and k == 3
        weight = m.weight
        if g != 1 and not depthwise:
            # a grouped conv as the full conv with a block-diagonal weight (zeros across
            # groups): exact, at g times the MACs of a grouped unit (docs/FRONTENDS.md)
            weight = grouped_as_full(m.weight, g)
            g = 1
        q = QConv2d(m.in_channels, m.out_channels, k, stride=s[0], groups=g, bias=True)
        with torch.no_grad():
            q.weight.copy_(weight)
            q.bias.copy_(m.bias if m.bias is not None else torch.zeros(m.out_channels))
        name = self._add(node, q, self._src(node, x))
        if k > 1 and valid:
            # the "same" conv, cropped by k // 2 when its value is used (BatchNorm and ReLU
            # after it fold into the conv first; they commute with the crop)
            self.crop_after[name] = k

    def padded_conv2d(self, node, m: nn.Conv2d, x, extra):
        """A conv whose padding is not its kernel's centred "same" one: a rectangular or even
        kernel, or explicit (asymmetric) zero padding before it (``nn.ZeroPad2d``, ``F.pad``; a
        TensorFlow-style "same" stem such as a DS-CNN's 10x4 / 2). It is the centred odd kernel
        that holds the taps at the same offsets, zeros elsewhere: tap ``i`` of a kernel ``k`` with
        ``top`` padding sits at ``s*o - top + i``, so ``K = 2 * max(top, k - 1 - top) + 1``."""
        if m.groups != 1:  # (dilation and padding modes: refused in conv2d, before this)
            raise _unsupported(node, "Conv2d with explicit padding and groups")
        (kh, kw), (sh, sw) = m.kernel_size, m.stride
        if sh != sw or sh not in (1, 2):
            raise _unsupported(node, f"Conv2d with stride {m.stride}")
        if m.padding == "same":   # PyTorch's (stride 1): the odd pixel at the bottom / right
            pads = ((kh - 1) // 2, kh - 1 - (kh - 1) // 2, (kw - 1) // 2, kw - 1 - (kw - 1) // 2)
        elif m.padding == "valid":
            pads = (0, 0, 0, 0)
        else:
            pads = (m.padding[0], m.padding[0], m.padding[1], m.padding[1])
        left, right, top, bottom = extra
        top, bottom = top + pads[0], bottom + pads[1]
        left, right = left + pads[2], right + pads[3]
        big_h = 2 * max(top, kh - 1 - top) + 1
        big_w = 2 * max(left, kw - 1 - left) + 1
        if big_h > 11 or big_w > 11:
            raise _unsupported(node, f"Conv2d {kh}x{kw} with padding {(top, bottom, left, right)}",
                               f"it needs a centred {big_h}x{big_w} window, at most 11x11")
        q = QConv2d(m.in_channels, m.out_channels, (big_h, big_w), stride=sh, bias=True)
        oy, ox = big_h // 2 - top, big_w // 2 - left
        with torch.no_grad():
            q.weight.zero_()
            q.weight[:, :, oy:oy + kh, ox:ox + kw] = m.weight
            q.bias.copy_(m.bias if m.bias is not None else torch.zeros(m.out_channels))
        # checked on the first map: the centred conv's output size must be the module's
        q.torch_padding = (top, bottom, left, right, kh, kw)
        self._add(node, q, self._src(node, x, padded=True))

    def pad(self, node, x, pads, mode="constant", value=0.0):
        if mode != "constant" or value != 0 or len(pads) != 4 or min(pads) < 0:
            raise _unsupported(node, f"padding {tuple(pads)} mode {mode} value {value}",
                               "zero padding of H and W, right before a conv")
        src = self._src(node, x)
        self.value[node] = src
        self.pad_of[node] = tuple(int(v) for v in pads)

    def batchnorm(self, node, m: nn.BatchNorm1d | nn.BatchNorm2d):
        """BatchNorm2d after a conv, BatchNorm1d after a linear layer: folded into its weights."""
        (x,) = node.args
        layer = QConv2d if isinstance(m, nn.BatchNorm2d) else QLinear
        src, mod = self._fold_target(node, x, layer)
        if mod is None:
            raise _unsupported(node, f"{type(m).__name__} not right after a "
                                     f"{'conv' if layer is QConv2d else 'linear layer'}")
        if m.running_mean is None:
            raise _unsupported(node, f"{type(m).__name__} without running statistics")
        with torch.no_grad():
            g = m.weight / torch.sqrt(m.running_var + m.eps) if m.affine else \
                1.0 / torch.sqrt(m.running_var + m.eps)
            beta = m.bias if m.affine else torch.zeros_like(g)
            mod.weight.mul_(g.view(-1, *([1] * (mod.weight.dim() - 1))))
            mod.bias.copy_((mod.bias - m.running_mean) * g + beta)
        self.value[node] = src

    def relu(self, node, x):
        src, mod = self._fold_target(node, x, (QConv2d, QLinear, QAdd))
        if mod is None:
            raise _unsupported(node, "ReLU not right after a conv, linear or add")
        mod.relu = True
        self.value[node] = src

    def clamp(self, node, x, lo: float, hi: float, what: str):
        """ReLU6 / Hardtanh after a conv or linear layer: its output clamp (``QLayer.clip``)."""
        src, mod = self._fold_target(node, x, (QConv2d, QLinear))
        if mod is None or mod.clip is not None:
            raise _unsupported(node, f"{what} not right after a conv or linear layer")
        if not lo < hi or not (lo <= 0 <= hi):
            raise _unsupported(node, f"{what} with range [{lo}, {hi}]", "it must contain 0")
        mod.clip = (float(lo), float(hi))
        self.value[node] = src

    def maxpool2d(self, node, x, kernel, stride, padding=0, dilation=1, ceil_mode=False):
        _constant_params(node, "MaxPool2d", kernel, stride, padding)
        one = _one
        stride = kernel if stride is None or stride == [] else stride
        if _whole_map(x, kernel, stride, padding) and one(dilation) == 1:
            # a max pool over the whole map: the global max pool
            self.global_pool(node, x, QGlobalMaxPool)
            return
        k = one(kernel)
        if k in (3, 5, 7) and one(stride) in (1, 2) and one(padding) == k // 2 and \
                one(dilation) == 1 and not ceil_mode:
            # a "same" window max pool (the ImageNet stem's 3x3 / 2, an SPP block's 5x5 / 1)
            if self.kind.get(self._src(node, x)) != "map":
                raise _unsupported(node, "MaxPool2d of a vector")
            self._add(node, QMaxPoolK(k, one(stride)), self._src(node, x))
            return
        if (one(kernel), one(stride), one(padding), one(dilation), ceil_mode) != (2, 2, 0, 1,
                                                                                 False):
            raise _unsupported(node, f"MaxPool2d(kernel={kernel}, stride={stride}, "
                                     f"padding={padding})",
                               "2x2 stride 2 no padding, or k x k (k = 3, 5, 7) stride 1 or 2 "
                               "padding k // 2")
        if self.kind.get(self._src(node, x)) != "map":
            raise _unsupported(node, "MaxPool2d of a vector")
        self._add(node, QMaxPool2d(), self._src(node, x))

    def avgpool2d(self, node, x, kernel, stride, padding=0, ceil_mode=False,
                  count_include_pad=True, divisor_override=None):
        _constant_params(node, "AvgPool2d", kernel, stride, padding)
        one = _one
        stride = kernel if stride is None or stride == [] else stride
        if _whole_map(x, kernel, stride, padding) and not ceil_mode and divisor_override is None:
            # a pool over the whole map (a CIFAR ResNet's F.avg_pool2d(out, 4)): the global pool
            self.global_pool(node, x)
            return
        if (one(kernel), one(stride), one(padding), ceil_mode, divisor_override) != \
                (2, 2, 0, False, None):
            raise _unsupported(node, f"AvgPool2d(kernel={kernel}, stride={stride}, "
                                     f"padding={padding})", "2x2, stride 2, no padding")
        if self.kind.get(self._src(node, x)) != "map" or self.sparse:
            raise _unsupported(node, "AvgPool2d of a vector or a sparse map")
        self._add(node, QAvgPool2d(), self._src(node, x))

    def global_pool(self, node, x, pool=QGlobalAvgPool):
        """The global average pool, or ``pool`` (:class:`QGlobalMaxPool`), of a map."""
        if self.kind.get(self._src(node, x)) != "map":
            what = "a global max pool" if pool is QGlobalMaxPool else "a global pool"
            raise _unsupported(node, f"{what} of a vector")
        self._add(node, pool(), self._src(node, x), kind="pooled")

    def upsample(self, node, x, scale=None, mode="nearest", size=None, align_corners=None,
                 what="Upsample"):
        """Nearest upsampling by 2 (``scale_factor=2``, or a ``size`` twice the map's)."""
        _constant_params(node, what, scale, size)
        meta = getattr(x, "meta", {}).get("tensor_meta")
        hw = tuple(meta.shape[2:]) if meta is not None and len(meta.shape) == 4 else None

        def two(v):
            return v in (2, 2.0) or (isinstance(v, (tuple, list)) and len(v) == 2
                                     and all(e in (2, 2.0) for e in v))
        by_size = size is not None and hw is not None and tuple(
            (size, size) if isinstance(size, int) else size) == (2 * hw[0], 2 * hw[1])
        if mode != "nearest" or not (two(scale) or by_size):
            raise _unsupported(node, f"{what}(scale_factor={scale}, size={size}, mode={mode!r})",
                               "nearest, by 2")
        src = self._src(node, x)
        if self.kind.get(src) != "map":
            raise _unsupported(node, f"{what} of a vector")
        self._add(node, QUpsample2x(), src)

    def input_affine(self, node, t, args) -> bool:
        """``x - c``, ``c - x``, ``x + c``, ``x * c``, ``x / c`` on the input before any layer
        reads it, ``c`` a number or a buffer of one value per channel: folded into the input
        quantizer's normalisation (:attr:`QInput.gain`, :attr:`QInput.shift`), which the host
        applies before quantizing. Returns whether ``node`` was such an op."""
        inp = next(iter(self.net.nodes), None)
        nodes = [a for a in args if isinstance(a, torch.fx.Node) and a not in self.consts]
        if inp is None or len(args) != 2 or len(nodes) != 1 or self.value.get(nodes[0]) != inp:
            return False
        x = nodes[0]
        c = args[1] if args[0] is x else args[0]
        op = _ARITH[t]
        if self.input_taken:
            raise _unsupported(node, f"a normalisation ({op}) of the input after a layer read it")
        reverse = args[0] is not x   # c - x (an inverted image); c / x is not affine
        if op == "div" and reverse:
            raise _unsupported(node, "div of a constant by the input",
                               "normalise as (x - mean) / std")
        value = self.consts.get(c, c) if isinstance(c, torch.fx.Node) else c
        if not isinstance(value, int | float | torch.Tensor) or isinstance(value, bool):
            raise _unsupported(node, f"arithmetic ({op}) on the input with {type(value).__name__}",
                               "normalise the inputs in the --calib data, not in forward()")
        v = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
        meta = x.meta.get("tensor_meta")
        channels = int(meta.shape[1]) if meta is not None and len(meta.shape) >= 2 else None
        if (v.numel() != 1 and v.numel() != channels) or not torch.isfinite(v).all() or \
                (op == "div" and (v == 0).any()):
            raise _unsupported(node, f"a normalisation ({op}) of the input by {v.numel()} values",
                               "one value, or one per input channel, finite (and non-zero to "
                               "divide by)")
        q = self.net.nodes[inp]
        g = q.gain if q.gain is not None else torch.ones(1, dtype=torch.float64)
        h = q.shift if q.shift is not None else torch.zeros(1, dtype=torch.float64)
        if op == "sub" and reverse:
            g, h = -g, v - h
        elif op == "sub":
            h = h - v
        elif op == "add":
            h = h + v
        elif op == "mul":
            g, h = g * v, h * v
        else:
            g, h = g / v, h / v
        q.gain, q.shift = g, h
        self.superseded.add(x)
        self.value[node] = inp
        return True

    def squeeze(self, node, x):
        """``squeeze`` of the pooled ``[N, C, 1, 1]`` vector (after the global pool): nothing."""
        src = self._src(node, x)
        if self.kind[src] == "map":
            raise _unsupported(node, "squeeze of a spatial map", "only after the global pool")
        self.value[node] = src

    def softmax(self, node, x, dim, what: str):
        """A softmax or log-softmax over the classes as the module's output: dropped. Both are
        increasing in each logit, so the argmax (the class, and every accuracy figure) is the
        logits'; the accelerator emits the logits (decision: docs/FRONTENDS.md)."""
        src = self._src(node, x)
        if self.kind[src] in ("map", "flat") or dim not in (None, 1, -1):
            raise _unsupported(node, f"{what} over dim {dim} of a {self.kind[src]}",
                               "only over the classes of the output logits")
        if [u.op for u in node.users] != ["output"]:
            raise _unsupported(node, f"{what} not as the module's output",
                               "a softmax is dropped as the output only")
        self.dropped_output = "log_softmax" if "log" in what.lower() else "softmax"
        self.value[node] = src

    def activation(self, node, x, fn, what: str):
        """An elementwise activation: a table of its quantized input (:class:`QActTable`); a
        sigmoid or tanh on the logits as the module's output is dropped as a softmax is."""
        src = self._src(node, x)
        name = what.split("(")[0].lower()
        if name in DROPPED_OUTPUTS and self.kind[src] not in ("map", "flat") \
                and [u.op for u in node.users] == ["output"] \
                and isinstance(self.net.nodes[src], QLinear):
            self.dropped_output = name
            self.value[node] = src
            return
        self._add(node, QActTable(fn, what, nonneg=self._nonneg(node, fn)), src,
                  kind=self.kind[src])

    @staticmethod
    def _nonneg(node, fn) -> bool:
        """Whether ``fn``'s outputs are never negative, on the node's channels (a PReLU has a
        slope per channel)."""
        meta = node.meta.get("tensor_meta")
        channels = int(meta.shape[1]) if meta is not None and len(meta.shape) >= 2 else 1
        try:
            return nonneg_fn(fn, channels=channels)
        except RuntimeError:  # a slope per channel, the channels unknown: signed
            return False

    def gated(self, node, args) -> bool:
        """``x * f(x)`` (or ``f(x) * x``), ``f`` a table activation used only here (SiLU as
        ``x * torch.sigmoid(x)``, a swish, ``x * F.hardsigmoid(x)``): one table of the product.
        Returns whether ``node`` was one."""
        if len(args) != 2 or not all(isinstance(a, torch.fx.Node) for a in args):
            return False
        for gate, x in (args, args[::-1]):
            name = self.value.get(gate)
            mod = self.net.nodes[name] if name in self.net.nodes else None
            if (isinstance(mod, QActTable) and self.users[gate] == 1 and x in self.value
                    and self.net.edges[name] == (self.value[x],)
                    and list(self.net.nodes)[-1] == name):
                del self.net.nodes[name]
                del self.net.edges[name]
                fn = _Gated(mod.fn)
                self._add(node, QActTable(fn, f"x * {mod.what}", nonneg=self._nonneg(node, fn)),
                          self.value[x], kind=self.kind.pop(name))
                return True
        return False

    def act_module(self, node, m):
        import copy

        if getattr(m, "inplace", False):  # computes on the layer's own copy of its input
            m = copy.copy(m)
            m.inplace = False
        params = {k: getattr(m, k) for k in ("negative_slope", "alpha", "beta", "threshold",
                                             "approximate", "num_parameters") if hasattr(m, k)}
        args = ", ".join(f"{k}={v}" for k, v in params.items())
        fn = ChannelPReLU(m.weight) if isinstance(m, nn.PReLU) else m
        self.activation(node, node.args[0], fn, f"{type(m).__name__}({args})")

    def act_function(self, node, t, args, kw):
        # a parameter the module holds (F.prelu(x, self.weight)) is its tensor
        args = [args[0], *(self.consts.get(a, a) if isinstance(a, torch.fx.Node) else a
                           for a in args[1:])]
        kw = {k: self.consts.get(v, v) if isinstance(v, torch.fx.Node) else v
              for k, v in kw.items()}
        extra = [*args[1:], *kw.values()]
        if any(isinstance(a, torch.fx.Node) for a in extra):
            raise _unsupported(node, f"{getattr(t, '__name__', t)} with a parameter computed "
                                     "in forward()", "give constants")
        kw = {k: v for k, v in kw.items() if k != "inplace"}
        if not isinstance(t, str) and len(args) > 1 and isinstance(args[-1], bool):
            args = args[:-1]  # a positional inplace flag (F.leaky_relu(x, 0.1, True))
        # picklable (a user model's checkpoint holds its QNet)
        if t in (F.prelu, torch.prelu):
            fn = ChannelPReLU(args[1] if len(args) > 1 else kw.get("weight"))
        else:
            fn = (operator.methodcaller(t, *args[1:], **kw) if isinstance(t, str)
                  else functools.partial(t, *args[1:], **kw) if args[1:] or kw else t)
        what = getattr(t, "__name__", str(t))
        def show(v):
            return f"tensor of {v.numel()}" if isinstance(v, torch.Tensor) else str(v)
        shown = ", ".join([*(show(a) for a in args[1:]), *(f"{k}={show(v)}"
                                                          for k, v in kw.items())])
        self.activation(node, args[0], fn, f"{what}({shown})")

    def flatten(self, node, x):
        src = self._src(node, x)
        if self.kind[src] != "map":
            self.value[node] = src  # a pooled vector is flat already
            return
        if self.sparse:
            raise _unsupported(node, "flattening a sparse map",
                               "a dense head takes dense maps; pool the sparse map first")
        self._add(node, QFlatten(), src, kind="flat")

    def linear(self, node, m: nn.Linear):
        (x,) = node.args
        src = self._src(node, x)
        if src == next(iter(self.net.nodes)):  # linear layers on a vector input (an MLP)
            self.kind[src] = "vector"
        if self.kind[src] == "map":
            raise _unsupported(node, "Linear on a spatial map", "flatten it first")
        q = QLinear(m.in_features, m.out_features, bias=True)
        with torch.no_grad():
            q.weight.copy_(m.weight)
            q.bias.copy_(m.bias if m.bias is not None else torch.zeros(m.out_features))
        self._add(node, q, src, kind="vector")

    def add(self, node, a, b):
        sa, sb = self._src(node, a), self._src(node, b)
        if self.kind[sa] != "map" or self.kind[sb] != "map":
            raise _unsupported(node, "an add of non-map values")
        self._add(node, QAdd(), sa, sb)

    def cat(self, node, tensors, dim):
        if dim not in (1, -3) or not isinstance(tensors, (list, tuple)) or len(tensors) < 2:
            raise _unsupported(node, f"torch.cat on dim {dim}", "maps on channels, dim 1")
        srcs = [self._src(node, t) for t in tensors]
        if any(self.kind[s] != "map" for s in srcs):
            raise _unsupported(node, "torch.cat of non-map values")
        cur = srcs[0]
        for i, s in enumerate(srcs[1:]):  # a chain of two-input joins
            name = self._name(node) + (f"_{i}" if len(srcs) > 2 else "")
            self.net.add(name, QConcat(), cur, s)
            self.kind[name] = "map"
            cur = name
        self.value[node] = cur

    def passthrough(self, node, x):
        self.value[node] = self._src(node, x)

    def own_layer(self, node, m):
        """One of the project's quantizable layers (dense or sparse), taken as it is."""
        import copy

        from ..sparse.layers import SparseConv2d

        if isinstance(m, QInput):
            raise _unsupported(node, f"a {type(m).__name__} inside the model")
        self.sparse = self.sparse or isinstance(m, SparseConv2d)
        srcs = [self._src(node, a) for a in node.args]
        if isinstance(m, QLayer) and not isinstance(m, QLinear):
            kind = "map"
        elif isinstance(m, QLinear):
            kind = "vector"
        elif isinstance(m, QGlobalAvgPool):
            kind = "pooled"
        else:
            kind = "map"
        if kind != "vector" and any(self.kind[s] != "map" for s in srcs):
            raise _unsupported(node, f"{type(m).__name__} on a vector")
        self._add(node, copy.deepcopy(m), *srcs, kind=kind)

    # -- dispatch ---------------------------------------------------------------------------------
    def run(self) -> QNet:
        out = None
        for node in self.gm.graph.nodes:
            try:
                if node.op == "placeholder":
                    self.placeholder(node)
                elif node.op == "call_module":
                    self._module(node, self.gm.get_submodule(node.target))
                elif node.op in ("call_function", "call_method"):
                    self._function(node)
                elif node.op == "get_attr":
                    self.consts[node] = self._attr(node)
                elif node.op == "output":
                    out = node.args[0]
                else:
                    raise _unsupported(node, f"a {node.op} node ({node.target})")
            except FrontendError:
                raise
            except Exception as exc:  # noqa: BLE001  (a form of a supported op no handler reads)
                what = getattr(node.target, "__name__", str(node.target))
                raise _unsupported(node, f"{what} in this form",
                                   f"{type(exc).__name__}: {exc}") from None
        if not isinstance(out, torch.fx.Node) or self.value.get(out) != list(self.net.nodes)[-1]:
            raise FrontendError("the module must return one tensor, computed last")
        if self.sparse and self.net.input_node.gain is not None:
            raise FrontendError("a sparse network's input cannot be normalised in forward() "
                                "(absent sites would not stay zero); normalise the events' "
                                "features in --calib instead")
        last = self.net.nodes[self.value[out]]
        if isinstance(last, QLinear) and not last.relu:
            last.requant_out = False  # the classifier's raw int32 logits
        self.net.sparse = self.sparse
        self.net.dropped_output = self.dropped_output
        return self.net

    def _attr(self, node) -> torch.Tensor:
        """A buffer or parameter the module reads in ``forward()`` (``self.mean``)."""
        obj = self.gm
        for part in str(node.target).split("."):
            obj = getattr(obj, part)
        if not isinstance(obj, torch.Tensor):
            raise _unsupported(node, f"an attribute {node.target} of type {type(obj).__name__}")
        return obj.detach()

    def _module(self, node, m):
        if isinstance(m, QModule):
            self.own_layer(node, m)
        elif isinstance(m, nn.Conv2d):
            self.conv2d(node, m)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            self.batchnorm(node, m)
        elif isinstance(m, nn.ReLU):
            self.relu(node, node.args[0])
        elif isinstance(m, nn.ReLU6):
            self.clamp(node, node.args[0], 0.0, 6.0, "ReLU6")
        elif isinstance(m, nn.Hardtanh):
            self.clamp(node, node.args[0], m.min_val, m.max_val, type(m).__name__)
        elif isinstance(m, nn.MaxPool2d):
            self.maxpool2d(node, node.args[0], m.kernel_size, m.stride, m.padding, m.dilation,
                           m.ceil_mode)
        elif isinstance(m, nn.AvgPool2d):
            self.avgpool2d(node, node.args[0], m.kernel_size, m.stride, m.padding, m.ceil_mode,
                           m.count_include_pad, m.divisor_override)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            size = m.output_size
            if size not in (1, (1, 1)):
                raise _unsupported(node, f"AdaptiveAvgPool2d({size})")
            self.global_pool(node, node.args[0])
        elif isinstance(m, (nn.Upsample, nn.UpsamplingNearest2d)):
            self.upsample(node, node.args[0], m.scale_factor, m.mode, m.size,
                          what=type(m).__name__)
        elif isinstance(m, nn.AdaptiveMaxPool2d):
            if m.output_size not in (1, (1, 1)) or m.return_indices:
                raise _unsupported(node, f"AdaptiveMaxPool2d({m.output_size}"
                                         f"{', return_indices=True' if m.return_indices else ''})")
            self.global_pool(node, node.args[0], QGlobalMaxPool)
        elif isinstance(m, nn.Flatten):
            self.flatten(node, node.args[0])
        elif isinstance(m, nn.Linear):
            self.linear(node, m)
        elif isinstance(m, (nn.Identity, nn.Dropout)):
            self.passthrough(node, node.args[0])
        elif isinstance(m, nn.ZeroPad2d):
            self.pad(node, node.args[0], m.padding)
        elif isinstance(m, _ACT_MODULES):
            self.act_module(node, m)
        elif isinstance(m, (nn.Softmax, nn.LogSoftmax)):
            self.softmax(node, node.args[0], m.dim, type(m).__name__)
        else:
            raise _unsupported(node, f"module {node.target} ({type(m).__name__})")

    def _function(self, node):
        t, args, kw = node.target, node.args, node.kwargs
        if isinstance(t, str) and t.endswith("_") and not t.startswith("_") and not node.users:
            # out.add_(x) then relu(out): torch.fx records the in-place op but not that `out`
            # changed, so the graph after it reads the old value (the add would be lost)
            raise _unsupported(node, f"an in-place {t} whose result is not used",
                               "torch.fx cannot see it change its operand; write "
                               f"`out = out.{t[:-1]}(...)` or `out = out + x`")
        if t in _ARITH and not kw and self.input_affine(node, t, args):
            return
        if t in (F.relu, torch.relu, "relu", F.relu_, torch.relu_, "relu_"):
            self.relu(node, args[0])
        elif t is F.relu6:
            self.clamp(node, args[0], 0.0, 6.0, "relu6")
        elif t in (torch.clamp, torch.clip, "clamp", "clip"):
            p = dict(zip(("min", "max"), args[1:3], strict=False)) | dict(kw)
            lo, hi = p.get("min"), p.get("max")
            if isinstance(lo, int | float) and lo == 0 and hi is None:
                self.relu(node, args[0])        # x.clamp(min=0)
            elif isinstance(lo, int | float) and isinstance(hi, int | float):
                self.clamp(node, args[0], float(lo), float(hi), "clamp")
            else:
                raise _unsupported(node, f"clamp(min={lo}, max={hi})",
                                   "min 0 alone, or constant min and max around 0")
        elif t is F.hardtanh:
            p = dict(zip(("min_val", "max_val"), args[1:3], strict=False)) | dict(kw)
            self.clamp(node, args[0], p.get("min_val", -1.0), p.get("max_val", 1.0), "hardtanh")
        elif t in (operator.add, operator.iadd, torch.add, "add", "add_") and len(args) == 2 \
                and not kw:
            self.add(node, *args)
        elif t is torch.cat:
            p = dict(zip(("tensors", "dim"), args, strict=False)) | dict(kw)
            self.cat(node, p.get("tensors"), p.get("dim", 0))
        elif t is F.max_pool2d:
            names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
            params = dict(zip(names, args[1:], strict=False)) | dict(kw)
            params.pop("return_indices", None)
            self.maxpool2d(node, args[0], params.get("kernel_size"), params.get("stride"),
                           params.get("padding", 0), params.get("dilation", 1),
                           params.get("ceil_mode", False))
        elif t is F.avg_pool2d:
            names = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                     "divisor_override")
            p = dict(zip(names, args[1:], strict=False)) | dict(kw)
            self.avgpool2d(node, args[0], p.get("kernel_size"), p.get("stride"),
                           p.get("padding", 0), p.get("ceil_mode", False),
                           p.get("count_include_pad", True), p.get("divisor_override"))
        elif t is F.adaptive_avg_pool2d and args[1:] in ((1,), ((1, 1),)):
            self.global_pool(node, args[0])
        elif t in (torch.mean, "mean"):
            _over_hw(node, args, kw, "mean", "a mean over H, W")
            self.global_pool(node, args[0])  # keepdim or not: the pooled vector
        elif t in _ACT_FUNCTIONS:
            self.act_function(node, t, args, dict(kw))
        elif t in (F.interpolate, F.upsample, F.upsample_nearest):
            names = ("size", "scale_factor", "mode", "align_corners")
            p = dict(zip(names, args[1:], strict=False)) | dict(kw)
            mode = "nearest" if t is F.upsample_nearest else p.get("mode", "nearest")
            self.upsample(node, args[0], p.get("scale_factor"), mode, p.get("size"),
                          what=getattr(t, "__name__", "interpolate"))
        elif t is F.adaptive_max_pool2d and args[1:] in ((1,), ((1, 1),)) and \
                not kw.get("return_indices"):
            self.global_pool(node, args[0], QGlobalMaxPool)
        elif t in (torch.amax, "amax"):
            _over_hw(node, args, kw, "amax", "a max over H, W")
            self.global_pool(node, args[0], QGlobalMaxPool)
        elif t in (torch.squeeze, "squeeze"):
            self.squeeze(node, args[0])
        elif t in (F.softmax, torch.softmax, "softmax", F.log_softmax, torch.log_softmax,
                   "log_softmax"):
            p = dict(zip(("dim",), args[1:2], strict=False)) | dict(kw)
            self.softmax(node, args[0], p.get("dim"), getattr(t, "__name__", str(t)))
        elif t in (torch.flatten, "flatten", "view", "reshape"):
            self.flatten(node, args[0])
        elif t is F.pad:
            p = dict(zip(("pad", "mode", "value"), args[1:], strict=False)) | dict(kw)
            self.pad(node, args[0], p.get("pad"), p.get("mode", "constant"),
                     p.get("value", 0.0) or 0.0)
        elif t in ("size", getattr) or (
                t in (operator.getitem, operator.floordiv, operator.mul, operator.add,
                      operator.sub, operator.truediv)
                and all(self.value.get(a, 0) is None for a in args if isinstance(a, torch.fx.Node))
                and any(isinstance(a, torch.fx.Node) for a in args)):
            # a shape value, or arithmetic on shape values (x.view(x.size(0), -1),
            # x.view(x.shape[0], -1), x.shape[-1] // 4), not a map
            self.value[node] = None
        elif t in (operator.mul, torch.mul, "mul") and not kw and self.gated(node, args):
            pass
        elif t in (F.dropout, "contiguous"):
            self.passthrough(node, args[0])
        elif t in _ARITH and any(
                isinstance(a, torch.fx.Node) and a.op == "placeholder" for a in args):
            raise _unsupported(node, f"arithmetic ({getattr(t, '__name__', t)}) on the input",
                               "normalise the inputs in the --calib data, not in forward()")
        else:
            what = getattr(t, "__name__", str(t))
            raise _unsupported(node, f"function {what}")


class _Tracer(torch.fx.Tracer):
    """Keeps the project's own layers whole (their quantization is already defined)."""

    def is_leaf_module(self, m, qualname) -> bool:
        return isinstance(m, QModule) or super().is_leaf_module(m, qualname)


def from_torch(module: nn.Module, *, name: str = "net", nonneg_input: bool = True,
               example: torch.Tensor | None = None) -> QNet:
    """The :class:`QNet` of ``module`` (in eval mode), with its float weights.

    ``nonneg_input``: whether the input is non-negative (an unsigned first quantizer, like the
    built-in networks' images); otherwise the input is quantized symmetric. ``example``: a dense
    input batch; with it the graph's shapes are known (an ``AvgPool2d`` over the whole map is the
    global pool). An input the module normalises in ``forward()`` is quantized signed unless
    ``nonneg_input`` and ``example``'s normalised values are non-negative.
    """
    if not isinstance(module, nn.Module):
        raise FrontendError(f"expected a torch.nn.Module, not {type(module).__name__}")
    module = module.eval()
    try:
        gm = torch.fx.GraphModule(module, _Tracer().trace(module))
    except Exception as exc:  # noqa: BLE001  (any trace failure is the user's model's)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FrontendError(f"torch.fx cannot trace {type(module).__name__}: {first}") from None
    if example is not None:
        import contextlib
        import io

        from torch.fx.passes.shape_prop import ShapeProp

        quiet = io.StringIO()  # ShapeProp prints a failing node's traceback
        try:
            with torch.no_grad(), contextlib.redirect_stderr(quiet), \
                    contextlib.redirect_stdout(quiet):
                ShapeProp(gm).propagate(example)
        except Exception:  # noqa: BLE001  (reported when the caller runs the module on its data)
            pass
    net = _Builder(gm, name, nonneg_input).run().eval()
    inp = net.input_node
    if inp.gain is not None:
        # a normalised input is signed unless the example says otherwise (ImageNet's is)
        from ..quant.layers import feat

        inp.nonneg = bool(nonneg_input and example is not None
                          and (inp.normalise(feat(example.double())) >= 0).all())
    return net
