"""Max pooling over a k x k window, "same" padding, stride 1 or 2 (``nn.MaxPool2d(3, 2, 1)``: the
ImageNet ResNet stem; ``nn.MaxPool2d(5, 1, 2)``: an SPP block), k in {3, 5, 7}.

Output sites are the "same" window conv's (docs/CONTRACT.md): stride 1 the input's sites, stride
2 every site whose receptive field holds an active input site; on a dense map the ``ceil(H/2) x
ceil(W/2)`` map of ``F.max_pool2d(x, k, 2, k // 2)``. Each channel's value is the maximum over
the window's *active* inputs (torch pads a max pool with minus infinity; an absent site of a
sparse map counts the same). Max commutes with the monotone requantizer: the output keeps the
input's scale and range.

Hardware: :class:`hw.wmaxpool.WindowMaxPool` at its producer's lanes, on the window convs' line
buffer (dense or sparse).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from contract.constants import (
    ACT_BITS,
    LINE_BUFFER_SLOTS,
    SKID_BEATS,
    WINDOW_STAGES,
    window_max_latency,
)
from contract.cycles import window_cycles
from contract.point import LayerChoice
from models.quant.layers import QModule

from . import _price
from .base import StageOp, sites
from .registry import register

__all__ = ["WindowMaxPool", "QMaxPoolK", "window_max"]


def _pool(dense, kernel: int, stride: int):
    return F.max_pool2d(dense, kernel, stride, kernel // 2)


def window_max(coords, feats, *, height: int, width: int, kernel: int, stride: int,
               channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The integer golden model on one frame: the max over each window's active inputs at the
    window conv's output sites."""
    from models.reference import window_sites

    coords = torch.as_tensor(coords, dtype=torch.int64).reshape(-1, 2)
    feats = torch.as_tensor(feats, dtype=torch.int64).reshape(len(coords), channels)
    oc = window_sites(coords, height=height, width=width, kernel=kernel, stride=stride)
    if not len(oc):
        return oc, torch.zeros((0, channels), dtype=torch.int64)
    dense = torch.full((1, channels, height, width), -math.inf, dtype=torch.float64)
    dense[0, :, coords[:, 0], coords[:, 1]] = feats.t().double()
    out = _pool(dense, kernel, stride)[0]
    return oc, out[:, oc[:, 0], oc[:, 1]].t().long()


