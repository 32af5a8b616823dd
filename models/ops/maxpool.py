"""Max pooling 2x2, stride 2 (floor, as ``nn.MaxPool2d(2)``), on dense and sparse maps.

On a sparse map an output site is active when any input site of its 2x2 window is (the stride-2
rule of a sparse conv), and its value, per channel, is the maximum over the window's *active*
inputs only, the sparse max-pool of MinkowskiEngine and spconv; on a dense map this is
``max_pool2d(x, 2)``. An odd map's last row / column is dropped. Max commutes with the monotone
requantizer, so the op needs no requantization: its output keeps its input's scale and range.

Hardware: :class:`hw.maxpool.MaxPool2x2` at its producer's lanes (a row buffer of running maxima,
flushed once a later output row or the end of frame arrives).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contract.constants import ACT_BITS, MAXPOOL_LATENCY
from contract.cycles import maxpool2_cycles
from models.quant.layers import QModule

from . import _price
from .base import StageOp, sites
from .registry import register

__all__ = ["MaxPool2x2", "QMaxPool2d", "maxpool2"]


def maxpool2(coords, feats, *, height: int, width: int,
             channels: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The integer golden model on one frame: ``(coords [N, 2], feats [N, C])`` in raster order
    -> the pooled frame in the same form (``channels`` gives C for an empty frame)."""
    coords = torch.as_tensor(coords, dtype=torch.int64).reshape(-1, 2)
    feats = torch.as_tensor(feats)
    if channels is None:
        channels = feats.shape[-1] if feats.dim() == 2 else 0
    feats = feats.reshape(len(coords), channels)
    batch = torch.zeros((len(coords), 1), dtype=torch.int64)
    oc, of = _pool(torch.cat([batch, coords], 1), feats, height, width)
    return oc[:, 1:], of


