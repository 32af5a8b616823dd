"""Shared by the ops the 1x1 unit (a ``pe x lanes`` matrix-vector unit) computes: 1x1, linear."""

from __future__ import annotations

from contract.constants import ACT_BITS, REQUANT_LATENCY, SKID_BEATS, mac_latency, requant_sites
from contract.cycles import conv1x1_cycles

from .base import ComputeOp

__all__ = ["PointwiseOp"]


class PointwiseOp(ComputeOp):
    block = "hw.conv1x1:Conv1x1"

    def site_count(self, layer, stats) -> float:
        raise NotImplementedError

    def cycles(self, layer, choice, stats, *, lanes=None) -> float:
        return conv1x1_cycles(active_sites=self.site_count(layer, stats), c_in=layer.in_shape[0],
                              c_out=layer.out_shape[0], lanes=choice.lanes, pe=choice.pe)

    def pipeline(self, layer, choice) -> int:
        # the MAC unit (issue, products of its lanes, tree, accumulator) and the requantizer
        rq = REQUANT_LATENCY if self.requantized(layer) else 0
        return mac_latency(choice.format, choice.lanes, choice.datapath) + rq

    def tail(self, layer, choice, stats, *, lanes=None) -> float:
        g = layer.out_shape[0] // choice.pe
        return self.beats(layer, choice) * g + self.pipeline(layer, choice)

    def hold(self, layer, *, beats: int = 1, slots: int | None = None) -> int:
        # two input banks, the output register, the requantizer, the skid buffer before it
        return 3 + requant_sites(beats) + SKID_BEATS

    def block_memories(self, layer, choice) -> list[tuple[int, int, bool]]:
        # the bias ROM, and the input buffer: two sites of C_in / lanes beats (hw.conv1x1; a
        # linear layer's too: LeNet-5's fc1 holds 2 x 50 words of 8 x 8 bits in 2 EBRs)
        in_bits = getattr(layer, "in_bits", ACT_BITS)
        beats = -(-layer.in_shape[0] // choice.lanes)
        return [*super().block_memories(layer, choice),
                (choice.lanes * in_bits, 2 * beats, False)]

    def block_args(self, node, choice, shape, *, abits: int, dense: bool = False) -> dict:
        args = super().block_args(node, choice, shape, abits=abits, dense=dense)
        return dict(args, weight=node.weight.reshape(node.out_shape[0], -1))
