"""Depthwise 3x3 convolution (``groups == C``), then requantization.

Hardware: :class:`hw.dwconv.DWConv3x3` (line buffer + ``pe x 9`` MACs, one output channel per input
channel: each window beat of ``lanes`` channels takes ``lanes / pe`` cycles, so ``pe`` divides
``lanes``) and a requantizer. At stride 2 the writer takes four input sites per output site, and
``lanes = 4 pe`` keeps the multipliers busy. ``kfold = 3`` spreads the window over its kernel
rows (``pe x 3`` MACs, ``3 lanes / pe`` cycles a beat): a layer far off the bottleneck (MobileNet's
late 4 x 4 and 2 x 2 maps) then needs 3 multipliers, not 9; ``kfold = 9`` over its taps (``pe``
MACs, ``9 lanes / pe`` cycles a beat): 1 multiplier (SEE-D's late blocks, whose depthwise
layers do a few percent of the network's work).
"""

from __future__ import annotations

import math

from contract.constants import DW_KFOLDS
from contract.point import LayerChoice
from models.reference import ACC_BITS

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

    def weight_depth(self, layer, choice) -> int:
        """One word per (window beat, sub-step, kernel-row step) at power-of-two strides
        (``hw.dwconv``), the weight ROM's and the bias ROM's."""
        nb = math.ceil(layer.in_shape[0] / choice.lanes)
        ng = choice.lanes // choice.pe
        return nb << ((ng - 1).bit_length() + (choice.kfold - 1).bit_length())

    def block_memories(self, layer, choice) -> list[tuple[int, int, bool]]:
        # the bias ROM beside the weights: one word a sub-step, not one a step of a fold
        depth = self.weight_depth(layer, choice) >> (choice.kfold - 1).bit_length()
        return [(choice.pe * ACC_BITS, depth, True)]

    def default_choice(self, layer, *, lanes: int, pe: int) -> LayerChoice:
        ln = largest_divisor(layer.in_shape[0], min(lanes, pe))
        return LayerChoice(layer.wformat, ln, ln)

    def check_choice(self, layer, choice) -> None:
        super().check_choice(layer, choice)
        if choice.lanes % choice.pe:
            raise ValueError(f"depthwise conv needs pe dividing lanes, not pe {choice.pe}, "
                             f"lanes {choice.lanes}")
        if choice.datapath == "dsp2":
            raise ValueError("a depthwise conv has no two output channels that share an "
                             "activation: no dsp2 datapath")

    def parallel_pairs(self, layer, *, max_lanes, max_pe, count):
        opts = parallelism_options(layer.in_shape[0], max_par=max_lanes, count=count)
        return [(ln, p) for ln in opts for p in opts if ln % p == 0 and p <= max_pe]

    def group_cycles(self, layer, choice) -> int:
        return choice.lanes // choice.pe * choice.kfold

    def products(self, layer, choice, taps: int) -> int:
        return taps // choice.kfold  # one output channel per lane: its own taps (a row folded)

    def kfolds(self, layer) -> tuple[int, ...]:
        return DW_KFOLDS  # all 9 taps a cycle, one kernel row, or one tap

    def mac_count(self, layer, choice) -> int:
        return 9 * choice.pe // choice.kfold

    def fold_bits(self, layer, choice) -> int:
        """A folded depthwise block holds one window beat (each input beat is its own
        channels' window, not a slice of every output's) and steers its kernel rows to the
        ``pe x 9 / kfold`` multipliers: the window beat's bits, not a site's."""
        return self.window_bits(layer, choice)

    def fold_term(self, choice) -> str:
        """A fold over the 9 taps (a 16-entry tap mux, 16-step ROM words) has a term of its
        own; a fold over the kernel rows the shared one."""
        return "per_tap_fold_bit" if choice.kfold == 9 else "per_fold_bit"

    def block_args(self, node, choice, shape, *, abits: int, dense: bool = False) -> dict:
        return dict(shape=shape, stride=node.stride, fmt=choice.format, weight=node.weight,
                    bias=node.bias, pe=choice.pe, datapath=choice.datapath, dense=dense,
                    kfold=choice.kfold)
