"""An elementwise activation by table lookup: LeakyReLU, Hardswish, SiLU, sigmoid, tanh, GELU, ...

The input is a tensor on its producer's integer grid (``q`` in ``[lo_in, hi_in]`` at scale
``s_in``); the output is ``clamp(round(f(q * s_in) / s_out), lo, hi)`` on the node's own scale, for
any function ``f`` of one value (monotone or not). Since the input takes at most ``2^bits`` values,
the node holds that function as a table of ``2^bits`` integers (``QNode.table``), computed once in
float64 when the scales are linked: the golden model, the fake-quant model and the hardware all read
the same table, so they agree bit for bit, and the float function is met to the output's rounding
(FINN's thresholds and hls4ml's lookup tables make the same trade; decision: docs/FRONTENDS.md).

Table order: entry ``v & (2^bits - 1)`` holds input ``v`` (two's complement), so the hardware
addresses it with the input lane's bits as they are. A function with a parameter per channel
(``nn.PReLU(C)``) has a table per channel, ``[C, 2^bits]``; a function the same on every channel
one table, ``[2^bits]``. ``bits`` is the input stream's width
(:func:`contract.constants.act_width` of the producer's range): an int8 tensor's table has 256
entries, a 4-bit unsigned one's 32.

On a sparse map the function applies to the active sites only (as spconv's and MinkowskiEngine's
activations do): absent sites stay absent whatever ``f(0)`` is.

Hardware: :class:`hw.act.ActTable` at its producer's lanes, one ROM per lane read through a
register (``ACT_LATENCY`` cycle, one beat a cycle).
"""

from __future__ import annotations

import numpy as np
import torch

from contract.constants import ACT_LATENCY, act_width
from contract.cycles import stream_cycles
from models.quant.layers import QModule, feat, with_feat

from . import _price
from .base import StageOp, sites
from .registry import GraphError, register

__all__ = ["ActTable", "ChannelPReLU", "QActTable", "act_table", "lookup", "nonneg_fn",
           "table_bits"]


def table_bits(table) -> int:
    """Input bits of a table of ``2^bits`` entries (per channel: rows of them)."""
    n = np.shape(table)[-1] if np.ndim(table) else 0
    if n < 4 or n & (n - 1):
        raise ValueError(f"an activation table has 2^bits entries (bits >= 2), not {n}")
    return n.bit_length() - 1


def lookup(feats: torch.Tensor, table) -> torch.Tensor:
    """The integer golden function: every value ``v`` of ``feats`` (int64) replaced by
    ``table[v & (2^bits - 1)]``; a value outside the table's signed ``bits`` range is an error."""
    t = torch.as_tensor(np.asarray(table), dtype=torch.int64)
    bits = table_bits(t)
    f = torch.as_tensor(feats, dtype=torch.int64)
    if f.numel() and (int(f.min()) < -(1 << (bits - 1)) or int(f.max()) >= 1 << (bits - 1)):
        raise GraphError(f"activation table of {bits}-bit inputs given values in "
                         f"[{int(f.min())}, {int(f.max())}]")
    idx = f & ((1 << bits) - 1)
    if t.dim() == 1:
        return t[idx]
    if f.dim() != 2 or f.shape[1] != t.shape[0]:
        raise GraphError(f"activation tables of {t.shape[0]} channels given values of shape "
                         f"{list(f.shape)}")
    return t[torch.arange(t.shape[0])[None, :], idx]


