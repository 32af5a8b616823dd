"""Pointwise (1x1) convolution, stride 1 or 2 (a ResNet projection shortcut: output site
``(oy, ox)`` is input site ``(2 oy, 2 ox)``), then requantization.

Hardware: :class:`hw.conv1x1.Conv1x1` and a requantizer.
"""

from __future__ import annotations

from contract.cycles import conv1x1_cycles

from . import _price
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
        if layer.stride not in (1, 2):
            raise ValueError(f"unsupported stride {layer.stride} (1x1 takes 1 or 2)")
        if layer.groups != 1:
            raise ValueError("grouped 1x1 convolutions are not supported")
        _, h, w = layer.in_shape
        s = layer.stride
        if tuple(layer.out_shape[1:]) != (-(-h // s), -(-w // s)):
            raise ValueError(f"a 1x1 stride-{s} conv maps {h}x{w} to {-(-h // s)}x{-(-w // s)}, "
                             f"not {layer.out_shape[1]}x{layer.out_shape[2]}")

    def site_count(self, layer, stats) -> float:
        return sites(stats)

    def cycles(self, layer, choice, stats, *, lanes=None) -> float:
        # stride 2: the input side also takes the dropped sites' beats
        return conv1x1_cycles(active_sites=sites(stats), c_in=layer.in_shape[0],
                              c_out=layer.out_shape[0], lanes=choice.lanes, pe=choice.pe,
                              input_sites=(sites(stats, "active_in_mean") if layer.stride == 2
                                           else None))

    def input_fifo_sites(self, layer) -> int:
        # stride 2: the even rows carry every kept site (MACs, slow) and the odd rows none (one
        # cycle a beat): an input row in front of the block lets it compute the even row's sites
        # while the odd row streams past, so a fork it shares with the long branch of a residual
        # block (a projection shortcut) is not held up for the even row
        return layer.in_shape[2] + 1 if layer.stride == 2 else 0

    def price(self, layer, choice, model) -> dict:
        res = super().price(layer, choice, model)
        sites = self.input_fifo_sites(layer)
        if sites:
            beats = layer.in_shape[0] // choice.lanes
            # the edge's hw.fifo storage (no_rw_check: :func:`_price.libmap_choice`)
            lut, bram = _price.memory(model, _price.stream_bits(choice.lanes,
                                                                _price.coord_bits(layer.in_shape),
                                                                layer.in_bits),
                                      sites * beats, no_rw_check=True)
            res["lut"] += lut
            res["bram18"] += bram
        return res

    def block_args(self, node, choice, shape, *, abits: int, dense: bool = False) -> dict:
        return dict(super().block_args(node, choice, shape, abits=abits, dense=dense),
                    stride=node.stride)
