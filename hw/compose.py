"""Top-level composer: (QGraph, DesignPoint) -> one dataflow Component with one stream in, one out.

Every QGraph node becomes a pipeline stage on the token stream:

==========================  ==============================================================
node                        stage
==========================  ==============================================================
``conv`` k=3, groups=1      :class:`~hw.conv3x3.Conv3x3` (line buffer + MACs) + requantizer
``conv`` k=3, depthwise     :class:`~hw.dwconv.DWConv3x3` (line buffer + MACs) + requantizer
``conv`` k=1                :class:`~hw.conv1x1.Conv1x1` + requantizer
``add``                     :class:`~hw.residual.ResidualAdd`
``gap``                     :class:`~hw.pool_fc.GlobalAvgPool`
``linear``                  :class:`~hw.conv1x1.Conv1x1` on the one pooled site (+ requantizer
                            unless ``requant`` is False: the classifier's int32 logits)
==========================  ==============================================================

Each edge producer -> consumer gets a :class:`~hw.fifo.StreamFIFO` (``point.fifo_depth``) and, where
the producer's output lanes differ from the lanes the consumer takes, a
:class:`~hw.width.WidthConverter`. A node with several consumers feeds them through a broadcast
fork (a beat leaves the fork once every branch has taken it).

Residual skip FIFO depth
------------------------
A residual block forks one stream into a long branch (convs) and a short one (the skip) that meet
at the ``add``. The fork can only pass a beat when both branches accept it, and the add only
consumes when both branches offer the *same* site. So while the long branch holds sites it has not
yet turned into output, the skip branch must hold the same sites, or the fork stalls the long
branch and, since a 3x3 layer cannot emit a row until the next row has arrived, the network
deadlocks. The skip FIFO therefore holds, in beats, the most sites the long branch can have in
flight (:func:`sites_in_flight`), summed over its stages:

- 3x3 layer (line buffer of ``N`` row slots): the writer may run ``N - 2`` rows ahead of the
  row the emitter is centred on, so up to ``(N - 1) * W`` input sites, plus the window/compute
  pipeline (2 sites) and the requantizer (1);
- 1x1 layer: its two input banks and its output register (3 sites);
- requantizer (3 beats), width converter (``a + b`` values), residual add (2 beats): one site each,
  rounded up;
- each inter-layer FIFO: ``ceil(depth / beats_per_site) + 1`` sites,

minus what the short branch itself holds, plus one site of slack, times the skip stream's beats per
site (never less than ``fifo_depth``). Sized this way the fork never waits for the skip branch while
the long branch can accept input, so the residual costs no throughput either. (Deadlock freedom
alone needs less: a stride-1 3x3 layer emits a site once ``2 * W + 1`` later sites have arrived;
``test_compose`` shows a too-small skip FIFO deadlocking.)
"""

from __future__ import annotations

import math

import torch
from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from common.errors import CodesignError
from models import reference

from . import line_buffer
from .conv1x1 import Conv1x1
from .conv3x3 import Conv3x3
from .dwconv import DWConv3x3
from .fifo import MIN_DEPTH, StreamFIFO
from .pool_fc import GlobalAvgPool
from .requant import Requantizer
from .residual import ResidualAdd
from .stream import TokenShape
from .width import WidthConverter

__all__ = ["Network", "sites_in_flight"]


class _Fork(wiring.Component):
    """Broadcast one stream to ``n`` consumers; a beat leaves once all of them have taken it."""

    def __init__(self, layout, n):
        self.layout, self.n = layout, n
        ports = {"i": In(stream.Signature(layout))}
        ports.update({f"o{k}": Out(stream.Signature(layout)) for k in range(n)})
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        done = Signal(self.n)
        outs = [getattr(self, f"o{k}") for k in range(self.n)]
        taken = [done[k] | outs[k].ready for k in range(self.n)]
        all_taken = Signal()
        m.d.comb += all_taken.eq(_all(taken))
        m.d.comb += self.i.ready.eq(all_taken)
        for k, o in enumerate(outs):
            m.d.comb += [o.valid.eq(self.i.valid & ~done[k]), o.payload.eq(self.i.payload)]
        with m.If(self.i.valid):
            with m.If(all_taken):
                m.d.sync += done.eq(0)
            with m.Else():
                for k, o in enumerate(outs):
                    with m.If(o.ready):
                        m.d.sync += done[k].eq(1)
        return m


def _all(bits):
    out = bits[0]
    for b in bits[1:]:
        out = out & b
    return out


class _Stage:
    """A node's hardware: input port(s), output port, and the shape of its output stream."""

    def __init__(self, node, inputs, output, o_shape, in_lanes, hold):
        self.node, self.inputs, self.output = node, inputs, output
        self.o_shape, self.in_lanes, self.hold = o_shape, in_lanes, hold