def act_table(fn, *, in_lo: int, in_hi: int, in_scale: float, out_scale: float, lo: int,
              hi: int, rounding: str = "half_up", channels: int = 1,
              dtype: torch.dtype = torch.float64) -> np.ndarray:
    """The table of ``fn`` (a float function of float64 features ``[sites, channels]``) from
    inputs ``[in_lo, in_hi]`` at ``in_scale`` to outputs clamped to ``[lo, hi]`` at
    ``out_scale``: ``2^bits`` int64 entries, ``bits = act_width(in_lo, in_hi)``, in
    two's-complement order; ``[channels, 2^bits]`` where the channels' tables differ (a PReLU's).
    An entry whose input lies outside ``[in_lo, in_hi]`` holds the value of the nearest input
    inside it (never read). ``rounding``: ``"half_up"`` (the requantizer's) or ``"half_even"``
    (QONNX ``ROUND``). ``dtype``: the float type the function, its input's dequantization and the
    division by ``out_scale`` run in (float32: as qonnx executes an imported model, so that a
    value near a rounding tie lands where qonnx's does)."""
    bits = act_width(in_lo, in_hi)
    idx = torch.arange(1 << bits, dtype=torch.int64)
    v = torch.where(idx >= 1 << (bits - 1), idx - (1 << bits), idx).clamp(in_lo, in_hi)
    grid = (v.to(dtype) * torch.tensor(float(in_scale), dtype=dtype))[:, None]
    grid = grid.repeat(1, max(1, int(channels)))
    with torch.no_grad():
        # a function with a parameter per channel broadcasts a one-column grid to its channels
        y = fn(grid).to(dtype).reshape(len(grid), -1).t() / torch.tensor(float(out_scale),
                                                                           dtype=dtype)
    if not torch.isfinite(y).all():
        raise ValueError("the activation is not finite on its input range")
    y = torch.round(y) if rounding == "half_even" else torch.floor(y + 0.5)
    y = y.clamp(lo, hi).long()
    return (y[0] if bool((y == y[:1]).all()) else y).numpy()


class QActTable(QModule):
    """The quantized activation: ``fn`` in float mode, the table in the fake and integer modes.

    Parameters
    ----------
    fn : callable
        The float function on a tensor (the user's module or functional, so the float graph is
        the module's own).
    what : str
        Its name, for messages and the report (``"LeakyReLU(0.1)"``).
    nonneg : bool
        Its outputs are never negative (sigmoid): an unsigned output quantizer.

    The table is set by :meth:`set_table` when the scales are linked
    (:meth:`models.qnet.QNet.link_scales`), from the producer's range and scale.
    """

    own_scale = True
    #: How the table rounds onto the output grid (``"half_even"``: an imported QONNX ``Quant``).
    rounding = "half_up"
    #: The float type the table is computed in (float32 for an imported QONNX model, as qonnx
    #: executes it; see :func:`act_table`).
    table_dtype = torch.float64

    def __init__(self, fn, what: str, *, nonneg: bool = False):
        super().__init__()
        self.fn, self.what, self.nonneg = fn, what, nonneg
        self.register_buffer("in_scale", torch.tensor(1.0, dtype=torch.float64))
        self.table: np.ndarray | None = None
        #: Channels of its input, seen in float mode (calibration): a table per channel where
        #: the function has parameters per channel.
        self.channels = 1

    def bounds(self) -> tuple[int, int]:
        return self._bounds(self.nonneg)

    def set_table(self, in_lo: int, in_hi: int) -> None:
        lo, hi = self.bounds()
        self.table = act_table(self.fn, in_lo=in_lo, in_hi=in_hi, in_scale=float(self.in_scale),
                               out_scale=float(self.out_scale), lo=lo, hi=hi,
                               rounding=self.rounding, channels=self.channels,
                               dtype=self.table_dtype)

    def forward(self, x):
        f = feat(x)
        if self.mode == "float":
            self.channels = int(f.shape[1]) if f.dim() == 2 else 1
            return with_feat(x, self.fn(f))
        if self.table is None:
            raise RuntimeError("activation is not quantized: calibrate / link scales first")
        if self.mode == "int":
            return with_feat(x, lookup(f, self.table))
        dt = f.dtype
        q = torch.round(f.detach().double() / self.in_scale).long()
        y = lookup(q, self.table).to(dt) * self.out_scale.to(dt)
        # the table's value forward, the function's gradient backward (QAT)
        fy = self.fn(f)
        return with_feat(x, fy + (y - fy).detach())

    def qnode_fields(self, **common) -> dict:
        lo, hi = self.bounds()
        return dict(op="act", requant=False, lo=lo, hi=hi, in_scale=float(self.in_scale),
                    table=np.asarray(self.table, dtype=np.int64).copy(), **common)


