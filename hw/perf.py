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

``stats`` is one entry of :func:`models.stats.layer_stats` (or ``dse.workload.LayerWork.stats``):
``active_sites_mean`` is the node's output sites per frame, ``active_in_mean`` (when present) its
input sites, ``neighbour_hist`` the 3x3 active-neighbour histogram.
"""

from __future__ import annotations

import importlib
import math

from . import conv1x1, pool_fc, residual

__all__ = ["node_kind", "layer_cycles"]


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

