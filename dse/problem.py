"""The design-space problem the integer program and the greedy baseline both solve.

A :class:`Problem` is a list of priced :class:`Candidate` choices per layer, the stream edges
between layers, a budget and an accuracy bound; :func:`evaluate` prices one pick per layer
exactly as the program does (converters included) into a :class:`Solution`. Kept apart from
:mod:`dse.ilp` so that :mod:`dse.greedy` can use it without importing the solver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .cost import ACT_BITS, Cost, LayerChoice, converter_coefficients, converter_mux_inputs
from .devices import RESOURCES, Budget
from .latency import Timing, lone_frame_latency

__all__ = ["OBJECTIVES", "Candidate", "Problem", "Solution", "network_latency", "evaluate"]

OBJECTIVES = ("ii", "latency", "drop")


@dataclass(frozen=True)
class Candidate:
    """One priced choice for one layer."""

    choice: LayerChoice
    cost: Cost
    drop: float = 0.0
    #: Estimated critical path of the choice's blocks, ns (:func:`dse.fmax.choice_delay_ns`):
    #: a design's clock period is its slowest choice's. 0: not estimated.
    delay_ns: float = 0.0
    #: What the choice adds to its rows' times in a lone frame (:func:`dse.latency.layer_timing`);
    #: None: :class:`dse.latency.Timing`'s defaults.
    timing: Timing | None = None
    #: The choice's multipliers (:func:`dse.cost.multipliers`): what
    #: :func:`dse.ilp.fewest_multipliers` minimises. 0: not counted.
    multipliers: int = 0


@dataclass(frozen=True)
class Problem:
    """An instance of the integer program.

    Attributes
    ----------
    names : tuple of str
        Layer names, in order.
    candidates : tuple of tuple of Candidate
        Per layer, the choices to pick from.
    edges : tuple of (int, int)
        (producer, consumer) layer indices of every stream between compute layers.
    budget : Budget
        Resource limits.
    max_drop : float or None
        Bound on the predicted accuracy drop (None: unbounded).
    objective : str
        ``"ii"``, ``"latency"`` or ``"drop"``.
    timed : bool
        The ``"ii"`` and ``"latency"`` objectives count time, not cycles: cycles x the design's
        estimated clock period (its slowest candidate's ``delay_ns``), so a faster clock can win
        over fewer cycles (:meth:`key`). Every candidate then needs its ``delay_ns``.
    converter : dict
        ``{"lut": (base, per_bit[, fifo_per_bit[, per_mux_bit]]), "ff": (...)}`` of a width
        converter, as :func:`dse.cost.converter_coefficients` gives them: a converter from width
        ``a`` to ``b`` costs ``base + bits * (per_bit * (a + b) + per_mux_bit * (a (a + 1) / 2 +
        a b))`` (:func:`dse.cost.converter_mux_inputs`), and on the edge that carries the
        consumer's input FIFO (:meth:`fifo_edge`) the FIFO, built at the producer's width ``a``
        but priced in the layer at ``b``, adds ``fifo_per_bit * bits * (a - b)`` (negative
        where the producer is narrower).
    routing : tuple of float
        ``(a, b, c, d)``: a timed design whose slowest candidate's delay is ``delay_ns`` runs at
        a period of ``delay_ns x (a + b x lut) + c + d x lut`` ns for its LUTs (a fuller part
        routes longer, :func:`dse.fmax.lut_routing`: a factor, an added wire delay, or both), so
        its time is cycles x that period; ``(a, b)`` is a factor alone; empty: the period is the
        delay (the fitted networks' mean share, the same for every design).
    edge_bits : tuple of int
        Per edge, the lane bits of its stream (the consumer's ``in_bits``); empty: all
        :data:`ACT_BITS`.
    edge_to_pe : tuple of bool
        Per edge, whether its converter goes to the second layer's ``pe`` rather than its
        ``lanes``: a stream that enters a residual add as a later input, converted to the add's
        width, its first input's (:meth:`dse.workload.Workload.converter_edges`); no input FIFO
        on such an edge. Empty: none.
    rows : tuple of dse.latency.Rows
        Per layer, its rows for the reported lone-frame latency (:mod:`dse.latency`); empty: the
        program's own ``II + sum(fill)`` is reported.
    pool : tuple of tuple of Candidate
        Per layer, more choices that only :func:`dse.ilp.trim` moves to: every divisor of the
        channel counts (:func:`dse.pareto.pool`), where ``candidates`` keep a thinned grid to keep
        the program small; empty: ``candidates`` only.
    """

    names: tuple[str, ...]
    candidates: tuple[tuple[Candidate, ...], ...]
    edges: tuple[tuple[int, int], ...]
    budget: Budget
    max_drop: float | None = None
    objective: str = "ii"
    converter: dict = field(default_factory=dict)
    rows: tuple = ()
    edge_bits: tuple = ()
    edge_to_pe: tuple = ()
    pool: tuple = ()
    timed: bool = False
    routing: tuple = ()

    def __post_init__(self):
        if len(self.names) != len(self.candidates):
            raise ValueError("one candidate list per layer")
        for name, cands in zip(self.names, self.candidates, strict=True):
            if not cands:
                raise ValueError(f"layer {name} has no candidate choice")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, not {self.objective!r}")
        if self.pool and len(self.pool) != len(self.candidates):
            raise ValueError("pool: one list of extra candidates per layer")
        if self.edge_to_pe and len(self.edge_to_pe) != len(self.edges):
            raise ValueError("edge_to_pe: one flag per edge")
        if not self.converter:
            object.__setattr__(self, "converter", converter_coefficients())
        if self.timed and any(c.delay_ns <= 0 for cs in (*self.candidates, *self.pool)
                              for c in cs):
            raise ValueError("a timed problem needs every candidate's delay_ns")

    def cycles(self, sol: Solution) -> int:
        """The cycles the objective counts: the II, or the program's own latency."""
        return sol.latency if self.objective == "latency" else sol.ii

    def period(self, delay_ns: float, lut: float) -> float:
        """The clock period (ns) of a design with ``lut`` LUTs whose slowest candidate's delay is
        ``delay_ns``, derated for routing (:attr:`routing`); non-decreasing in both."""
        if not self.routing:
            return delay_ns
        a, b, c, d = (*self.routing, 0.0, 0.0)[:4]
        return delay_ns * (a + b * lut) + c + d * lut

    @property
    def routes_by_lut(self) -> bool:
        """Whether a design's routing derate grows with its LUTs (:attr:`routing`)."""
        return any(v for v in self.routing[1::2])

    def lut_floor(self) -> int:
        """The fewest LUTs any design can have: each layer's cheapest candidate (pool too), less
        what a converter edge can take off (a consumer's input FIFO at a narrower producer's
        width, :attr:`converter`)."""
        pools = self.pool or ((),) * len(self.candidates)
        allc = [(*cs, *extra) for cs, extra in zip(self.candidates, pools, strict=True)]
        floor = sum(min(c.cost.lut for c in cs) for cs in allc)
        for e, (p, c) in enumerate(self.edges):
            if not self.fifo_edge(e):
                continue
            pes = {x.choice.pe for x in allc[p]}
            lanes = {self.sink_width(e, x.choice) for x in allc[c]}
            floor += min((min(0.0, self.converter_price(a, b, self.bits_of(e), fifo=True)["lut"])
                          for a in pes for b in lanes), default=0.0)
        return math.floor(floor)

    def key(self, sol: Solution) -> float:
        """What the objective minimises: the predicted drop, or cycles (:meth:`cycles`), times
        the estimated clock period in ns derated for routing at the design's LUTs
        (:meth:`period`) when the problem is :attr:`timed`."""
        if self.objective == "drop":
            return sol.drop
        if not self.timed:
            return self.cycles(sol)
        return self.cycles(sol) * self.period(sol.delay_ns, sol.lut)

    def bits_of(self, e: int) -> int:
        """Lane bits of edge ``e``'s stream."""
        return self.edge_bits[e] if self.edge_bits else ACT_BITS

    def to_pe(self, e: int) -> bool:
        """Whether edge ``e`` is converted to its second layer's ``pe`` (:attr:`edge_to_pe`)."""
        return bool(self.edge_to_pe) and bool(self.edge_to_pe[e])

    def sink_width(self, e: int, choice) -> int:
        """The width edge ``e``'s converter goes to when its second layer takes ``choice``: its
        ``lanes``, or its ``pe`` on an edge into a join (:attr:`edge_to_pe`)."""
        return choice.pe if self.to_pe(e) else choice.lanes

    def fifo_edge(self, e: int) -> bool:
        """Whether edge ``e`` carries its consumer's input FIFO: the first edge into it (the
        stream from its first producer; a join's output takes its first input's width). An
        edge into a join (:attr:`edge_to_pe`) never does."""
        if self.to_pe(e):
            return False
        c = self.edges[e][1]
        return all(c2 != c or self.to_pe(e2) for e2, (_, c2) in enumerate(self.edges[:e]))

    def converter_terms(self, r: str, fifo: bool) -> tuple[float, float, float]:
        """``(base, per_in_bit, per_out_bit)`` of resource ``r``: a converter from ``width_in``
        (the producer's) to ``width_out`` lanes of ``bits`` bits costs ``base + bits *
        (per_in_bit * width_in + per_out_bit * width_out)``; with ``fifo``, the consumer's
        input FIFO moved to the producer's width (see :attr:`converter`)."""
        base, per_bit, *rest = self.converter[r]
        k = rest[0] if fifo and rest else 0.0
        return base, per_bit + k, per_bit - k

    def converter_mux(self, r: str) -> float:
        """Resource ``r`` per bit of the input lanes a converter's buffer entries choose among
        (:func:`dse.cost.converter_mux_inputs`); 0 for a model without that term."""
        c = self.converter[r]
        return float(c[3]) if len(c) > 3 else 0.0

    def converter_price(self, width_in: int, width_out: int, bits: int = ACT_BITS, *,
                        fifo: bool = False) -> dict:
        """``{"lut", "ff"}`` (unrounded) of a converter from ``width_in`` (the producer's) to
        ``width_out`` lanes of ``bits`` bits (:meth:`converter_terms`)."""
        if width_in == width_out:
            return {"lut": 0.0, "ff": 0.0}
        out = {}
        inputs = converter_mux_inputs(width_in, width_out)
        for r in self.converter:
            base, a_in, a_out = self.converter_terms(r, fifo)
            out[r] = base + bits * (a_in * width_in + a_out * width_out
                                    + self.converter_mux(r) * inputs)
        return out


@dataclass(frozen=True)
class Solution:
    """A decoded design point with its predicted figures."""

    choices: tuple[LayerChoice, ...]
    costs: tuple[Cost, ...]
    drops: tuple[float, ...]
    ii: int
    latency: int
    dsp: int
    lut: int
    ff: int
    bram18: int
    drop: float
    converters: int
    solve_seconds: float = 0.0
    proven: bool = True
    #: The lone-frame latency a user is told (:func:`dse.latency.lone_frame_latency`, row by
    #: row); ``latency`` is the program's own ``II + sum(fill)``, which its objective minimises.
    lone_latency: int = 0
    #: The program's own choices where :func:`dse.ilp.trim` moved some to the problem's ``pool``
    #: (what a later solve can take as its first incumbent); empty: ``choices`` are the program's.
    solved_choices: tuple = ()
    #: The design's estimated clock period: its slowest choice's ``delay_ns`` (0: not
    #: estimated).
    delay_ns: float = 0.0
    #: Its choices' multipliers (:attr:`Candidate.multipliers`, summed).
    multipliers: int = 0

    @property
    def reported_latency(self) -> int:
        """The lone-frame latency reports give: the row model's where the problem has rows."""
        return self.lone_latency or self.latency

    def resources(self) -> dict:
        return {r: getattr(self, r) for r in RESOURCES}



def network_latency(cands, edges=()) -> tuple[int, int]:
    """``(II, latency)`` of one candidate per layer, as the program prices them.

    The initiation interval is the slowest stage's cycles per frame (every layer is its own
    pipeline stage). A lone frame streams in at the bottleneck's pace and then drains through
    every stage: ``II + sum(fill)``.
    """
    ii = max(c.cost.cycles for c in cands)
    return ii, ii + sum(c.cost.fill for c in cands)


def evaluate(problem: Problem, picks) -> Solution:
    """Figures of an assignment ``picks`` (candidate index per layer), as the program sees it."""
    cands = [problem.candidates[i][k] for i, k in enumerate(picks)]
    ii, latency = network_latency(cands, problem.edges)
    res = {r: sum(getattr(c.cost, r) for c in cands) for r in RESOURCES}
    n_conv = 0
    for e, (p, c) in enumerate(problem.edges):
        width_out = problem.sink_width(e, cands[c].choice)
        price = problem.converter_price(cands[p].choice.pe, width_out,
                                        problem.bits_of(e), fifo=problem.fifo_edge(e))
        if cands[p].choice.pe != width_out:
            n_conv += 1
        res["lut"] += price["lut"]
        res["ff"] += price["ff"]
    # Converter prices are fractional; the budget is an integer, so ceil(total) <= limit
    # exactly when total <= limit, as in the program.
    res = {r: math.ceil(v - 1e-9) for r, v in res.items()}
    lone = (lone_frame_latency(problem.rows, [c.cost.cycles for c in cands],
                               [c.timing for c in cands])
            if problem.rows else 0)
    return Solution(
        choices=tuple(c.choice for c in cands), costs=tuple(c.cost for c in cands),
        drops=tuple(c.drop for c in cands), ii=ii, latency=latency, drop=sum(c.drop for c in cands),
        converters=n_conv, lone_latency=lone, delay_ns=max(c.delay_ns for c in cands),
        multipliers=sum(c.multipliers for c in cands), **res,
    )
