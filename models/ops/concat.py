"""Channel concatenation (``torch.cat([a, b], 1)``) of two maps with identical sites, on one scale.

Both inputs must be on the same activation scale: the PyTorch front end makes the layers that
produce them share one (:meth:`models.qnet.QNet.calibrate`), a QONNX model must quantize them with
equal scales. The values pass unchanged; the output's range is the union of the inputs'.

Hardware: :class:`hw.concat.Concat` at a lanes value that divides both inputs' channels (the
composer converts widths to it).
"""

from __future__ import annotations

import math

import torch

from contract.cycles import concat_cycles
from models.quant.layers import QModule

from . import _price
from .base import StageOp, sites
from .registry import GraphError, register

__all__ = ["Concat", "QConcat", "concat_lanes"]


def concat_lanes(lanes_a: int, channels_a: int, channels_b: int) -> int:
    """The lanes the concat runs at: the largest divisor of ``lanes_a`` that divides both
    inputs' channels."""
    return math.gcd(lanes_a, math.gcd(channels_a, channels_b))


class QConcat(QModule):
    """The quantized layer: ``torch.cat`` on channels (dense or sparse maps with equal sites),
    the same in every mode; its inputs share one scale (``shares_scale``)."""

    keeps_scale = True
    shares_scale = True

    def forward(self, a, b):
        if isinstance(a, torch.Tensor):
            return torch.cat([a, b], 1)
        return a.with_feats(torch.cat([a.feats, b.feats], 1))

    def qnode_fields(self, **common) -> dict:
        from models.quant.formats import act_format

        lo, hi = act_format(self.abits).bounds(False)  # the union of the inputs' ranges
        return dict(op="concat", requant=False, in_scale=common["out_scale"], lo=lo, hi=hi,
                    **common)


@register
class Concat(StageOp):
    name = "concat"
    node_op = "concat"
    in_ports = ("a", "b")
    block = "hw.concat:Concat"

    def check_node(self, node) -> None:
        if len(node.inputs) != 2:
            raise ValueError(f"concat takes two inputs, not {len(node.inputs)}")
        if tuple(node.out_shape[1:]) != tuple(node.in_shape[1:]) or \
                node.out_shape[0] <= node.in_shape[0]:
            raise ValueError(f"concat maps {tuple(node.in_shape)} and another map of its sites "
                             f"to more channels, not {tuple(node.out_shape)}")

    def golden(self, node, inputs):
        (xc, xf), (yc, yf) = inputs
        if not torch.equal(xc, yc):
            raise GraphError(f"node {node.name!r}: concat inputs have different sites")
        return xc, torch.cat([xf, yf], 1)

    def cycles(self, layer, choice, stats, *, lanes=None) -> float:
        c_out = layer.out_shape[0]
        ln = math.gcd(self._lanes(choice, lanes), c_out, layer.in_shape[0])
        return concat_cycles(active_sites=sites(stats, "active_in_mean"), channels=c_out,
                             lanes=ln)

    def stage_price(self, stage, *, lanes: int, coord_bits: int, model) -> dict:
        """Both inputs' FIFOs (the skip one holds the other branch's sites)."""
        return _price.join_fifos(model, stage, lanes=lanes, coord_bits=coord_bits)

    def stage_lanes(self, node, lanes: int) -> int:
        return concat_lanes(lanes, node.in_shape[0], node.out_shape[0] - node.in_shape[0])

    def block_args(self, node, choice, shape, *, abits: int, dense: bool = False) -> dict:
        return dict(shape=shape, channels_b=node.out_shape[0] - node.in_shape[0])
