"""Global average pooling over the active sites: ``floor((2*sum + n) / (2n))``, 0 for an empty
frame; one token at (0, 0). The output keeps the input's scale (no requantization).

Hardware: :class:`hw.pool_fc.GlobalAvgPool` at its producer's lanes.
"""

from __future__ import annotations

from contract.constants import ACT_BITS
from contract.cycles import div_bits, gap_cycles, pool_stall, sum_bits

from .base import StageOp, sites
from .registry import register


@register
class GlobalAvgPool(StageOp):
    name = "gap"
    node_op = "gap"
    block = "hw.pool_fc:GlobalAvgPool"
    keeps_range = True
    #: Yosys calibration of the fitted terms (``benchmarks/fit_resources.py --stage-ops``): maps
    #: of 3x3 to 30x40 sites, 8-256 channels at 1-32 lanes (a ring of 1-32 beats).
    calibration = tuple({"c": c, "h": h, "w": w, "lanes": ln}
                        for c, h, w, ln in ((8, 8, 8, 1), (16, 8, 8, 4), (64, 8, 8, 8),
                                            (256, 3, 3, 8), (64, 16, 16, 16), (32, 4, 4, 32),
                                            (128, 7, 7, 4), (16, 30, 40, 2)))

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

    def input_fifo_sites(self, layer) -> int:
        # The pool takes no input while it divides (B * (div_bits + 3) + 1 cycles after a frame's
        # end); a FIFO in front of it that holds that many beats lets its producer go on with the
        # next frame meanwhile. With the default 4 beats the stall went back up the pipeline to
        # the bottleneck stage: digits at 283 cycles a frame for a 259-cycle design, digits_lenet
        # 435 for 385. Sized for streams of up to 9-bit lanes (u8 imports); a site is at least
        # one beat, so div_bits + 3 sites hold the division's beats at any lanes.
        return _division_sites(layer.in_shape)

    def producer_stall(self, producer_cycles, out_beats, stage, *, lanes, fifo_depth) -> float:
        c, h, w = stage["in_shape"]
        depth = max(fifo_depth, _division_sites(stage["in_shape"]) * (c // lanes))
        return pool_stall(producer_cycles, out_beats, channels=c, lanes=lanes, height=h, width=w,
                          fifo_depth=depth)

    def tail(self, layer, choice, stats, *, lanes=None) -> float:
        c, h, w = layer.in_shape
        b = c // self._lanes(choice, lanes)
        return b * (div_bits(height=h, width=w) + 2) + 2.0

    def hold(self, layer, *, beats: int = 1, slots: int | None = None) -> int:
        raise ValueError("a global pool cannot sit inside a residual branch")

    def price_features(self, stage, *, lanes: int, model=None) -> dict:
        # per lane: the accumulating adder (sum bits) and the restoring divider (its dividend's
        # bits); per channel: its sum in the ring of beats (registers, no multiplexers). A fit
        # per channel alone (one network's pool, 64 channels at 8 lanes) priced MobileNet's
        # 256-channel pool at 2,916 LUT6 where synth_xilinx used 194.
        c, h, w = stage["in_shape"]
        bits = stage.get("bits", ACT_BITS)
        sw = sum_bits(height=h, width=w, data_width=bits)
        dw = div_bits(height=h, width=w, data_width=bits)
        return {"base": 1.0, "per_lane_bit": float(lanes * (sw + dw)),
                "per_ring_bit": float(c * sw)}

    def stage_price(self, stage, *, lanes: int, coord_bits: int, model) -> dict:
        from . import _price

        res = {"lut": 0.0, "ff": 0.0, "dsp": 0.0, "bram18": 0}
        if "gap" not in (model.stage or {}):
            return res
        fit = self.fitted(stage, lanes=lanes, model=model)
        for r in ("lut", "ff"):
            res[r] += fit[r]
        bits = _price.stream_bits(lanes, coord_bits, stage.get("bits", ACT_BITS))
        f = _price.fifo(model, bits)
        res["lut"] += f["lut"]
        res["ff"] += f["ff"]
        # the input FIFO's storage, as deep as input_fifo_sites (its logic is the term above)
        beats = _division_sites(stage["in_shape"]) * (stage["in_shape"][0] // lanes)
        lut_m, bram_m = _price.memory(model, bits, beats)
        res["lut"] += lut_m
        res["bram18"] += bram_m
        return res


def _division_sites(in_shape) -> int:
    """Sites of the FIFO in front of a pool on a ``(C, H, W)`` map that hold its division
    (:meth:`GlobalAvgPool.input_fifo_sites`)."""
    _, h, w = in_shape
    return div_bits(height=h, width=w, data_width=ACT_BITS + 1) + 3
