"""Flatten a whole map into one vector: the input of a dense head (``nn.Flatten`` + ``Linear``).

The integer graph's flatten is site-major: the value of channel ``c`` at site ``(y, x)`` of a
``C x H x W`` map is element ``(y * W + x) * C + c``, the order in which the stream carries it, so
the hardware needs no buffer: it clears the coordinates and the next linear layer (the 1x1 unit on
one site) reads ``H * W * C`` values. PyTorch's flatten is channel-major (``c * H * W + y * W +
x``); :class:`QFlatten` computes PyTorch's, and the export permutes the next linear layer's weight
columns to the site-major order (:meth:`QFlatten.site_major`), so the two compute the same
function. Absent sites of a sparse frame are zeros (the flatten of the zero-filled map). The output
keeps its input's scale and range.

Hardware: :class:`hw.flatten.Flatten` at its producer's lanes.
"""

from __future__ import annotations

import numpy as np
import torch

from contract.cycles import flatten_cycles
from models.quant.layers import QModule

from .base import StageOp
from .registry import register

__all__ = ["Flatten", "QFlatten", "site_major_columns"]


def site_major_columns(shape) -> np.ndarray:
    """``perm`` such that ``w[:, perm]`` reorders a linear layer's input columns from PyTorch's
    channel-major flatten of a ``(C, H, W)`` map to the stream's site-major one."""
    c, h, w = shape
    return np.arange(c * h * w).reshape(c, h * w).T.reshape(-1)


class QFlatten(QModule):
    """PyTorch's flatten of a dense ``[B, C, H, W]`` map (the same in every mode)."""

    keeps_scale = True

    def forward(self, x):
        if not isinstance(x, torch.Tensor):
            raise TypeError("a flatten (dense head) takes dense maps only")
        return x.flatten(1)

    def qnode_fields(self, **common) -> dict:
        c, h, w = common["in_shape"]
        common["out_shape"] = (c * h * w, 1, 1)
        return dict(op="flatten", requant=False, in_scale=common["out_scale"], **common)

    @staticmethod
    def site_major(weight: np.ndarray, in_shape) -> np.ndarray:
        """The weight of the linear layer after the flatten, columns in site-major order."""
        return np.asarray(weight)[:, site_major_columns(in_shape)]


@register
class Flatten(StageOp):
    name = "flatten"
    node_op = "flatten"
    block = "hw.flatten:Flatten"
    keeps_range = True

    def check_geometry(self, layer) -> None:
        c, h, w = layer.in_shape
        if tuple(layer.out_shape) != (c * h * w, 1, 1):
            raise ValueError(f"a flatten maps {tuple(layer.in_shape)} to {(c * h * w, 1, 1)}, "
                             f"not {tuple(layer.out_shape)}")

    def golden(self, node, inputs):
        (xc, xf), = inputs
        c, h, w = node.in_shape
        dense = torch.zeros((h * w, c), dtype=torch.int64)
        if len(xc):
            dense[xc[:, 0] * w + xc[:, 1]] = xf.long()
        return torch.zeros((1, 2), dtype=torch.int64), dense.reshape(1, -1)

    def cycles(self, layer, choice, stats, *, lanes=None) -> float:
        c, h, w = layer.in_shape
        return flatten_cycles(height=h, width=w, channels=c, lanes=self._lanes(choice, lanes))

    def hold(self, layer, *, beats: int = 1, slots: int | None = None) -> int:
        raise ValueError("a flatten cannot sit inside a residual branch")

    def stage_price(self, stage, *, lanes: int, coord_bits: int, model) -> dict:
        """Its input FIFO; the block itself is a site counter and a multiplexer."""
        return self.input_fifo_price(stage, lanes=lanes, model=model)
