"""The network input: the quantized frame as it arrives (a FIFO at the top-level port)."""

from __future__ import annotations

from .base import Op
from .registry import register


@register
class Input(Op):
    name = "input"
    node_op = "input"
    in_ports = ()

    def golden(self, node, inputs):
        raise AssertionError("the input node has no golden function; the frame is its output")
