"""Crop the border of a map: the rest of a conv with zero padding ("valid").

A ``k x k`` conv with padding 0 and stride 1 is the "same" conv (padding ``k // 2``) with its
outer ``k // 2`` rows and columns dropped: the front ends emit the conv (a window op) and then this
op. The node's ``kernel`` is that conv's ``k``; output site ``(y, x)`` is input site ``(y + p,
x + p)`` with ``p = k // 2``, active iff that input site is, on a ``(H - 2p) x (W - 2p)`` map. The
values pass through (no requantization), on dense and sparse maps alike.

Hardware: :class:`hw.crop.Crop` at its producer's lanes.
"""

from __future__ import annotations

import torch

from contract.cycles import crop_cycles
from models.quant.layers import QModule

from .base import StageOp, sites
from .registry import register

__all__ = ["Crop", "QCrop", "crop", "folded_margin"]


def crop(coords, feats, *, margin: int, height: int, width: int):
    """The golden model: keep the sites ``margin`` away from every border, shifted by
    ``-margin``."""
    coords = torch.as_tensor(coords, dtype=torch.int64).reshape(-1, 2)
    keep = ((coords[:, 0] >= margin) & (coords[:, 0] < height - margin)
            & (coords[:, 1] >= margin) & (coords[:, 1] < width - margin))
    return coords[keep] - margin, torch.as_tensor(feats)[keep]


def folded_margin(qgraph, node) -> int:
    """The border the window conv ``node`` does not compute because the crop after it would drop
    it (``kernel // 2``), or 0.

    Folded when the map is dense (every frame holds every site: the line buffer knows where the
    border is without reading coordinates), the conv runs at stride 1 on a square kernel, and its
    only consumer is a crop of that kernel. The crop stays in the graph and in the hardware, where
    it shifts the coordinates of the sites it now passes all of: the golden model and every
    tensor are unchanged, the conv's MACs spend no cycles on the dropped border
    (:class:`hw.dense_line_buffer.DenseLineBuffer`'s ``margin``), and the DSE prices the layer
    and its crop at the inner sites (:func:`contract.cycles.window_cycles`)."""
    from . import of
    from .window import WindowOp

    if not getattr(qgraph, "dense", False) or not isinstance(of(node), WindowOp):
        return 0
    k = int(getattr(node, "kernel", 1) or 1)
    if int(getattr(node, "stride", 1) or 1) != 1 or (getattr(node, "kernel_w", 0) or k) != k:
        return 0
    users = qgraph.consumers(node.name)
    if len(users) != 1 or users[0].op != "crop" or users[0].kernel != k:
        return 0
    return k // 2


class QCrop(QModule):
    """The quantized layer (the same in every mode): dense ``[B, C, H, W]`` maps are sliced,
    sparse ones keep their inner sites."""

    keeps_scale = True

    def __init__(self, kernel: int):
        super().__init__()
        self.kernel = kernel

    def forward(self, x):
        p = self.kernel // 2
        if isinstance(x, torch.Tensor):
            return x[:, :, p:x.shape[2] - p, p:x.shape[3] - p]
        from models.sparse.tensor import SparseTensor

        h, w = x.spatial_shape
        c = x.coords
        keep = (c[:, 1] >= p) & (c[:, 1] < h - p) & (c[:, 2] >= p) & (c[:, 2] < w - p)
        shift = torch.tensor([0, p, p], dtype=c.dtype)
        return SparseTensor(c[keep] - shift, x.feats[keep], (h - 2 * p, w - 2 * p),
                            x.batch_size, check=False)

    def qnode_fields(self, **common) -> dict:
        return dict(op="crop", kernel=self.kernel, requant=False, in_scale=common["out_scale"],
                    **common)


@register
class Crop(StageOp):
    name = "crop"
    node_op = "crop"
    block = "hw.crop:Crop"
    keeps_range = True

    def check_geometry(self, layer) -> None:
        c, h, w = layer.in_shape
        p = layer.kernel // 2
        if layer.kernel < 3 or layer.kernel % 2 == 0:
            raise ValueError(f"a crop follows an odd k x k conv (k >= 3), not k={layer.kernel}")
        if h <= 2 * p or w <= 2 * p or tuple(layer.out_shape) != (c, h - 2 * p, w - 2 * p):
            raise ValueError(f"a {layer.kernel}x{layer.kernel} crop maps {tuple(layer.in_shape)} "
                             f"to {(c, h - 2 * p, w - 2 * p)}, not {tuple(layer.out_shape)}")

    def golden(self, node, inputs):
        (xc, xf), = inputs
        _, h, w = node.in_shape
        return crop(xc, xf, margin=node.kernel // 2, height=h, width=w)

    def block_args(self, node, choice, shape, *, abits: int, dense: bool = False) -> dict:
        return {"shape": shape, "kernel": node.kernel}

    def cycles(self, layer, choice, stats, *, lanes=None) -> float:
        return crop_cycles(active_in=sites(stats, "active_in_mean"), channels=layer.in_shape[0],
                           lanes=self._lanes(choice, lanes))

    def stage_price(self, stage, *, lanes: int, coord_bits: int, model) -> dict:
        """Its input FIFO; the block itself is two comparators per coordinate."""
        return self.input_fifo_price(stage, lanes=lanes, model=model)
