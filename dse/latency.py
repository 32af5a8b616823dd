"""Lone-frame latency of a dataflow design, row by row.

A lone frame into an empty pipeline does not simply stream in at the bottleneck's pace and then
drain (``II + sum(fill)``, what the integer program's latency objective adds up): in a network
whose stages are within a small factor of each other (the eye backbone: 17 stages within 2x of
the II), every stage waits for the rows it needs from the stage before it, and the frame's
latency is a critical path through rows. This module computes that path.

Each compute layer ``k`` (with the pass-through stages it feeds) is a stage that produces its
output rows in order, ``t_k = cycles_k / rows_k`` cycles each (its cycles per frame spread evenly
over its rows: the mean activity); output row ``r`` also needs the last input row it reads,
``need_k(r)`` (a window of ``kh`` rows at stride ``s``: input row ``min(s r + kh // 2, H - 1)``;
a 1x1 at stride ``s``: ``s r``; after a global pool or a flatten, every row). So::

    F_k(r) = max(F_k(r - 1), max over producers p of F_p(need_k(r)) + pipe) + t_k

(rows are the grain of a window stage: its line buffer emits an output row once the last input
row it reads is complete). On a dense map the line buffer's emitter runs ``L`` sites behind its
reader (:func:`contract.constants.dense_lag_steps`: ``kw // 2`` at stride 1), and the reader reads
the next output row's first columns only once that row's input rows are in: the row's last ``L``
sites wait for input row ``late_k(r) = need_k(r + 1)``, so
``F_k(r) >= F_p(late_k(r)) + pipe + L t_k / n_k`` (``n_k`` the mean sites of a row; not the last
row, which drains without). A 1x1 stage takes its input site by site as the producer's row
streams in, so its row ends at ``max(F_k(r - 1) + t_k, E + t_k / n_k, B + t_p / n_p + t_k)``,
``E = F_p(r) + pipe`` and ``B`` the producer's row's start plus ``pipe``: a site's work after its
input row when it keeps up, its row's work after the input row's first site when it does not (the
block takes a whole site before it works on it). A zero-padded conv computed on its inner sites
(``margin`` rows and columns a side, its crop folded into it) skips its border rows at a cycle a
beat: its cycles are spread over the rows it keeps (LeNet-5: -5.5 % before, +1.5 % with it).

Measured against the RTL stage by stage (``benchmarks/latency_timeline.py``: every stage's first
and last beat of a lone frame, from inside the design): on MobileNetV1-0.25 at II 18,433 on
XC7Z020 the model without the first two terms above was 10.4 % short (81,783 against 91,267), every
depthwise layer at 6x6 between two slower 1x1 layers losing about 900 cycles (its last site of a
row waiting for the input row after next, and the 1x1 after it starting a row at its first
site); with them, 91,167 (-0.1 %), every 1x1 stage's last beat within 36 cycles. (A depthwise
layer's own rows, paced by the slower 1x1 after it, still come out early in the model: it has no
back-pressure; the 1x1 after it, which sets the pace, does not.)

Here ``pipe`` is the cycles a row spends in a stage's pipeline beyond its work (its input FIFO, the
line buffer's output stage, the MAC pipeline of the chosen datapath and size, the requantizer:
:meth:`models.ops.base.ComputeOp.pipeline`). The network input streams in at one beat a cycle, at
the first stage's lanes: its row ``i`` is complete at ``(i + 1) * W * ceil(C / lanes)`` (the mean
active sites of a row on a sparse map). A stage's pass-through stages map its rows: a 2x2 pool's
row ``q`` is ready with the layer's row ``2 q + 1``, a global pool's one row with the last; each
row of the stream after them is later by their FIFOs and their own tails (a global pool's
division, a residual add's latency, a pool's row flush). The latency is the last layer's last
row, ``F_last`` (the network's output port has no FIFO of its own).

Measured against whole networks in RTL simulation (``benchmarks/dse_check.py``): a constant
``pipe`` (:data:`PIPE_CYCLES`), the input taken as present at cycle 0 and no pass-through tails
gave lone frames 14 % short on the digits network (1,307 predicted, 1,514 measured); with the
three terms above, 1,494 (-1.3 %), and each stage's first and last rows land within a few cycles
of the simulation's (docs/CONTRACT.md, reports/dse_check.md).

FIFO back-pressure is not modelled (a stage never waits for its consumer): what it misses is a
fast stage held by a slow one after it, which only delays rows the slow one has not reached
anyway.

Pure functions of the workload and the chosen costs; :func:`dse.problem.evaluate` reports it as a
design's ``latency``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from contract.constants import FIFO_LATENCY, MAC_LATENCY, REQUANT_LATENCY, dense_lag_steps
from models import ops
from models.ops.base import kernel_hw

from .cost import stage_tails

__all__ = ["Rows", "rows_of", "Timing", "layer_timing", "lone_frame_latency", "LayerRows",
           "row_times", "PIPE_CYCLES"]

#: Cycles a row spends in a stage beyond its share of the work when its :class:`Timing` is not
#: known: the FIFO in front of it, the MAC unit's issue and accumulator, a few product and tree
#: stages, and the requantizer.
PIPE_CYCLES = FIFO_LATENCY + MAC_LATENCY + 4 + REQUANT_LATENCY


@dataclass(frozen=True)
class Timing:
    """What a layer's chosen design adds to its rows' times (:func:`layer_timing`).

    Attributes
    ----------
    pipe : float
        Cycles a row spends in the stage beyond its share of the work: its input FIFO and its
        block's pipeline.
    after : float
        Cycles each row of its output stream spends in the pass-through stages it feeds (their
        FIFOs and tails).
    in_row : float
        Cycles per row of its input stream when that is the network input (one beat a cycle
        at its lanes).
    """

    pipe: float = PIPE_CYCLES
    after: float = 0.0
    in_row: float = 0.0


def layer_timing(layer, choice) -> Timing:
    """The :class:`Timing` of a :class:`dse.workload.LayerWork` at ``choice``."""
    op = ops.of(layer)
    c, h, _ = layer.in_shape
    stats = layer.stats()
    row_sites = max(1.0, float(stats.get("active_in_mean", 0.0)) / h)
    return Timing(pipe=float(FIFO_LATENCY + op.pipeline(layer, choice)),
                  after=stage_tails(layer, choice),
                  in_row=row_sites * -(-c // choice.lanes))


@dataclass(frozen=True)
class Rows:
    """A layer's rows for :func:`lone_frame_latency`.

    Attributes
    ----------
    rows : int
        Rows of the layer's own output (its block, before the pass-through stages).
    rows_in : int
        Rows of its input stream.
    need : tuple of int
        ``need[r]``: the last row of the layer's input stream its output row ``r`` waits for.
    out : tuple of int
        ``out[q]``: the last own row the ``q``-th row of the layer's output stream (after its
        pass-through stages) waits for.
    producers : tuple of int
        Indices of the layers whose output streams feed this one (empty: the network input).
    sites : float
        Mean active sites of an output row.
    streams : bool
        A 1x1 stage, which takes its input site by site (a window stage waits for whole rows).
    late : tuple of int
        ``late[r]``: the last input row the last ``late_sites`` sites of output row ``r`` wait
        for (empty: none). The dense line buffer's emitter runs ``L`` steps behind its reader
        (:func:`contract.constants.dense_lag_steps`), and the reader steps on into the next
        output row's first columns only once that row's input rows are complete: a row's last
        ``L`` sites leave after the input rows of the next output row.
    late_sites : int
        ``L``.
    margin : int
        Rows at the top and at the bottom whose sites the block skips at a cycle a beat (a
        zero-padded conv computed on its inner sites, :attr:`dse.workload.LayerWork.margin`):
        the layer's cycles are spread over its other rows.
    """

    rows: int
    rows_in: int
    need: tuple
    out: tuple
    producers: tuple
    sites: float = 1.0
    streams: bool = False
    late: tuple = ()
    late_sites: int = 0
    margin: int = 0


def _window_need(rows_out: int, rows_in: int, *, stride: int, reach: int) -> tuple:
    return tuple(min(stride * r + reach, rows_in - 1) for r in range(rows_out))


def rows_of(layer, producers: tuple = ()) -> Rows:
    """The :class:`Rows` of a :class:`dse.workload.LayerWork` fed by the layers ``producers``."""
    _, h_in, _ = layer.in_shape
    _, h_out, _ = layer.out_shape
    if h_in == 1 and h_out == 1:
        need = (0,)
    elif layer.kernel > 1:
        need = _window_need(h_out, h_in, stride=layer.stride, reach=layer.kernel // 2)
    else:
        need = _window_need(h_out, h_in, stride=layer.stride, reach=0)
    out = tuple(range(h_out))
    for s in layer.stages:
        if s.get("shadow") or s.get("at") == "input":
            continue
        rows_after = s.get("out_shape", s["in_shape"])[1]
        if rows_after == len(out):
            continue
        if rows_after == 1:  # a global pool, a flatten: every row
            out = (out[-1],)
        elif s["op"] == "crop":  # the rows kept, from the k // 2-th
            off = (len(out) - rows_after) // 2
            out = out[off:off + rows_after]
        else:  # a 2x2 pool (floor): each output row waits for the rows it covers
            k = max(1, len(out) // rows_after)
            out = tuple(out[min(k * q + k - 1, len(out) - 1)] for q in range(rows_after))
    sites = max(1.0, float(getattr(layer, "active_out", h_out)) / h_out)
    late, lag = (), 0
    if layer.kernel > 1 and getattr(layer, "dense", False) and h_out > 1:
        kh, kw = kernel_hw(layer)
        lag = dense_lag_steps(kw, layer.stride)
        if lag:
            # the next output row's first reads; the last row drains without them
            late = _window_need(h_out, h_in, stride=layer.stride, reach=kh // 2)[1:] + (-1,)
    return Rows(rows=h_out, rows_in=h_in, need=need, out=out, producers=tuple(producers),
                sites=sites, streams=layer.kernel == 1 and h_in > 1, late=late,
                late_sites=lag, margin=int(getattr(layer, "margin", 0) or 0))


def lone_frame_latency(rows, cycles, timing=None) -> int:
    """Cycles from a lone frame's first input beat to the network's last output beat.

    The parameters are those of :func:`row_times`; the latency is the last layer's last row."""
    return math.ceil(row_times(rows, cycles, timing)[-1].done[-1])


