"""Global average pooling over the active sites: ``floor((2*sum + n) / (2n))``, 0 for an empty
frame; one token at (0, 0). The output keeps the input's scale (no requantization).

Hardware: :class:`hw.pool_fc.GlobalAvgPool` at its producer's lanes.
"""

from __future__ import annotations

from contract.constants import ACT_BITS
from contract.cycles import div_bits, gap_cycles, pool_stall

from .base import StageOp, sites
from .registry import register


@register
class GlobalAvgPool(StageOp):
    name = "gap"
    node_op = "gap"
    block = "hw.pool_fc:GlobalAvgPool"
    keeps_range = True

    def golden(self, node, inputs):
        import torch

        from models import reference as ref

        (xc, xf), = inputs
        total = xf.sum(0) if len(xf) else torch.zeros(node.in_shape[0], dtype=torch.int64)
        pooled = ref.avg_round(total, len(xc)).reshape(1, -1)
        return torch.zeros((1, 2), dtype=torch.int64), pooled

    def cycles(self, layer, choice, stats, *, lanes=None) -> float:
        c, h, w = layer.in_shape
        return gap_cycles(active_sites=sites(stats, "active_in_mean"), channels=c,
                          lanes=self._lanes(choice, lanes), height=h, width=w)

    def producer_stall(self, producer_cycles, out_beats, stage, *, lanes, fifo_depth) -> float:
        c, h, w = stage["in_shape"]
        return pool_stall(producer_cycles, out_beats, channels=c, lanes=lanes, height=h, width=w,
                          fifo_depth=fifo_depth)

    def tail(self, layer, choice, stats, *, lanes=None) -> float:
        c, h, w = layer.in_shape
        b = c // self._lanes(choice, lanes)
        return b * (div_bits(height=h, width=w) + 2) + 2.0

    def hold(self, layer, *, beats: int = 1, slots: int | None = None) -> int:
        raise ValueError("a global pool cannot sit inside a residual branch")

    def stage_price(self, stage, *, lanes: int, coord_bits: int, model) -> dict:
        from . import _price

        st = model.stage or {}
        res = {"lut": 0.0, "ff": 0.0, "dsp": 0.0, "bram18": 0}
        if "gap" not in st:
            return res
        for r in ("lut", "ff"):
            res[r] += (st["gap"][r]["per_channel"] * stage["in_shape"][0]
                       + st["gap"][r]["per_lane"] * lanes)
        f = _price.fifo(model, _price.stream_bits(lanes, coord_bits,
                                                  stage.get("bits", ACT_BITS)))
        res["lut"] += f["lut"]
        res["ff"] += f["ff"]
        return res
