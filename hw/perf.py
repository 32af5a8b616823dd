"""Cycle model of the generated hardware: one pure function per block, gathered per QGraph node.

:func:`layer_cycles` is what dse/ prices with. Each block documents and its tests measure its own
``cycles_per_frame`` (steady state: never stalled, input always available, one frame after another)
and the composer puts every layer in its own pipeline stage, separated by FIFOs, so the network's
initiation interval is the largest stage's cycles per frame.

========================  ================================================================
node kind                 cycles per frame (``B = C_in / lanes``, ``G = C_out / pe``)
========================  ================================================================
``conv1x1``               ``sites * B * G + 1`` (:func:`hw.conv1x1.cycles_per_frame`)
``linear`` (after gap)    ``B * G + 1`` (one site)
``conv3x3``/``dwconv3x3`` the part-1 blocks' ``cycles_per_frame`` (window generator + MACs)
``add``                   ``sites * C / lanes + 1`` (:func:`hw.residual.cycles_per_frame`)
``gap``                   ``sites * B + 1 + B * (div_bits + 2) + 1``
                          (:func:`hw.pool_fc.cycles_per_frame`)
========================  ================================================================

The requantizer after a conv streams ``sites * C_out / pe + 1`` beats, never more than the conv's
own cycles, so it adds latency (:data:`hw.requant.LATENCY`) but no cycles per frame.

Stages in a stream of frames
----------------------------
The block formulas above are what each block's test measures (for the 1x1 unit: a lone frame).
Two effects appear only when frames follow each other through the composed network, and
:func:`stage_cycles` / :func:`pool_stall` add them (measured with Verilator, see
``benchmarks/dse_check.py``):

- a 1x1 / linear unit's end-of-frame beat takes an input bank like a site, so the next frame's
  first site (``B`` beats) loads while the compute side idles: ``B - 1`` cycles per frame
  (exact on the digits classifier: 352 cycles measured for ``B * G + 1 = 321``, ``B = 32``);
- the global pool takes no input while it divides (``B_g * (div_bits + 2) + 1`` cycles after
  the end of frame); its producer keeps computing the next frame until the FIFO between them and
  the requantizer are full, about ``(fifo_depth + 1)`` output beats, and then waits:
  ``max(0, tail - (fifo_depth + 1) * cycles_per_beat)`` cycles per frame on the producer's stage.

:func:`tail_cycles` is a stage's share of a lone frame's latency: the cycles from its last input
beat to its last output beat (a 3x3 layer emits the last output rows only after the end of
frame), plus the register stages; a lone frame's latency is about the slowest stage's cycles
plus every stage's tail.

``stats`` is one entry of :func:`models.stats.layer_stats` (or ``dse.workload.LayerWork.stats``):
``active_sites_mean`` is the node's output sites per frame, ``active_in_mean`` (when present) its
input sites, ``neighbour_hist`` the 3x3 active-neighbour histogram.
"""

from __future__ import annotations

import importlib
import math

from . import conv1x1, pool_fc, requant, residual

__all__ = ["node_kind", "layer_cycles", "stage_cycles", "pool_stall", "tail_cycles",
           "EDGE_LATENCY"]


def node_kind(node) -> str:
    """Hardware block kind of a QGraph node (or of anything with QNode's geometry fields)."""
    op = node.op
    if op == "conv":
        if node.kernel == 1:
            return "conv1x1"
        return "conv3x3" if node.groups == 1 else "dwconv3x3"
    return op


def _sites(stats, key="active_sites_mean"):
    if key not in stats and key == "active_in_mean":
        key = "active_sites_mean"
    try:
        return float(stats[key])
    except (KeyError, TypeError):
        raise ValueError(f"layer stats need {key!r}, got {stats!r}") from None


def _part1(name):
    try:
        return importlib.import_module(f"hw.{name}")
    except ModuleNotFoundError as exc:
        raise NotImplementedError(f"hw.{name} is not available for the cycle model") from exc


def layer_cycles(node, choice, stats, *, lanes: int | None = None) -> int:
    """Cycles per frame of ``node`` under ``choice`` at the measured activity ``stats``.

    Parameters
    ----------
    node : QNode or LayerWork
        ``op``, ``in_shape``, ``out_shape``, ``kernel``, ``stride``, ``groups``.
    choice : LayerChoice or None
        ``lanes``, ``pe`` (and ``format``) of a compute node; None for ``add`` / ``gap``.
    stats : dict
        Activity of the node (see the module docstring).
    lanes : int, optional
        Input lanes of an ``add`` / ``gap`` node (the producer's ``pe``); default 1.

    Returns
    -------
    int
        The block's formula rounded up (fractional for mean activities).
    """
    return math.ceil(_cycles(node, choice, stats, lanes))


