"""Depthwise 3x3 convolution (``groups == C``), then requantization.

Hardware: :class:`hw.dwconv.DWConv3x3` (line buffer + ``lanes x 9`` MACs, one output channel per
input lane, so ``pe == lanes``) and a requantizer.
"""

from __future__ import annotations

from contract.point import LayerChoice

from .base import largest_divisor, parallelism_options
from .registry import register
from .window import WindowOp


@register
class DWConv3x3(WindowOp):
    name = "dwconv3x3"
    block = "hw.dwconv:DWConv3x3"
    resource_key = "dwconv3x3"

    def matches(self, node) -> bool:
        return node.kernel == 3 and not getattr(node, "kernel_w", 0) and node.groups != 1

    def check_geometry(self, layer) -> None:
        super().check_geometry(layer)
        if layer.in_shape[0] != layer.out_shape[0]:
            raise ValueError("depthwise conv must keep its channel count")
        if layer.groups != layer.in_shape[0]:
            raise ValueError(f"3x3 conv with groups={layer.groups} (neither 1 nor "
                             f"C_in={layer.in_shape[0]})")

    def default_choice(self, layer, *, lanes: int, pe: int) -> LayerChoice:
        ln = largest_divisor(layer.in_shape[0], min(lanes, pe))
        return LayerChoice(layer.wformat, ln, ln)

    def check_choice(self, layer, choice) -> None:
        super().check_choice(layer, choice)
        if choice.pe != choice.lanes:
            raise ValueError(f"depthwise conv needs pe == lanes, not pe {choice.pe}, "
                             f"lanes {choice.lanes}")

    def parallel_pairs(self, layer, *, max_lanes, max_pe, count):
        return [(ln, ln) for ln in parallelism_options(layer.in_shape[0], max_par=max_lanes,
                                                       count=count)]

    def group_cycles(self, layer, choice) -> int:
        return 1

    def products(self, layer, choice, taps: int) -> int:
        return taps  # one output channel per lane: its own 9 taps

    def mac_count(self, layer, choice) -> int:
        return 9 * choice.lanes

    def block_args(self, node, choice, shape, *, abits: int) -> dict:
        return dict(shape=shape, stride=node.stride, fmt=choice.format, weight=node.weight,
                    bias=node.bias)