def _requant(node, conv, abits):
    # the accumulator's real width (bounds over the whole activation range), so the requant
    # multiplier fits one DSP per lane
    qmax = (1 << (abits - 1)) - 1
    bits = reference.acc_bits(torch.from_numpy(node.weight), torch.from_numpy(node.bias),
                              -qmax, qmax)
    width = conv.o_shape.data_width
    return Requantizer(shape=conv.o_shape, M=[int(v) for v in node.M.reshape(-1)], S=int(node.S),
                       lo=int(node.lo), hi=int(node.hi), out_width=abits,
                       acc_bits=max(2, min(bits, width)))


def sites_in_flight(kind: str, *, width: int = 1, beats: int = 1, depth: int = 0,
                    slots: int = line_buffer.DEFAULT_SLOTS) -> int:
    """Most sites a stage can hold between taking a site's first beat and emitting its last.

    See the module docstring; ``width`` is the map width, ``beats`` the stream's beats per site,
    ``depth`` a FIFO's depth in beats, ``slots`` a line buffer's row slots.
    """
    if kind in ("conv3x3", "dwconv3x3"):
        return (slots - 1) * width + 2 + 1   # rows held, pipeline, requantizer
    if kind in ("conv1x1", "linear"):
        return 3 + 1                    # two banks, output register, requantizer
    if kind == "fifo":
        return math.ceil(depth / beats) + 1
    if kind in ("width", "add", "input"):
        return 1
    if kind == "gap":
        raise ValueError("a global pool cannot sit inside a residual branch")
    raise ValueError(f"unknown stage kind {kind!r}")


def _kind(node):
    if node.op == "conv":
        if node.kernel == 1:
            return "conv1x1"
        return "conv3x3" if node.groups == 1 else "dwconv3x3"
    return node.op