def _cycles(node, choice, stats, lanes):
    kind = node_kind(node)
    c_in, h, w = node.in_shape
    c_out = node.out_shape[0]
    if kind in ("add", "gap"):
        ln = lanes if choice is None else choice.lanes
        ln = 1 if ln is None else ln
        sites = _sites(stats, "active_in_mean")
        if kind == "add":
            return residual.cycles_per_frame(active_sites=sites, channels=c_in, lanes=ln)
        return pool_fc.cycles_per_frame(active_sites=sites, channels=c_in, lanes=ln,
                                        height=h, width=w)
    if kind == "input":
        return 0
    if choice is None:
        raise ValueError(f"layer {node.name}: a {kind} node needs a LayerChoice")
    if kind == "linear":
        return conv1x1.cycles_per_frame(active_sites=1, c_in=c_in, c_out=c_out,
                                        lanes=choice.lanes, pe=choice.pe)
    if kind == "conv1x1":
        return conv1x1.cycles_per_frame(active_sites=_sites(stats), c_in=c_in, c_out=c_out,
                                        lanes=choice.lanes, pe=choice.pe)
    mod = _part1("conv3x3" if kind == "conv3x3" else "dwconv")
    return mod.cycles_per_frame(**_window_args(node, choice, stats, kind))


def _window_args(node, choice, stats, kind) -> dict:
    c_in, h, w = node.in_shape
    args = dict(height=h, width=w, lanes=choice.lanes, stride=node.stride,
                active_sites=_sites(stats, "active_in_mean"), output_sites=_sites(stats))
    if kind == "conv3x3":
        args.update(c_in=c_in, c_out=node.out_shape[0], pe=choice.pe)
    else:
        args.update(channels=c_in)
    return args



#: Cycles a beat spends in the FIFO between two stages (:data:`hw.fifo.LATENCY`).
EDGE_LATENCY = 2


def _beats(node, choice) -> int:
    return node.in_shape[0] // choice.lanes


def stage_cycles(node, choice, stats, *, lanes: int | None = None) -> float:
    """Cycles per frame of ``node``'s stage when frames follow each other (unrounded).

    :func:`layer_cycles` plus the 1x1 / linear unit's frame turnaround (``B - 1``, see the module
    docstring).
    """
    c = _cycles(node, choice, stats, lanes)
    if node_kind(node) in ("conv1x1", "linear"):
        c += _beats(node, choice) - 1
    return c


def pool_stall(producer_cycles: float, out_beats: float, *, channels: int, lanes: int,
               height: int, width: int, fifo_depth: int = 4) -> float:
    """Cycles per frame a global pool's division costs the stage that feeds it.

    ``producer_cycles`` is the producer's stage cycles per frame and ``out_beats`` its output
    beats per frame (``sites * C / lanes``); ``channels``, ``lanes``, ``height``, ``width`` are the
    pool's input stream.
    """
    from .stream import TokenShape

    b = channels // lanes
    d = pool_fc.div_bits(TokenShape(height=height, width=width, channels=channels, lanes=lanes))
    tail = b * (d + 2) + 1
    per_beat = producer_cycles / max(out_beats, 1.0)
    return max(0.0, tail - (fifo_depth + 1) * per_beat)


def tail_cycles(node, choice, stats, *, lanes: int | None = None) -> float:
    """Cycles from ``node``'s last input beat to its last output beat in a lone frame.

    1x1 / linear: the last site's ``B * G`` cycles plus the MAC and requantizer registers; 3x3
    stride 1: the last two output rows (the emitter runs a row behind the writer); 3x3 stride 2:
    the last input row and the last output row; ``add``: its registers; ``gap``: the division.
    Rows hold ``sites / H`` active sites at the measured activity.
    """
    kind = node_kind(node)
    c_in, h, w = node.in_shape
    if kind == "input":
        return 0.0
    rq = 0 if getattr(node, "requant", True) is False or kind == "linear" else requant.LATENCY
    if kind in ("add", "gap"):
        ln = lanes if choice is None else choice.lanes
        ln = 1 if ln is None else ln
        if kind == "add":
            return float(residual.LATENCY)
        from .stream import TokenShape

        b = c_in // ln
        return b * (pool_fc.div_bits(TokenShape(height=h, width=w, channels=c_in, lanes=ln))
                    + 2) + 2.0
    b = _beats(node, choice)
    g = node.out_shape[0] // choice.pe
    if kind in ("conv1x1", "linear"):
        return b * g + conv1x1.LATENCY + rq
    ho = node.out_shape[1]
    row_out = _sites(stats) / ho
    if kind == "dwconv3x3":
        g = 1
    if node.stride == 1:
        return 2 * row_out * b * g + 2 * 2 + rq + 1
    row_in = _sites(stats, "active_in_mean") / h
    return row_in * b + row_out * b * g
