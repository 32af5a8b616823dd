"""Sparse layers: submanifold / strided sparse convs, residual add, global pooling, ReLU.

The weighted layers subclass :class:`models.quant.layers.QLayer`, so the float, fake-quant and
integer-exact modes (BN folding, weight formats, requantization) are the dense layers' code; this
file only provides the sparse linear operator :func:`sparse_conv`. Every op works on
:class:`~models.sparse.tensor.SparseTensor` and never densifies: a 3x3 conv walks the rulebook (the
active input/output pairs of each tap, :func:`models.sparse.neighbours.rulebook`, built once per
site set): gather the inputs, multiply by the tap's weights, scatter-add into the outputs; on dense
maps a full conv gathers every tap of the neighbour map instead (one ``addmm`` per tap). The result
equals the dense ``F.conv2d`` (padding ``k // 2``) of the zero-filled map sampled at the output
sites, in float and exactly in int64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..quant.layers import QAdd, QGlobalAvgPool, QInput, QLayer
from .neighbours import downsample, rulebook, submanifold_map
from .tensor import SparseTensor

__all__ = [
    "sparse_conv",
    "sparse_add",
    "sparse_global_avg_pool",
    "SparseConv2d",
    "SubmanifoldConv2d",
    "SparseAdd",
    "SparseGlobalAvgPool",
    "SparseReLU",
    "SparseInput",
]


def _check_sparse(x, what):
    if not isinstance(x, SparseTensor):
        raise TypeError(f"{what} takes a SparseTensor, not {type(x).__name__}")


def sparse_conv(x: SparseTensor, weight, bias=None, *, stride: int = 1, groups: int = 1):
    """Sparse conv with ``nn.Conv2d`` weight layout ``[out, in/groups, k, k]`` (cross-correlation).

    ``k`` is 1 or 3 and the padding ``k // 2``. Stride 1 keeps the input's sites (submanifold);
    stride 2 (k = 3 only) activates an output where its 3x3 receptive field holds an active input.
    Float and integer features alike (integers accumulate in int64: the int32 accumulator).
    """
    _check_sparse(x, "sparse_conv")
    out_c, cg, k, k2 = weight.shape
    C = x.num_channels
    if k != k2 or k not in (1, 3):
        raise ValueError(f"kernel must be 1x1 or 3x3, not {k}x{k2}")
    if C != cg * groups or out_c % groups:
        raise ValueError(
            f"weight {list(weight.shape)} with groups={groups} does not fit {C} input channels"
        )
    f = x.feats
    if k == 1:
        if stride != 1:
            raise ValueError("a 1x1 sparse conv has stride 1")
        if groups == 1:
            y = f @ weight.reshape(out_c, C).t()
        else:
            y = torch.einsum("ngc,goc->ngo", f.reshape(-1, groups, cg),
                             weight.reshape(groups, out_c // groups, cg)).reshape(-1, out_c)
        out = x.with_feats(y)
    else:
        if stride == 1:
            out = None
        elif stride == 2:
            oc, oshape, _ = downsample(x, k)
            out = SparseTensor(oc, f.new_zeros(oc.shape[0], 0), oshape, x.batch_size, check=False)
        else:
            raise ValueError(f"stride must be 1 or 2, not {stride!r}")
        rb = rulebook(x, stride=stride)
        if groups == 1:
            y = _full_conv3(f, weight, rb, x, stride)
        elif cg == 1 and out_c == groups:
            y = _depthwise_conv3(f, weight, rb)
        else:
            cols = _padded(f)[_nbr(x, stride).t()].reshape(-1, 9, groups, cg)  # [M, 9, g, cg]
            w = weight.reshape(groups, out_c // groups, cg, 9)
            y = torch.einsum("mtgc,goct->mgo", cols, w).reshape(-1, out_c)
        out = x.with_feats(y) if out is None else out.with_feats(y)
    if bias is not None:
        out = out.with_feats(out.feats + bias.to(out.feats.dtype))
    return out


#: Depthwise convs with at most this many (pair x channel) products run as one flat gather,
#: multiply and scatter; larger ones tap by tap (fewer temporaries).
FLAT_DEPTHWISE_MAX = 1 << 17
#: Full convs use the rulebook (active pairs only) while the active pairs are at most this share
#: of the ``9 * N_out`` taps; denser maps gather every tap from the zero-padded features.
RULEBOOK_MAX_SHARE = 0.5


def _padded(f):
    # Row N (a zero row) stands for an inactive or outside neighbour.
    return torch.cat([f, f.new_zeros(1, f.shape[1])])


def _nbr(x, stride):
    return submanifold_map(x, 3) if stride == 1 else downsample(x, 3)[2]


def _full_conv3(f, weight, rb, x, stride):
    out_c, C = weight.shape[0], weight.shape[1]
    wt = weight.permute(2, 3, 1, 0).reshape(9, C, out_c)
    if rb.pairs > RULEBOOK_MAX_SHARE * 9 * rb.n_out:
        # Dense enough that most taps are active: gather every tap, one addmm per tap.
        fp = _padded(f)
        nbr = _nbr(x, stride)
        y = fp.index_select(0, nbr[0]) @ wt[0]
        for t in range(1, 9):
            y.addmm_(fp.index_select(0, nbr[t]), wt[t])
        return y
    y = f @ wt[4] if rb.identity_centre else f.new_zeros(rb.n_out, out_c)
    for t, i, o in rb.taps:
        y.index_add_(0, o, f.index_select(0, i) @ wt[t])
    return y


def _depthwise_conv3(f, weight, rb):
    C = f.shape[1]
    w9 = weight.reshape(C, 9).t().contiguous()  # [tap, C]
    if rb.pairs * C <= FLAT_DEPTHWISE_MAX:
        src = f.index_select(0, rb.in_rows) * w9.index_select(0, rb.tap)
        return f.new_zeros(rb.n_out, C).index_add_(0, rb.out_rows, src)
    y = f * w9[4] if rb.identity_centre else f.new_zeros(rb.n_out, C)
    for t, i, o in rb.taps:
        y.index_add_(0, o, f.index_select(0, i) * w9[t])
    return y


def sparse_add(a: SparseTensor, b: SparseTensor) -> SparseTensor:
    """Elementwise sum of two maps with identical sites (float reference of the residual add)."""
    _check_same(a, b)
    return a.with_feats(a.feats + b.feats)


def _check_same(a, b):
    _check_sparse(a, "residual add")
    _check_sparse(b, "residual add")
    if not a.same_sites(b):
        raise ValueError("residual add needs two maps with identical active sites")
    if a.num_channels != b.num_channels:
        raise ValueError(f"residual add of {a.num_channels} and {b.num_channels} channels")


def _sum_count(x: SparseTensor):
    total = x.feats.new_zeros(x.batch_size, x.num_channels).index_add_(0, x.coords[:, 0], x.feats)
    return total, x.sites_per_frame()[:, None]


def sparse_global_avg_pool(x: SparseTensor) -> torch.Tensor:
    """``[B, C]`` mean over each frame's active sites (0 for an empty frame)."""
    _check_sparse(x, "global average pool")
    total, count = _sum_count(x)
    return total / count.clamp(min=1).to(total.dtype)