class QMaxPoolK(QModule):
    """The quantized layer (the same function in every mode): dense maps ``F.max_pool2d(x, k,
    s, k // 2)`` (integer maps through float64, exact for their values); sparse maps the max
    over active neighbours at the window conv's output sites."""

    keeps_scale = True

    def __init__(self, kernel: int, stride: int):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x):
        if isinstance(x, torch.Tensor):
            if x.is_floating_point():
                return _pool(x, self.kernel, self.stride)
            return _pool(x.double(), self.kernel, self.stride).to(x.dtype)
        from models.sparse.tensor import SparseTensor

        h, w = x.spatial_shape
        outs_c, outs_f = [], []
        for b in range(x.batch_size):
            sel = x.coords[:, 0] == b
            c_, f_ = x.coords[sel, 1:], x.feats[sel]
            if f_.is_floating_point():
                oc, of = self._float_frame(c_, f_, h, w)
            else:
                oc, of = window_max(c_, f_, height=h, width=w, kernel=self.kernel,
                                    stride=self.stride, channels=f_.shape[1])
            outs_c.append(torch.cat([torch.full((len(oc), 1), b, dtype=torch.int64), oc], 1))
            outs_f.append(of.to(x.feats.dtype))
        ho, wo = -(-h // self.stride), -(-w // self.stride)
        return SparseTensor(torch.cat(outs_c), torch.cat(outs_f), (ho, wo), x.batch_size,
                            check=False)

    def _float_frame(self, coords, feats, h, w):
        from models.reference import window_sites

        oc = window_sites(coords, height=h, width=w, kernel=self.kernel, stride=self.stride)
        dense = torch.full((1, feats.shape[1], h, w), -math.inf, dtype=feats.dtype)
        if len(coords):
            dense[0, :, coords[:, 0], coords[:, 1]] = feats.t()
        out = _pool(dense, self.kernel, self.stride)[0]
        return oc, out[:, oc[:, 0], oc[:, 1]].t()

    def qnode_fields(self, **common) -> dict:
        return dict(op="maxpool", kernel=self.kernel, stride=self.stride, requant=False,
                    in_scale=common["out_scale"], **common)


@register
class WindowMaxPool(StageOp):
    name = "maxpoolk"
    node_op = "maxpool"
    block = "hw.wmaxpool:WindowMaxPool"
    keeps_range = True

    def matches(self, node) -> bool:
        return int(getattr(node, "kernel", 2)) in (3, 5, 7)

    def check_geometry(self, layer) -> None:
        c, h, w = layer.in_shape
        k, s = layer.kernel, layer.stride
        want = (c, -(-h // s), -(-w // s))
        if k not in (3, 5, 7) or s not in (1, 2) or tuple(layer.out_shape) != want:
            raise ValueError(f"a {k}x{k} stride-{s} max pool maps {tuple(layer.in_shape)} to "
                             f"{want}, not {tuple(layer.out_shape)} (3x3, 5x5, 7x7 at stride "
                             "1 or 2, 'same' padding)")

    def golden(self, node, inputs):
        (xc, xf), = inputs
        c, h, w = node.in_shape
        return window_max(xc, xf, height=h, width=w, kernel=node.kernel, stride=node.stride,
                          channels=c)

    def cycles(self, layer, choice, stats, *, lanes=None) -> float:
        c, h, w = layer.in_shape
        return window_cycles(height=h, width=w, channels=c, lanes=self._lanes(choice, lanes),
                             stride=layer.stride, active_sites=sites(stats, "active_in_mean"),
                             output_sites=sites(stats), cycles_per_beat=1)

    def tail(self, layer, choice, stats, *, lanes=None) -> float:
        # the rows below the last output row's window centre, then the line buffer's and the
        # tree's stages
        c, h, w = layer.in_shape
        b = c // self._lanes(choice, lanes)
        rows = layer.kernel // 2 + 1
        # (a stage does not know whether its map is dense: the longer line buffer's stages)
        return (rows * sites(stats) / layer.out_shape[1] * b + max(WINDOW_STAGES.values())
                + window_max_latency(layer.kernel))

    def hold(self, layer, *, beats: int = 1, slots: int | None = None) -> int:
        slots = LINE_BUFFER_SLOTS if slots is None else slots
        return ((slots - 1) * layer.in_shape[2] + 1 + 2 + window_max_latency(layer.kernel)
                + 2 * SKID_BEATS)

    def _as_window(self, stage, lanes: int):
        """The depthwise 3x3 op's view of the stage, whose line buffer this block shares."""
        from types import SimpleNamespace

        from . import get

        c, h, w = stage["in_shape"]
        layer = SimpleNamespace(op="conv", in_shape=(c, h, w), out_shape=stage.get(
            "out_shape", (c, h, w)), kernel=stage.get("kernel", 3), kernel_w=0,
            stride=stage.get("stride", 2), groups=c, dense=stage.get("dense", True),
            in_bits=stage.get("bits", ACT_BITS))
        return get("dwconv3x3"), layer, LayerChoice("int8", lanes, lanes)

    def stage_fields(self, node) -> dict:
        return {"kernel": int(node.kernel), "stride": int(node.stride)}

    #: Yosys calibration of the fitted terms (``benchmarks/fit_resources.py --stage-ops --ops
    #: maxpoolk``): the 3x3 / 2 stem pool on the dense line buffer, 1-8 lanes.
    calibration = tuple({"c": c, "h": h, "w": w, "lanes": ln}
                        for c, h, w, ln in ((16, 16, 16, 1), (16, 16, 16, 4), (8, 8, 8, 8),
                                            (32, 12, 12, 2)))

    def price_features(self, stage, *, lanes: int, model=None) -> dict:
        # the window registers, the line buffer's row selects and the compare tree all grow with
        # the window's taps times the lanes' bits
        taps = stage.get("kernel", 3) ** 2
        return {"base": 1.0, "per_window_bit": float(taps * lanes * stage.get("bits", ACT_BITS))}

    def block_structural(self, stage, *, lanes: int, model) -> dict:
        """The line buffer's memories (as the window convs'), its read registers and the window
        beat's skid buffer: what the fit takes out of a block synthesised alone."""
        op, layer, choice = self._as_window(stage, lanes)
        luts, _ = op.line_buffer_memory(layer, choice, model)
        res = {"lut": float(luts), "ff": float(op.line_buffer_registers(layer, choice))}
        for b in op.block_skid_bits(layer, choice):
            sk = _price.skid(b)
            res["lut"] += sk["lut"]
            res["ff"] += sk["ff"]
        return res

    def stage_price(self, stage, *, lanes: int, coord_bits: int, model) -> dict:
        """Its input FIFO, the line buffer's memories and the window's skid buffer
        (:meth:`block_structural`), and the fitted terms of the rest (the line buffer's logic,
        the window registers, the compare tree)."""
        res = self.input_fifo_price(stage, lanes=lanes, model=model)
        op, layer, choice = self._as_window(stage, lanes)
        res["bram18"] += op.line_buffer_memory(layer, choice, model)[1]
        inner = self.block_structural(stage, lanes=lanes, model=model)
        fit = self.fitted(stage, lanes=lanes, model=model)
        for r in ("lut", "ff"):
            res[r] += inner[r] + fit[r]
        return res

    def block_args(self, node, choice, shape, *, abits: int, dense: bool = False) -> dict:
        return {"shape": shape, "kernel": int(node.kernel), "stride": int(node.stride),
                "dense": dense}