class Network(wiring.Component):
    """The whole accelerator of a QGraph at a design point.

    Parameters
    ----------
    qgraph : models.qgraph.QGraph
    point : hw.point.DesignPoint
        Validated against ``qgraph`` here.
    skip_depth : int, optional
        Force every residual skip FIFO to this depth instead of the computed one (experiments
        only: too small a depth deadlocks the network).

    Attributes
    ----------
    i : In(stream.Signature(i_shape.layout()))
        Input map tokens (int8, ``i_shape.lanes`` = the first layer's lanes).
    o : Out(stream.Signature(o_shape.layout()))
        Output tokens: the last node's stream (a classifier: one token at (0, 0) carrying the
        int32 logits, then eof).
    i_shape, o_shape : TokenShape
    skip_depths : dict
        ``{(producer, add node): depth}`` of every computed residual skip FIFO.
    """

    def __init__(self, qgraph, point, *, skip_depth=None):
        point.validate(qgraph)
        self._skip_override = skip_depth
        self.qgraph, self.point = qgraph, point
        self.abits = qgraph.abits
        self._subs = []          # (name, component)
        self._links = []         # (producer port, consumer port)
        self.stages = {}
        self.skip_depths = {}
        nodes = list(qgraph.nodes)
        consumers = {n.name: [c for c in nodes if n.name in c.inputs] for n in nodes}

        # lanes each node takes at its input(s)
        def in_lanes(n):
            if n.op in ("conv", "linear"):
                return point.choice(n.name).lanes
            return None  # add/gap inherit from their (first) producer

        inp = nodes[0]
        first = [in_lanes(c) for c in consumers[inp.name] if in_lanes(c)]
        lanes0 = first[0] if first else 1
        c0, h0, w0 = inp.out_shape
        self.i_shape = TokenShape(height=h0, width=w0, channels=c0, lanes=lanes0,
                                  data_width=self.abits)
        # the input node is a FIFO at the top-level input; its output feeds the first layers
        in_fifo = self._add(f"{inp.name}_fifo", StreamFIFO(layout=self.i_shape.layout(),
                                                          depth=point.fifo_depth))
        self._in_port = in_fifo.i
        self.stages[inp.name] = _Stage(inp, [], in_fifo.o, self.i_shape, lanes0,
                                       sites_in_flight("input", width=w0, beats=1))

        for n in nodes[1:]:
            self._build(n)

        # outputs: fork where a node feeds several consumers
        self._edge_src = {}
        for n in nodes:
            cons = consumers[n.name]
            st = self.stages[n.name]
            if not cons:
                continue
            if len(cons) > 1:
                fork = _Fork(st.o_shape.layout(), len(cons))
                self._subs.append((f"{n.name}_fork", fork))
                self._links.append((st.output, fork.i))
                ports = [getattr(fork, f"o{k}") for k in range(len(cons))]
            else:
                ports = [st.output]
            for c, port in zip(cons, ports, strict=True):
                self._edge_src[n.name, c.name] = port
        for n in nodes[1:]:
            for k, src in enumerate(n.inputs):
                self._connect_edge(src, n, k)
        self.o_shape = self.stages[nodes[-1].name].o_shape
        self._out_port = self.stages[nodes[-1].name].output
        super().__init__({
            "i": In(stream.Signature(self.i_shape.layout())),
            "o": Out(stream.Signature(self.o_shape.layout())),
        })

    # -- stages --------------------------------------------------------------------------------
    def _add(self, name, comp):
        self._subs.append((name, comp))
        return comp

    def _build(self, n):
        kind = _kind(n)
        name = n.name
        if kind in ("conv1x1", "conv3x3", "dwconv3x3", "linear"):
            ch = self.point.choice(name)
            c, h, w = n.in_shape
            shape = TokenShape(height=h, width=w, channels=c, lanes=ch.lanes,
                               data_width=self.abits)
            weight = n.weight
            if kind == "conv3x3":
                conv = Conv3x3(shape=shape, c_out=n.out_shape[0], pe=ch.pe, stride=n.stride,
                               fmt=ch.format, weight=weight, bias=n.bias)
            elif kind == "dwconv3x3":
                conv = DWConv3x3(shape=shape, stride=n.stride, fmt=ch.format, weight=weight,
                                 bias=n.bias)
            else:
                conv = Conv1x1(shape=shape, c_out=n.out_shape[0], pe=ch.pe, fmt=ch.format,
                               weight=weight.reshape(n.out_shape[0], -1), bias=n.bias)
            self._add(f"{name}_conv", conv)
            out, o_shape = conv.o, conv.o_shape
            if n.requant:
                rq = self._add(f"{name}_requant", _requant(n, conv, self.abits))
                self._links.append((conv.o, rq.i))
                out, o_shape = rq.o, rq.o_shape
            slots = getattr(conv, "slots", line_buffer.DEFAULT_SLOTS)
            self.stages[name] = _Stage(n, [conv.i], out, o_shape, ch.lanes,
                                       sites_in_flight(kind, width=w, beats=c // ch.lanes,
                                                       slots=slots))
        elif kind == "add":
            a = self.stages[n.inputs[0]].o_shape
            add = self._add(f"{name}_add", ResidualAdd(shape=a, Ma=int(n.Ma), Mb=int(n.Mb),
                                                       S=int(n.S), lo=int(n.lo), hi=int(n.hi)))
            self.stages[name] = _Stage(n, [add.a, add.b], add.o, add.shape, a.lanes,
                                       sites_in_flight("add", width=a.width, beats=1))
        elif kind == "gap":
            src = self.stages[n.inputs[0]].o_shape
            gap = self._add(f"{name}_gap", GlobalAvgPool(shape=src))
            self.stages[name] = _Stage(n, [gap.i], gap.o, gap.o_shape, src.lanes, 0)
        else:
            raise CodesignError(f"node {name}: op {n.op!r} has no hardware block")

    # -- edges ---------------------------------------------------------------------------------
    def _edge_hold(self, shape, depth, lanes_to):
        beats = shape.beats_per_site
        hold = sites_in_flight("fifo", beats=beats, depth=max(depth, MIN_DEPTH))
        if lanes_to != shape.lanes:
            hold += sites_in_flight("width", width=shape.width, beats=beats)
        return hold

    def _path_hold(self, start, end_node, end_input):
        """Most sites in flight from ``start``'s output to input ``end_input`` of ``end_node``."""
        names = [n.name for n in self.qgraph.nodes]
        lo, hi = names.index(start), names.index(end_node.name)
        best = {start: 0}
        for n in self.qgraph.nodes[lo + 1:hi]:
            reach = [best[s] + self._edge_hold(self.stages[s].o_shape, self.point.fifo_depth,
                                               self.stages[n.name].in_lanes)
                     for s in n.inputs if s in best]
            if reach:
                best[n.name] = max(reach) + self.stages[n.name].hold
        src = end_node.inputs[end_input]
        if src not in best:
            return None
        return best[src]

    def _connect_edge(self, src, n, k):
        port = self._edge_src[src, n.name]
        st = self.stages[src]
        shape = st.o_shape
        depth = self.point.fifo_depth
        to_lanes = self.stages[n.name].in_lanes
        if n.op == "add" and k == 1:
            to_lanes = self.stages[n.inputs[0]].o_shape.lanes
        if n.op == "add":
            fork = self.qgraph.fork_of(n)
            mine = self._path_hold(fork, n, k)
            other = self._path_hold(fork, n, 1 - k)
            if mine is not None and other is not None and other > mine:
                beats = shape.channels // to_lanes
                depth = max(depth, (other - mine + 1) * max(beats, shape.beats_per_site))
                if self._skip_override is not None:
                    depth = self._skip_override
                self.skip_depths[src, n.name] = depth
        fifo = self._add(f"{src}_to_{n.name}{k}_fifo",
                         StreamFIFO(layout=shape.layout(), depth=depth))
        self._links.append((port, fifo.i))
        out = fifo.o
        if to_lanes != shape.lanes:
            conv = self._add(f"{src}_to_{n.name}{k}_width",
                             WidthConverter(shape=shape, lanes_out=to_lanes))
            self._links.append((out, conv.i))
            out = conv.o
        self._links.append((out, self.stages[n.name].inputs[k]))

    def elaborate(self, platform):
        m = Module()
        for name, comp in self._subs:
            m.submodules[name] = comp
        for a, b in self._links:
            wiring.connect(m, a, b)
        wiring.connect(m, wiring.flipped(self.i), self._in_port)
        wiring.connect(m, self._out_port, wiring.flipped(self.o))
        return m
