"""Fully connected layer on the one site of a pooled map (the classifier), with or without
requantization (raw int32 logits when ``requant`` is False).

Hardware: :class:`hw.conv1x1.Conv1x1` on one site (+ a requantizer unless ``requant`` is False).
"""

from __future__ import annotations

from .pointwise import PointwiseOp
from .registry import register


@register
class Linear(PointwiseOp):
    name = "linear"
    node_op = "linear"
    resource_key = "linear"
    single_site = True

    def site_count(self, layer, stats) -> float:
        return 1

    #: a linear layer is most often the classifier, whose raw logits leave unrequantized; a
    #: hidden one (an MLP's, LeNet-5's fc1 and fc2) says ``requant`` in its workload
    default_requant = False

    def golden(self, node, inputs):
        import torch

        from models import reference as ref

        (xc, xf), = inputs
        acc = ref.linear(xf, torch.from_numpy(node.weight), torch.from_numpy(node.bias))
        if node.requant:
            acc = ref.requant(acc, torch.from_numpy(node.M), node.S, node.lo, node.hi,
                              R=None if node.R is None else torch.from_numpy(node.R))
        return xc, acc