def _pool(coords, feats, height: int, width: int):
    """Batched: ``coords [N, 3]`` (b, y, x) in raster order per frame."""
    ho, wo = height // 2, width // 2
    keep = (coords[:, 1] < 2 * ho) & (coords[:, 2] < 2 * wo)
    coords, feats = coords[keep], feats[keep]
    key = (coords[:, 0] * ho + coords[:, 1] // 2) * wo + coords[:, 2] // 2
    out_keys, inverse = torch.unique(key, sorted=True, return_inverse=True)
    low = torch.finfo(feats.dtype).min if feats.is_floating_point() \
        else torch.iinfo(feats.dtype).min
    out = torch.full((len(out_keys), feats.shape[1]), low, dtype=feats.dtype)
    out = out.scatter_reduce(0, inverse[:, None].expand(-1, feats.shape[1]), feats,
                             reduce="amax", include_self=True)
    oc = torch.stack([out_keys // (ho * wo), out_keys % (ho * wo) // wo, out_keys % wo], 1)
    return oc, out


class QMaxPool2d(QModule):
    """The quantized layer: the same function in every mode (float, fake-quant and integer), since
    the values on its input are already on its producer's grid. Dense ``[B, C, H, W]`` or
    :class:`models.sparse.SparseTensor` maps."""

    keeps_scale = True

    def forward(self, x):
        if isinstance(x, torch.Tensor):
            return F.max_pool2d(x, 2)
        from models.sparse.tensor import SparseTensor

        h, w = x.spatial_shape
        oc, of = _pool(x.coords, x.feats, h, w)
        return SparseTensor(oc, of, (h // 2, w // 2), x.batch_size, check=False)

    def qnode_fields(self, **common) -> dict:
        """The QGraph node's fields (``models.qnet.QNet.to_qgraph`` builds the node)."""
        return dict(op="maxpool", kernel=2, stride=2, requant=False, in_scale=common["out_scale"],
                    **common)


@register
class MaxPool2x2(StageOp):
    name = "maxpool"
    node_op = "maxpool"
    block = "hw.maxpool:MaxPool2x2"
    keeps_range = True

    def matches(self, node) -> bool:
        return int(getattr(node, "kernel", 2)) == 2

    def check_geometry(self, layer) -> None:
        c, h, w = layer.in_shape
        if layer.kernel != 2 or layer.stride != 2:
            raise ValueError(f"max pooling is 2x2 stride 2, not kernel {layer.kernel} stride "
                             f"{layer.stride}")
        if h < 2 or w < 2 or tuple(layer.out_shape) != (c, h // 2, w // 2):
            raise ValueError(f"max pooling maps {layer.in_shape} to {(c, h // 2, w // 2)}, not "
                             f"{layer.out_shape}")

    def golden(self, node, inputs):
        (xc, xf), = inputs
        _, h, w = node.in_shape
        return maxpool2(xc, xf, height=h, width=w, channels=node.in_shape[0])

    def cycles(self, layer, choice, stats, *, lanes=None) -> float:
        return maxpool2_cycles(active_in=sites(stats, "active_in_mean"),
                               active_out=sites(stats), channels=layer.in_shape[0],
                               lanes=self._lanes(choice, lanes))

    def producer_stall(self, producer_cycles, out_beats, stage, *, lanes, fifo_depth) -> float:
        """The block takes no input while it flushes an output row (``row sites * B`` cycles);
        its producer keeps going until the FIFO between them and the requantizer hold about
        ``fifo_depth + 1`` beats, then waits, once per output row."""
        c, _, _ = stage["in_shape"]
        _, ho, wo = stage.get("out_shape", (c, 1, 1))
        out_sites = float(stage.get("active_out", ho * wo))
        rows = min(float(ho), out_sites)
        if rows <= 0:
            return 0.0
        flush = out_sites / rows * (c // lanes)
        per_beat = producer_cycles / max(out_beats, 1.0)
        return rows * max(0.0, flush - (fifo_depth + 1) * per_beat)

    def tail(self, layer, choice, stats, *, lanes=None) -> float:
        # the end of frame flushes the last output row
        b = layer.in_shape[0] // self._lanes(choice, lanes)
        return sites(stats) / layer.out_shape[1] * b + 1 + MAXPOOL_LATENCY

    def hold(self, layer, *, beats: int = 1, slots: int | None = None) -> int:
        # an output row's two input rows, the flush's read register and the output register
        return 2 * layer.in_shape[2] + 2

    def output_fifo_sites(self, layer) -> int:
        # a flushed output row (and the beat after it): the row leaves at one beat a cycle
        # whatever its consumer's pace, so the producer waits only as producer_stall says
        # (LeNet-5 on XCZU3EG: a 6 -> 2 lane converter after the pool stretched each flush
        # threefold, 1,390 cycles a frame against 1,177 predicted)
        return layer.out_shape[2] + 1

    #: Yosys calibration of the fitted terms (``benchmarks/fit_resources.py --stage-ops``).
    calibration = tuple({"c": c, "h": h, "w": w, "lanes": ln}
                        for c, h, w, ln in ((8, 8, 8, 1), (8, 8, 8, 8), (16, 16, 16, 4),
                                            (32, 32, 32, 8), (16, 8, 64, 2), (64, 16, 16, 16),
                                            (32, 60, 80, 4), (4, 28, 28, 4)))

    #: The row buffer's asynchronous read ports (hw.maxpool: the update's and the flush's).
    READ_PORTS = 2

    def _row_buffer_shape(self, stage, *, lanes: int) -> tuple[int, int]:
        """``(width, depth)`` of the row buffer: ``W/2 * C/lanes`` words of ``lanes`` values."""
        c, _, w = stage["in_shape"]
        return lanes * stage.get("bits", ACT_BITS), (w // 2) * (c // lanes)

    def price_features(self, stage, *, lanes: int, model=None) -> dict:
        # a comparator and a register per lane; the bitmap and its priority encoder per column;
        # the row buffer's read multiplexers: a bit of each read port per row of LUT-RAM cells
        # beyond the first (synth_ecp5: a 320 x 32-bit buffer in 20 rows of TRELLIS_DPR16X4
        # takes ~1,200 LUT4s of multiplexers besides its 1,920 in the cells)
        width, depth = self._row_buffer_shape(stage, lanes=lanes)
        rows = -(-depth // min(d for d, _, _ in _price.lutram_cells(model)))
        return {"base": 1.0, "per_lane": float(lanes),
                "per_column": float(stage["in_shape"][2] // 2),
                "per_read_mux": float(self.READ_PORTS * width * (rows - 1))}

    def _row_buffer(self, stage, *, lanes: int, model) -> tuple[int, int]:
        # LUT RAM whatever its size: read asynchronously, it cannot be block RAM; a family whose
        # LUT-RAM cells have one read port (ECP5) takes the cells once per port (synth_ecp5 of a
        # 320 x 32-bit row buffer: 1,920 LUTs in TRELLIS_DPR16X4, as priced)
        luts = _price.lutram_luts(model, *self._row_buffer_shape(stage, lanes=lanes))
        return luts * _price.lutram_copies(model, self.READ_PORTS), 0

    def block_structural(self, stage, *, lanes: int, model) -> dict:
        return {"lut": float(self._row_buffer(stage, lanes=lanes, model=model)[0]), "ff": 0.0}

    def stage_price(self, stage, *, lanes: int, coord_bits: int, model) -> dict:
        """The row buffer (``W/2 * C/lanes`` words of ``lanes * 8`` bits) as the memory model
        prices it, the input FIFO, and the fitted logic (:meth:`price_features`)."""
        c, _, w = stage["in_shape"]
        res = {"lut": 0.0, "ff": 0.0, "dsp": 0.0, "bram18": 0}
        act = stage.get("bits", ACT_BITS)
        lut_m, bram_m = self._row_buffer(stage, lanes=lanes, model=model)
        res["lut"] += lut_m
        res["bram18"] += bram_m
        bits = _price.stream_bits(lanes, _price.coord_bits(stage["in_shape"]), act)
        f = _price.fifo(model, bits)
        # the output FIFO that holds a flushed row (output_fifo_sites)
        lut_o, bram_o = _price.memory(model, bits, (w // 2 + 1) * (c // lanes))
        res["lut"] += lut_o
        res["bram18"] += bram_o
        fit = self.fitted(stage, lanes=lanes, model=model)
        for r in ("lut", "ff"):
            res[r] += f[r] + fit[r]
        return res
