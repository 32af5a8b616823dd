"""Nearest-neighbour upsampling by 2 (``nn.Upsample(scale_factor=2)``, ``F.interpolate(x,
scale_factor=2)``): output site ``(2y + dy, 2x + dx)``, ``dy, dx`` in {0, 1}, takes input site
``(y, x)``'s values, on a ``2H x 2W`` map. On a sparse map an active site's four children are
active and no other site is (the generative upsampling of sparse decoders); on a dense one this
is ``F.interpolate(x, scale_factor=2, mode="nearest")``. Values pass through (no requantization).

Hardware: :class:`hw.upsample.Upsample2x` at its producer's lanes (a row buffer of the input
row's sites, replayed for the odd output row).
"""

from __future__ import annotations

import torch

from contract.constants import ACT_BITS
from contract.cycles import upsample_cycles
from models.quant.layers import QModule

from . import _price
from .base import StageOp, sites
from .registry import register

__all__ = ["Upsample2x", "QUpsample2x", "upsample2"]


def upsample2(coords, feats, *, channels: int | None = None):
    """The integer golden model on one frame: ``(coords [N, 2], feats [N, C])`` in raster order
    -> the upsampled frame in the same form."""
    coords = torch.as_tensor(coords, dtype=torch.int64).reshape(-1, 2)
    feats = torch.as_tensor(feats)
    c = channels if channels is not None else (feats.shape[-1] if feats.dim() == 2 else 0)
    feats = feats.reshape(len(coords), c)
    batch = torch.zeros((len(coords), 1), dtype=torch.int64)
    oc, of = _children(torch.cat([batch, coords], 1), feats)
    return oc[:, 1:], of


def _children(coords, feats):
    """Batched: ``coords [N, 3]`` (b, y, x) -> the four children of each site, sorted in raster
    order per frame, and their features."""
    d = torch.tensor([(0, 0), (0, 1), (1, 0), (1, 1)], dtype=torch.int64)
    kids = (coords[:, None, 1:] * 2 + d[None]).reshape(-1, 2)
    b = coords[:, :1].repeat_interleave(4, 0)
    f = feats.repeat_interleave(4, 0)
    oc = torch.cat([b, kids], 1)
    if len(oc):
        top = int(oc[:, 2].max()) + 1
        key = (oc[:, 0] * (int(oc[:, 1].max()) + 1) + oc[:, 1]) * top + oc[:, 2]
        order = torch.argsort(key)
        oc, f = oc[order], f[order]
    return oc, f


class QUpsample2x(QModule):
    """The quantized layer (the same in every mode): dense ``[B, C, H, W] -> [B, C, 2H, 2W]``,
    sparse maps: each active site's four children."""

    keeps_scale = True

    def forward(self, x):
        if isinstance(x, torch.Tensor):
            # F.interpolate(x, scale_factor=2) ("nearest"), for integer maps too
            return x.repeat_interleave(2, 2).repeat_interleave(2, 3)
        from models.sparse.tensor import SparseTensor

        h, w = x.spatial_shape
        oc, of = _children(x.coords, x.feats)
        return SparseTensor(oc, of, (2 * h, 2 * w), x.batch_size, check=False)

    def qnode_fields(self, **common) -> dict:
        return dict(op="upsample", kernel=2, requant=False, in_scale=common["out_scale"],
                    **common)


@register
class Upsample2x(StageOp):
    name = "upsample"
    node_op = "upsample"
    block = "hw.upsample:Upsample2x"
    keeps_range = True

    def check_geometry(self, layer) -> None:
        c, h, w = layer.in_shape
        if layer.kernel != 2 or tuple(layer.out_shape) != (c, 2 * h, 2 * w):
            raise ValueError(f"a 2x upsample maps {tuple(layer.in_shape)} to "
                             f"{(c, 2 * h, 2 * w)}, not {tuple(layer.out_shape)} (scale "
                             f"{layer.kernel})")

    def golden(self, node, inputs):
        (xc, xf), = inputs
        return upsample2(xc, xf, channels=node.in_shape[0])

    @staticmethod
    def _rows(layer, stats) -> float:
        _, h, _ = layer.in_shape
        return min(float(h), sites(stats, "active_in_mean"))

    def cycles(self, layer, choice, stats, *, lanes=None) -> float:
        return upsample_cycles(active_in=sites(stats, "active_in_mean"),
                               channels=layer.in_shape[0], lanes=self._lanes(choice, lanes),
                               rows=self._rows(layer, stats))

    def tail(self, layer, choice, stats, *, lanes=None) -> float:
        # the last input row's odd output row leaves after the end of frame arrives
        b = layer.in_shape[0] // self._lanes(choice, lanes)
        return 2 * sites(stats, "active_in_mean") / max(self._rows(layer, stats), 1.0) * b + 2

    def hold(self, layer, *, beats: int = 1, slots: int | None = None) -> int:
        # in output sites: the input row's four output rows' worth (two output rows of 2W)
        # and the output register
        return 4 * layer.in_shape[2] + 2

    def output_fifo_sites(self, layer) -> int:
        # the odd output row leaves at one beat a cycle with no input taken meanwhile
        return 2 * layer.in_shape[2] + 1

    def row_buffer(self, stage, *, lanes: int) -> tuple[int, int]:
        """``(width, depth)`` of the row buffer: a row's ``W * C / lanes`` beats of ``lanes``
        values and the site's column."""
        c, _, w = stage["in_shape"]
        return lanes * stage.get("bits", ACT_BITS) + _price.coord_bits((1, 1, w)), w * (c // lanes)

    def stage_price(self, stage, *, lanes: int, coord_bits: int, model) -> dict:
        """Its input FIFO, the row buffer (LUT RAM or block RAM by the family's rule) and its
        read and output registers; the control is a few counters."""
        res = self.input_fifo_price(stage, lanes=lanes, model=model)
        width, depth = self.row_buffer(stage, lanes=lanes)
        luts, bram = _price.dual_port_memory(model, width, depth)
        bits = lanes * stage.get("bits", ACT_BITS)
        # the live / replayed data select, the address counters and the row compare
        res["lut"] += luts + bits + 3 * coord_bits + 40
        res["ff"] += (0 if bram else width) + bits + 3 * coord_bits + 2 * depth.bit_length() + 8
        if bram and model is not None and model.dsp_cell == "MULT18X18D":
            # ECP5: the read port's enable and read data kept in fabric, two registers and
            # selects a bit (synth_ecp5 of the block alone, 64 channels at 8 lanes: 262 FF and
            # 280 LUT4 where the 7 series take 117 and 135)
            res["ff"] += 2 * width
            res["lut"] += 2 * width
        res["bram18"] += bram
        return res
