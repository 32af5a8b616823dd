"""2x2 average pooling, stride 2, of a token stream (``AvgPool2d(2)`` on the zero-filled map).

The max pool's structure (:mod:`hw.maxpool`: a row buffer flushed once a later output row or the
end of frame arrives, the same output sites and cycles) with running *sums* (two more bits) instead
of maxima; a flushed sum leaves as ``round(sum / 4)``, rounding half to even (PyTorch's and
QONNX's ``ROUND``): ``q = sum >> 2`` plus one when the remainder is 3, or 2 with ``q`` odd. An
absent site of a sparse window counts as zero (the average of the zero-filled map, the convention
of every conv here). No requantization: the output keeps the input's scale and range.
"""

from __future__ import annotations

from amaranth.hdl import Mux

from contract.cycles import maxpool2_cycles as cycles_per_frame

from .maxpool import LATENCY, MaxPool2x2

__all__ = ["AvgPool2x2", "LATENCY", "cycles_per_frame"]


class AvgPool2x2(MaxPool2x2):
    """2x2 / stride 2 average pooling (half to even) of a token stream; see the module."""

    def _store_width(self, dw: int) -> int:
        return dw + 2

    def _combine(self, fresh, x, kept, width):
        return Mux(fresh, x, kept + x)

    def _output(self, kept):
        q = kept >> 2
        rem = kept[:2]
        up = (rem == 3) | ((rem == 2) & q[0])
        return q + up
