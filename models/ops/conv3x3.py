"""Full k x k convolution, k in {3, 5, 7} ("same", stride 1 submanifold or stride 2), then
requantization. (A conv with zero padding is this conv followed by a ``crop``.)

Hardware: :class:`hw.conv3x3.Conv3x3` (line buffer + ``pe x lanes x k*k`` MACs) and a
requantizer.
"""

from __future__ import annotations

import math

from contract.constants import BEAT_BUFFER_RAM_BEATS, WINDOW_KERNELS

from . import _price
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

    def beat_ram(self, layer, choice) -> bool:
        """Whether the block keeps a site's window beats in LUT RAM (``hw.conv3x3``: ``B >=``
        :data:`contract.constants.BEAT_BUFFER_RAM_BEATS` beats that later output groups or row
        steps re-read)."""
        nb = math.ceil(layer.in_shape[0] / choice.lanes)
        return nb >= BEAT_BUFFER_RAM_BEATS and (layer.out_shape[0] > choice.pe
                                                  or choice.kfold > 1)

    def held_beats(self, layer, choice) -> int:
        return 1 if self.beat_ram(layer, choice) else super().held_beats(layer, choice)

    def ram_beat_bits(self, layer, choice) -> int:
        """``window_bits x ceil(log2 B)``: what grows with the beats in LUT RAM is the depth of
        its address decode and read mux, not a mux input per beat (blocks of 16 and 64 beats:
        a term per beat priced the 64-beat one 58 % over Yosys)."""
        if not self.beat_ram(layer, choice):
            return 0
        nb = math.ceil(layer.in_shape[0] / choice.lanes)
        return self.window_bits(layer, choice) * (nb - 1).bit_length()

    def weight_depth(self, layer, choice) -> int:
        """``C_out / pe`` groups of ``B`` beats of ``kfold`` row steps, each counter at a
        power-of-two stride of the address (``hw.conv3x3``): a kfold-3 conv's ROM has 4 words a
        beat, not 3 (ResNet-8's int8 stage2_conv2, 384 bits x 256 words: 11 RAMB18 in Yosys,
        priced in LUTs at the 192 words it uses)."""
        nb = math.ceil(layer.in_shape[0] / choice.lanes)
        return (layer.out_shape[0] // choice.pe) << ((nb - 1).bit_length()
                                                     + (choice.kfold - 1).bit_length())

    def beat_buffer_luts(self, layer, choice, model) -> int:
        """One LUT RAM per row step, ``B`` words of its share of the window's bits."""
        if not self.beat_ram(layer, choice):
            return 0
        nb = math.ceil(layer.in_shape[0] / choice.lanes)
        return choice.kfold * _price.lutram_luts(
            model, self.window_bits(layer, choice) // choice.kfold, nb, logic=True)

    def block_args(self, node, choice, shape, *, abits: int, dense: bool = False) -> dict:
        return dict(super().block_args(node, choice, shape, abits=abits, dense=dense),
                    stride=node.stride, kernel=kernel_hw(node), dense=dense,
                    kfold=choice.kfold)
