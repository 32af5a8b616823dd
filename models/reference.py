"""Integer reference operations: the functions the RTL is compared against, bit for bit.

All inputs and outputs are int64 torch tensors holding integer values; no float enters. Dense
maps are ``[B, C, H, W]``. Sparse maps use the same arithmetic per site (see :mod:`models.sparse`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .quant.requant import add_requant, requant

__all__ = [
    "ACC_BITS",
    "conv2d",
    "linear",
    "clamp",
    "relu",
    "requant",
    "add_requant",
    "avg_round",
    "global_avg_pool",
    "acc_bits",
    "check_acc_bits",
    "requant_acc_bits",
    "window_sites",
    "sparse_conv",
    "empty_sites",
]

#: Accumulator width of the contract.
ACC_BITS = 32


def _int(t: torch.Tensor, what: str) -> torch.Tensor:
    if t.is_floating_point():
        raise TypeError(f"{what} must be an integer tensor, not {t.dtype}")
    return t.long()


def conv2d(x, weight, bias=None, *, stride=1, padding=0, groups=1) -> torch.Tensor:
    """k x k convolution (cross-correlation, like ``nn.Conv2d``) in int64: the int32 accumulator.

    Covers 1x1 (pointwise) and depthwise (``groups == C_in``) convolutions.
    """
    x = _int(x, "conv input")
    w = _int(weight, "conv weight")
    b = None if bias is None else _int(bias, "conv bias")
    return F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)


def linear(x, weight, bias=None) -> torch.Tensor:
    """Fully connected layer ``x @ W.T + b`` in int64."""
    x = _int(x, "linear input")
    y = x @ _int(weight, "linear weight").t()
    if bias is not None:
        y = y + _int(bias, "linear bias")
    return y


def clamp(x, lo: int, hi: int) -> torch.Tensor:
    return _int(x, "clamp input").clamp(lo, hi)


def relu(x) -> torch.Tensor:
    return _int(x, "relu input").clamp(min=0)


def avg_round(total, count):
    """Average with round-half-up: ``floor((2*total + count) / (2*count))``; 0 when count is 0.

    This is the integer rounding of global average pooling (dense and sparse alike).
    """
    total = torch.as_tensor(total).long()
    count = torch.as_tensor(count).long()
    safe = count.clamp(min=1)
    out = torch.div(2 * total + safe, 2 * safe, rounding_mode="floor")
    return torch.where(count > 0, out, torch.zeros_like(out))


def global_avg_pool(x) -> torch.Tensor:
    """``[B, C, H, W] -> [B, C]``: channel sums over every site, averaged with :func:`avg_round`."""
    x = _int(x, "pool input")
    return avg_round(x.sum(dim=(2, 3)), x.shape[2] * x.shape[3])


def acc_bits(weight, bias, x_lo: int, x_hi: int) -> int:
    """Signed bits the accumulator of a layer needs, from weight values and the input range.

    Per output channel the bound is ``sum(max(w*x_lo, w*x_hi) ...)`` on each side plus the bias.
    """
    w = _int(weight, "weight").reshape(weight.shape[0], -1)
    hi = torch.maximum(w * x_lo, w * x_hi).sum(1)
    lo = torch.minimum(w * x_lo, w * x_hi).sum(1)
    if bias is not None:
        b = _int(bias, "bias")
        hi, lo = hi + b, lo + b
    top = int(max(hi.max().item(), -lo.min().item(), 0))
    return top.bit_length() + 1


def requant_acc_bits(node, abits: int) -> int:
    """Signed bits of a compute node's accumulator over the whole ``abits``-bit signed activation
    range (what the composer sizes its requantizer by, and the DSE prices the requantizer's
    multiplier by)."""
    qmax = (1 << (abits - 1)) - 1
    w = torch.as_tensor(node.weight)
    b = None if node.bias is None else torch.as_tensor(node.bias)
    return acc_bits(w, b, -qmax, qmax)


def check_acc_bits(weight, bias, x_lo: int, x_hi: int, name: str = "layer") -> int:
    """:func:`acc_bits`, asserting it fits the contract's int32 accumulator."""
    n = acc_bits(weight, bias, x_lo, x_hi)
    if n > ACC_BITS:
        raise OverflowError(f"{name}: accumulator needs {n} bits, more than the {ACC_BITS} allowed")
    return n


# -- sparse maps in the token view: coords [N, 2] (raster order), feats [N, C] ------------------

def empty_sites() -> torch.Tensor:
    return torch.zeros((0, 2), dtype=torch.int64)


def _coords(coords) -> torch.Tensor:
    return torch.as_tensor(coords, dtype=torch.int64).reshape(-1, 2)


def _mask(coords, height: int, width: int) -> torch.Tensor:
    m = torch.zeros((1, 1, height, width), dtype=torch.float64)
    if len(coords):
        m[0, 0, coords[:, 0], coords[:, 1]] = 1.0
    return m


def window_sites(coords, *, height: int, width: int, kernel=3,
                 stride: int = 1) -> torch.Tensor:
    """Active output sites of a "same" ``kernel`` (``k`` or ``(kh, kw)``) conv, in raster order.

    Stride 1 (submanifold): the input's own sites. Stride 2: every output site whose receptive
    field holds an active input site (docs/CONTRACT.md).
    """
    coords = _coords(coords)
    if stride == 1:
        return coords
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    m = F.max_pool2d(_mask(coords, height, width), (kh, kw), stride=stride,
                     padding=(kh // 2, kw // 2))
    return torch.nonzero(m[0, 0] > 0)


def sparse_conv(coords, feats, *, weight, bias, height: int, width: int, stride: int = 1,
                groups: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw int32 accumulators of a sparse "same" conv: ``(out coords, out feats [N, C_out])``.

    The one golden model of every conv block: the dense conv (:func:`conv2d`) of the zero-filled
    map, sampled at :func:`window_sites`, so each output sums only over active neighbours.
    """
    w = _int(torch.as_tensor(weight), "weight")
    if w.dim() == 2:
        w = w[:, :, None, None]
    b = None if bias is None else torch.as_tensor(bias, dtype=torch.int64)
    coords = _coords(coords)
    c_in = w.shape[1] * groups
    feats = torch.as_tensor(feats, dtype=torch.int64).reshape(len(coords), c_in)
    dense = torch.zeros((1, c_in, height, width), dtype=torch.int64)
    if len(coords):
        dense[0, :, coords[:, 0], coords[:, 1]] = feats.t()
    kh, kw = w.shape[-2], w.shape[-1]
    acc = conv2d(dense, w, b, stride=stride, padding=(kh // 2, kw // 2), groups=groups)
    oc = window_sites(coords, height=height, width=width, kernel=(kh, kw), stride=stride)
    if not len(oc):
        return oc, acc.new_zeros((0, acc.shape[1]))
    return oc, acc[0][:, oc[:, 0], oc[:, 1]].t()
