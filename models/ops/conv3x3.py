"""Full k x k convolution, k in {3, 5, 7} ("same", stride 1 submanifold or stride 2), then
requantization. (A conv with zero padding is this conv followed by a ``crop``.)

Hardware: :class:`hw.conv3x3.Conv3x3` (line buffer + ``pe x lanes x k*k`` MACs) and a
requantizer.
"""

from __future__ import annotations

from contract.constants import WINDOW_KERNELS

from .base import kernel_hw
from .registry import register
from .window import WindowOp


@register
class Conv3x3(WindowOp):
    name = "conv3x3"
    block = "hw.conv3x3:Conv3x3"
    resource_key = "conv3x3"
    burst = True

    def matches(self, node) -> bool:
        kh, kw = kernel_hw(node)
        return kh in WINDOW_KERNELS and kw in WINDOW_KERNELS and node.groups == 1

    def block_args(self, node, choice, shape, *, abits: int, dense: bool = False) -> dict:
        return dict(super().block_args(node, choice, shape, abits=abits, dense=dense),
                    stride=node.stride, kernel=kernel_hw(node), dense=dense,
                    kfold=choice.kfold)
