"""Average pooling 2x2, stride 2 (``nn.AvgPool2d(2)``, floor mode), on dense and sparse maps.

The integer output is ``round(sum / 4)`` over the window, rounding half to even (PyTorch's
``torch.round``, QONNX's ``ROUND``), at the input's scale: no requantization. On a sparse map an
absent site counts as zero (the average pool of the zero-filled map) and an output site is active
when any site of its window is (the max pool's rule); on a dense map this is ``avg_pool2d(x, 2)``
rounded onto the input's grid.

Hardware: :class:`hw.avgpool.AvgPool2x2` (the max pool's row buffer with running sums) at its
producer's lanes: cycles, hold, output FIFO and price as the max pool's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.quant.layers import QModule, ste

from .maxpool import MaxPool2x2, _pool
from .registry import register

__all__ = ["AvgPool2x2", "QAvgPool2d", "avgpool2"]


def avgpool2(coords, feats, *, height: int, width: int, channels: int | None = None):
    """The integer golden model on one frame (as :func:`models.ops.maxpool.maxpool2`)."""
    coords = torch.as_tensor(coords, dtype=torch.int64).reshape(-1, 2)
    feats = torch.as_tensor(feats)
    if channels is None:
        channels = feats.shape[-1] if feats.dim() == 2 else 0
    feats = feats.reshape(len(coords), channels).long()
    batch = torch.zeros((len(coords), 1), dtype=torch.int64)
    oc, _ = _pool(torch.cat([batch, coords], 1), feats, height, width)
    ho, wo = height // 2, width // 2
    keep = (coords[:, 0] < 2 * ho) & (coords[:, 1] < 2 * wo)
    c, f = coords[keep], feats[keep]
    sums = torch.zeros((ho * wo, channels), dtype=torch.int64)
    sums.index_add_(0, (c[:, 0] // 2) * wo + c[:, 1] // 2, f)
    out = sums[oc[:, 1] * wo + oc[:, 2]]
    return oc[:, 1:], torch.round(out.double() / 4).long()


class QAvgPool2d(QModule):
    """The quantized layer: ``avg_pool2d`` in float mode; ``round(sum / 4)`` (half to even) on
    the input's integer grid in the integer and fake-quant modes. Dense maps only (a sparse
    network pools with max or global average)."""

    keeps_scale = True

    def forward(self, x):
        if not isinstance(x, torch.Tensor):
            raise TypeError("the 2x2 average pool takes dense maps")
        if self.mode == "float":
            return F.avg_pool2d(x, 2)
        if self.mode == "int":
            return torch.round(F.avg_pool2d(x.double(), 2, divisor_override=1) / 4).to(x.dtype)
        s = self.out_scale.to(x.dtype)
        total = ste(torch.round, F.avg_pool2d(x, 2, divisor_override=1) / s)
        return ste(torch.round, total / 4) * s

    def qnode_fields(self, **common) -> dict:
        return dict(op="avgpool", kernel=2, stride=2, requant=False, in_scale=common["out_scale"],
                    **common)


@register
class AvgPool2x2(MaxPool2x2):
    name = "avgpool"
    node_op = "avgpool"
    block = "hw.avgpool:AvgPool2x2"
    calibration = ()
    #: the max pool's fitted logic (the same structure; the adders are not in its fit)
    fit_key = "maxpool"

    def golden(self, node, inputs):
        (xc, xf), = inputs
        _, h, w = node.in_shape
        return avgpool2(xc, xf, height=h, width=w, channels=node.in_shape[0])