@register
class ActTable(StageOp):
    name = "act"
    node_op = "act"
    block = "hw.act:ActTable"

    def check_geometry(self, layer) -> None:
        if tuple(layer.out_shape) != tuple(layer.in_shape):
            raise ValueError(f"an activation keeps its map: {tuple(layer.in_shape)} -> "
                             f"{tuple(layer.out_shape)}")

    def check_node(self, node) -> None:
        self.check_geometry(node)
        t = getattr(node, "table", None)
        if t is None:
            raise ValueError("act needs its table")
        table_bits(t)
        if np.ndim(t) not in (1, 2) or (np.ndim(t) == 2 and len(t) != node.in_shape[0]):
            raise ValueError(f"a table per channel has {node.in_shape[0]} rows, not shape "
                             f"{list(np.shape(t))}")
        if node.lo > node.hi or int(np.min(t)) < node.lo or int(np.max(t)) > node.hi:
            raise ValueError(f"table values [{int(np.min(t))}, {int(np.max(t))}] outside its "
                             f"range [{node.lo}, {node.hi}]")

    def golden(self, node, inputs):
        (xc, xf), = inputs
        return xc, lookup(xf, node.table)

    def out_bits(self, node, in_bits: list) -> int | None:
        return act_width(node.lo, node.hi)

    def stage_in_bits(self, node, out_bits: int) -> int:
        # the table is addressed by the input lane's bits: the stream comes at the table's
        # width (a narrower producer's sign-extended on its edge, hw.compose)
        return table_bits(node.table)

    def stage_fields(self, node) -> dict:
        # tables per channel: each lane's ROM holds its channels' (C / lanes of them)
        return {"act_tables": len(node.table)} if np.ndim(node.table) == 2 else {}

    def cycles(self, layer, choice, stats, *, lanes=None) -> float:
        return stream_cycles(active_sites=sites(stats, "active_in_mean"),
                             channels=layer.in_shape[0], lanes=self._lanes(choice, lanes))

    def tail(self, layer, choice, stats, *, lanes=None) -> float:
        return float(ACT_LATENCY)

    def rom(self, stage, lanes: int) -> tuple[int, int]:
        """``(width, depth)`` of a lane's table ROM: ``out_bits x 2^in_bits``, per channel
        ``C / lanes`` of them (a lane's channels, one a beat)."""
        in_bits = stage.get("bits", 8)
        tables = stage.get("act_tables", 1)
        return stage.get("out_bits", in_bits), (1 << in_bits) * max(1, tables // lanes)

    def stage_price(self, stage, *, lanes: int, coord_bits: int, model) -> dict:
        """Its input FIFO, a table ROM per lane (LUTs or block RAM by the family's rule), the
        output register (coordinates, flag, lanes)."""
        res = self.input_fifo_price(stage, lanes=lanes, model=model)
        width, depth = self.rom(stage, lanes)
        luts, bram = _price.memory(model, width, depth, rom=True)
        res["lut"] += lanes * luts
        res["bram18"] += lanes * bram
        # coordinates, end of frame and valid; the read registers where the ROM is logic (a
        # block RAM holds its own); the enable and the ready: a LUT each
        res["ff"] += coord_bits + 2 + (0 if bram else lanes * width)
        res["lut"] += 2
        beats = max(1, stage.get("act_tables", 1) // lanes)
        if beats > 1:  # the beat counter that picks a lane's channel table
            res["ff"] += (beats - 1).bit_length()
            res["lut"] += (beats - 1).bit_length()
        return res

    def block_args(self, node, choice, shape, *, abits: int, dense: bool = False) -> dict:
        return {"shape": shape, "table": np.asarray(node.table).tolist(),
                "out_bits": act_width(node.lo, node.hi)}


class ChannelPReLU:
    """A PReLU with a slope per channel, on features ``[sites, C]`` of any float type (the
    slopes kept in float64, so that a table is computed at the precision asked for); a class,
    so that a user model's checkpoint pickles it. Both front ends build it (``nn.PReLU``,
    ``F.prelu``, QONNX ``PRelu`` with a slope per channel)."""

    def __init__(self, weight):
        self.weight = torch.as_tensor(weight).detach().to(torch.float64).reshape(-1).clone()

    def __call__(self, v):
        # F.prelu's values, broadcast over the last dim (a one-column grid takes every slope)
        return torch.where(v >= 0, v, v * self.weight.to(v.dtype))


def nonneg_fn(fn, *, span: float = 64.0, channels: int = 1) -> bool:
    """Whether ``fn`` is never negative over ``[-span, span]`` on each of ``channels`` (a
    sigmoid's outputs)."""
    x = torch.linspace(-span, span, 4097, dtype=torch.float64)[:, None].repeat(1, channels)
    with torch.no_grad():
        return bool((fn(x) >= 0).all())

