"""Pointwise (1x1, stride 1) convolution, then requantization.

Hardware: :class:`hw.conv1x1.Conv1x1` and a requantizer.
"""

from __future__ import annotations

from .base import sites
from .pointwise import PointwiseOp
from .registry import register


@register
class Conv1x1(PointwiseOp):
    name = "conv1x1"
    node_op = "conv"
    resource_key = "conv1x1"

    def matches(self, node) -> bool:
        return node.kernel == 1

    def check_geometry(self, layer) -> None:
        if layer.stride != 1:
            raise ValueError(f"unsupported stride {layer.stride}")
        if layer.groups != 1:
            raise ValueError("grouped 1x1 convolutions are not supported")

    def site_count(self, layer, stats) -> float:
        return sites(stats)