@dataclass(frozen=True)
class LayerRows:
    """When a layer's rows of a lone frame are out (:func:`row_times`), in cycles from the
    frame's first input beat.

    Attributes
    ----------
    own : tuple of float
        Each row of the layer's own output (its block and requantizer, before the pass-through
        stages it feeds).
    done : tuple of float
        Each row of its output stream (after those stages), what its consumers wait for.
    start : tuple of float
        When each row of its own output begins (its input rows in and its previous row out).
    """

    own: tuple
    done: tuple
    start: tuple = ()


def _row_index(src_rows: int, rows_in: int, n: int) -> int:
    """The row of a producer's stream of ``src_rows`` rows that holds row ``n`` of a consumer's
    input of ``rows_in`` rows: the same row, or should the stream have others, in proportion."""
    return n if src_rows == rows_in else (n + 1) * src_rows // rows_in - 1


def row_times(rows, cycles, timing=None) -> list:
    """Per layer, the :class:`LayerRows` of a lone frame (what :func:`lone_frame_latency` ends
    with; ``benchmarks/latency_timeline.py`` sets them beside the RTL's).

    Parameters
    ----------
    rows : sequence of Rows
        One per layer, in topological order (:func:`rows_of`).
    cycles : sequence of number
        Each layer's cycles per frame under its chosen design (its stage: the block and the
        pass-through stages it feeds).
    timing : sequence of Timing or None
        Each layer's :func:`layer_timing` at its chosen design; None (for all, or a layer's):
        ``Timing()``, a constant :data:`PIPE_CYCLES`, no pass-through tails and the network
        input present at cycle 0.
    """
    if len(rows) != len(cycles) or not rows:
        raise ValueError("one Rows and one cycle count per layer")
    timing = [tm or Timing() for tm in (timing or [None] * len(rows))]
    if len(timing) != len(rows):
        raise ValueError("one Timing per layer")
    done: list[list[float]] = []   # per layer: the time each row of its output stream is out
    row_time: list[float] = []     # per layer: its cycles per row of its output stream
    owns: list[list[float]] = []   # per layer: the time each row of its own output is out
    begun: list[list[float]] = []  # per layer: when each row of its output stream begins
    firsts: list[list[float]] = []  # per layer: when each row of its own output begins
    for k, (rw, c, tm) in enumerate(zip(rows, cycles, timing, strict=True)):
        inner = rw.rows - 2 * rw.margin if rw.rows > 2 * rw.margin else rw.rows
        t_inner = float(c) / inner
        rows_in = rw.rows_in
        pipe = tm.pipe
        own, starts, prev = [], [], 0.0
        for p in rw.producers:
            if p >= k:
                raise ValueError(f"layer {k}: producer {p} is not an earlier layer")

        def at(stream, n, rows_in=rows_in, pipe=pipe):
            """``stream``'s entry for row ``n`` of the layer's input, through the pipe."""
            i = _row_index(len(stream), rows_in, n)
            return stream[min(max(i, 0), len(stream) - 1)] + pipe

        for r, n in enumerate(rw.need):
            # a border row of a cropped layer: its sites skipped, a cycle a beat (left out)
            t = t_inner if inner == rw.rows or rw.margin <= r < rw.rows - rw.margin else 0.0
            # the network input: its row n is in after (n + 1) rows' beats
            ready = 0.0 if rw.producers else (n + 1) * tm.in_row + pipe + t
            for p in rw.producers:
                end = at(done[p], n)
                if rw.streams:
                    # a 1x1 stage takes its input row site by site as it streams in over the
                    # producer's row time: one that keeps up ends a site's work after the row,
                    # a slower one its own row's work after the row began
                    ready = max(ready, end + t / rw.sites,
                                at(begun[p], n) + row_time[p] / rows[p].sites + t)
                else:
                    ready = max(ready, end + t)
            prev = max(prev + t, ready)
            starts.append(prev - t)
            if rw.late and rw.late[r] > n:
                # the row's last sites wait for the input rows the next output row reads first
                late = max((at(done[p], rw.late[r]) for p in rw.producers),
                           default=(rw.late[r] + 1) * tm.in_row + pipe)
                prev = max(prev, late + rw.late_sites * t / rw.sites)
            own.append(prev)
        done.append([own[i] + tm.after for i in rw.out])
        begun.append([starts[i] + tm.after for i in rw.out])
        row_time.append(float(c) / len(rw.out))
        owns.append(own)
        firsts.append(starts)
    return [LayerRows(tuple(o), tuple(d), tuple(b))
            for o, d, b in zip(owns, done, firsts, strict=True)]
