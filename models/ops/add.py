"""Residual add of two maps with identical sites, both rescaled and summed in one rounding step;
and the sizing of the skip FIFO that residual blocks need.

Hardware: :class:`hw.residual.ResidualAdd` at its first producer's lanes.

Skip FIFO
---------
A residual block forks one stream into a long branch (convs) and a short one (the skip) that meet
at the add. The fork passes a beat only when both branches accept it, and the add consumes only
when both branches offer the same site. While the long branch holds sites it has not yet turned
into output, the skip branch must hold the same sites, or the fork stalls the long branch and,
since a 3x3 layer cannot emit a row until the next row has arrived, the network deadlocks. So the
skip FIFO holds the most sites the long branch can have in flight (:func:`branch_holds`: each
stage's :meth:`~models.ops.base.Op.hold` plus each edge's FIFO and width converter), minus what the
short branch holds, plus one site of slack.
"""

from __future__ import annotations

import math

from contract.constants import FIFO_SLICE_BEATS, RESIDUAL_LATENCY, act_width
from contract.cycles import stream_cycles

from . import _price
from .base import StageOp, sites
from .registry import GraphError, register

__all__ = ["Add", "branch_holds", "fifo_hold", "EDGE_HOLD_ESTIMATE"]

#: Sites an inter-stage FIFO holds when the stream's lanes are not known yet (the DSE's estimate:
#: a FIFO of :data:`contract.constants.FIFO_DEPTH` beats, its read register and its output
#: register slice, at a site per two to four beats: 5 to 3 sites).
EDGE_HOLD_ESTIMATE = 4


def fifo_hold(*, depth: int, beats: int) -> int:
    """Sites a FIFO of ``depth`` beats (and its read register and output register slice) holds
    on a stream of ``beats`` beats per site."""
    return math.ceil((depth + FIFO_SLICE_BEATS) / beats) + 1


def branch_holds(qgraph, add, *, node_hold, edge_hold) -> list:
    """Most sites in flight from the fork of ``add``'s branches to each of its inputs.

    ``node_hold(node)`` is a stage's hold, ``edge_hold(src_name, node)`` an edge's. One entry per
    input of ``add``; None for an input no path from the fork reaches.
    """
    nodes = list(qgraph.nodes)
    order = [n.name for n in nodes]
    fork = qgraph.fork_of(add)
    best = {fork: 0}
    for n in nodes[order.index(fork) + 1:order.index(add.name)]:
        reach = [best[s] + edge_hold(s, n) for s in n.inputs if s in best]
        if reach:
            best[n.name] = max(reach) + node_hold(n)
    return [best.get(src) for src in add.inputs]


@register
class Add(StageOp):
    name = "add"
    node_op = "add"
    in_ports = ("a", "b")
    block = "hw.residual:ResidualAdd"

    def check_node(self, node) -> None:
        if len(node.inputs) != 2:
            raise ValueError(f"add takes two inputs, not {len(node.inputs)}")

    def golden(self, node, inputs):
        import torch

        from models import reference as ref

        (xc, xf), (yc, yf) = inputs
        if not torch.equal(xc, yc):
            raise GraphError(f"node {node.name!r}: residual inputs have different sites")
        return xc, ref.add_requant(xf, yf, node.Ma, node.Mb, node.S, node.lo, node.hi)

    def out_bits(self, node, in_bits: list) -> int | None:
        # one width in and out (hw.residual): the widest input's or the clamp's
        return max(*in_bits, act_width(node.lo, node.hi))

    def cycles(self, layer, choice, stats, *, lanes=None) -> float:
        ln = lanes if choice is None else choice.lanes
        return stream_cycles(active_sites=sites(stats, "active_in_mean"),
                             channels=layer.in_shape[0], lanes=1 if ln is None else ln)

    def tail(self, layer, choice, stats, *, lanes=None) -> float:
        return float(RESIDUAL_LATENCY)

    def stage_price(self, stage, *, lanes: int, coord_bits: int, model) -> dict:
        st = model.stage or {}
        res = {"lut": 0.0, "ff": 0.0, "dsp": 0.0, "bram18": 0}
        if "add" not in st:
            return res
        # both inputs through a FIFO; the skip one holds the long branch's sites
        res = _price.join_fifos(model, stage, lanes=lanes, coord_bits=coord_bits)
        for r in ("lut", "ff", "dsp"):
            res[r] += st["add"][r] * lanes
        return res

    def block_args(self, node, choice, shape, *, abits: int, dense: bool = False) -> dict:
        return dict(shape=shape, Ma=int(node.Ma), Mb=int(node.Mb), S=int(node.S), lo=int(node.lo),
                    hi=int(node.hi))
