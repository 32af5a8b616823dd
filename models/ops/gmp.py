"""Global max pooling over the active sites: each channel's maximum, 0 for an empty frame; one
token at (0, 0). The output keeps the input's scale and range (max commutes with the monotone
requantizer, as for the 2x2 max pool). On a dense map it is ``amax`` over H, W
(``AdaptiveMaxPool2d(1)``); on a sparse one the maximum over the active sites only
(MinkowskiEngine's global max pooling), and an empty frame gives zeros (decision, as the
average pool's; the PyTorch module of a sparse network is the project's own, so no float module
disagrees).

Hardware: :class:`hw.gmp.GlobalMaxPool` at its producer's lanes.
"""

from __future__ import annotations

import torch

from contract.constants import ACT_BITS
from contract.cycles import gmp_cycles
from models.quant.layers import QModule

from . import _price
from .base import StageOp, sites
from .registry import register

__all__ = ["GlobalMaxPool", "QGlobalMaxPool", "global_max"]


def global_max(feats: torch.Tensor, channels: int) -> torch.Tensor:
    """The golden function on one frame's features ``[N, C]``: ``[1, C]`` maxima (0 if empty)."""
    if len(feats) == 0:
        return torch.zeros((1, channels), dtype=torch.int64)
    return feats.amax(0).reshape(1, -1)


class QGlobalMaxPool(QModule):
    """The quantized layer, the same function in every mode: dense ``[B, C, H, W] -> [B, C]``;
    sparse maps: the maximum over each frame's active sites (0 for an empty frame)."""

    keeps_scale = True

    def forward(self, x):
        if isinstance(x, torch.Tensor):
            return x.amax(dim=(2, 3))
        out = x.feats.new_zeros(x.batch_size, x.feats.shape[1])
        low = torch.finfo(out.dtype).min if out.is_floating_point() \
            else torch.iinfo(out.dtype).min
        top = out.fill_(low).scatter_reduce(
            0, x.coords[:, :1].expand(-1, x.feats.shape[1]), x.feats, reduce="amax",
            include_self=True)
        return torch.where(top == low, torch.zeros_like(top), top)

    def qnode_fields(self, **common) -> dict:
        return dict(op="gmp", requant=False, in_scale=common["out_scale"], **common)


@register
class GlobalMaxPool(StageOp):
    name = "gmp"
    node_op = "gmp"
    block = "hw.gmp:GlobalMaxPool"
    keeps_range = True

    def check_geometry(self, layer) -> None:
        c = layer.in_shape[0]
        if tuple(layer.out_shape) != (c, 1, 1):
            raise ValueError(f"a global max pool maps {tuple(layer.in_shape)} to {(c, 1, 1)}, "
                             f"not {tuple(layer.out_shape)}")

    def golden(self, node, inputs):
        (xc, xf), = inputs
        return torch.zeros((1, 2), dtype=torch.int64), global_max(xf, node.in_shape[0])

    def cycles(self, layer, choice, stats, *, lanes=None) -> float:
        return gmp_cycles(active_sites=sites(stats, "active_in_mean"),
                          channels=layer.in_shape[0], lanes=self._lanes(choice, lanes))

    def input_fifo_sites(self, layer) -> int:
        # the pool takes no input while its ring leaves (B + 1 cycles after the frame's end): a
        # FIFO of three sites' beats in front of it lets its producer go on with the next frame
        return 3

    def tail(self, layer, choice, stats, *, lanes=None) -> float:
        return layer.in_shape[0] // self._lanes(choice, lanes) + 2.0

    def hold(self, layer, *, beats: int = 1, slots: int | None = None) -> int:
        raise ValueError("a global pool cannot sit inside a residual branch")

    #: Yosys calibration of the fitted terms (``benchmarks/fit_resources.py --stage-ops``, or
    #: ``--stage-ops --ops gmp``): 8-256 channels at 1-16 lanes.
    calibration = tuple({"c": c, "h": h, "w": w, "lanes": ln}
                        for c, h, w, ln in ((16, 8, 8, 1), (64, 8, 8, 8), (256, 4, 4, 16),
                                            (32, 16, 16, 4), (8, 8, 8, 8), (128, 7, 7, 2)))

    def price_features(self, stage, *, lanes: int, model=None) -> dict:
        # per lane bit: the comparator and the select of the running maximum; per channel bit:
        # its register in the ring (no multiplexers: the ring rotates)
        bits = stage.get("bits", ACT_BITS)
        return {"base": 1.0, "per_lane_bit": float(lanes * bits),
                "per_ring_bit": float(stage["in_shape"][0] * bits)}

    def stage_price(self, stage, *, lanes: int, coord_bits: int, model) -> dict:
        """Its input FIFO (three sites deep) and the ring's fitted terms."""
        bits = stage.get("bits", ACT_BITS)
        c = stage["in_shape"][0]
        width = _price.stream_bits(lanes, coord_bits, bits)
        f = _price.fifo(model, width)
        lut_m, bram_m = _price.memory(model, width, 3 * (c // lanes))
        fit = self.fitted(stage, lanes=lanes, model=model)
        return {"lut": f["lut"] + lut_m + fit["lut"], "ff": f["ff"] + fit["ff"], "dsp": 0.0,
                "bram18": bram_m}