class SparseConv2d(QLayer):
    """Sparse k x k conv (k in {1, 3}), stride 1 (submanifold) or 2 (sparse, 3x3), any groups.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
        1 or 3; the weight is ``[out, in/groups, k, k]`` exactly as ``nn.Conv2d``'s.
    groups : int
        1 for a full conv, ``in_channels`` for depthwise.
    bias : bool
    stride : int
        1 (outputs at the input's active sites) or 2 (see :mod:`models.sparse.neighbours`).
    relu, bn, requant_out
        As :class:`models.quant.layers.QLayer`.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, groups=1, bias=True, *,
                 stride=1, relu=False, bn=False, requant_out=True):
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("groups", groups)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        if kernel_size not in (1, 3):
            raise ValueError(f"kernel_size must be 1 or 3, not {kernel_size!r}")
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, not {stride!r}")
        if stride == 2 and kernel_size != 3:
            raise ValueError("a stride-2 sparse conv must have kernel_size 3")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide {in_channels} and {out_channels}")
        super().__init__((out_channels, in_channels // groups, kernel_size, kernel_size),
                         bias=bias, relu=relu, bn=bn, requant_out=requant_out)
        self.in_channels = in_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.groups = groups

    def _op(self, x, weight, bias):
        return sparse_conv(x, weight, bias, stride=self.stride, groups=self.groups)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, groups={self.groups}, relu={self.relu}")


class SubmanifoldConv2d(SparseConv2d):
    """Stride-1 submanifold conv: outputs exactly at the input's active sites.

    ``SubmanifoldConv2d(in_channels, out_channels, kernel_size=3, groups=1, bias=True)``; see
    :class:`SparseConv2d` for the keyword options.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, groups=1, bias=True, **kw):
        if kw.get("stride", 1) != 1:
            raise ValueError("SubmanifoldConv2d has stride 1; use SparseConv2d(stride=2)")
        kw.pop("stride", None)
        super().__init__(in_channels, out_channels, kernel_size, groups, bias, **kw)


class SparseAdd(QAdd):
    """Residual add of two sparse maps with identical sites (all three modes)."""

    def forward(self, a, b):
        _check_same(a, b)
        return super().forward(a, b)


class SparseGlobalAvgPool(QGlobalAvgPool):
    """Global average pool over each frame's active sites, ``[B, C]`` out (0 for an empty frame)."""

    def _sum_count(self, x):
        _check_sparse(x, "global average pool")
        return _sum_count(x)


class SparseReLU(nn.Module):
    """ReLU of the features (sites unchanged)."""

    def forward(self, x):
        _check_sparse(x, "SparseReLU")
        return x.with_feats(F.relu(x.feats))


class SparseInput(QInput):
    """Input quantizer of a sparse network (same as :class:`models.quant.layers.QInput`)."""
