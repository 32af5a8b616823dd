"""Top-level composer: (QGraph, DesignPoint) -> one dataflow Component with one stream in, one out.

Every QGraph node becomes a pipeline stage: its op (:mod:`models.ops`) names the Amaranth block
and its constructor arguments; a compute node whose ``requant`` is set gets a
:class:`~hw.requant.Requantizer` after its block.

Each edge producer -> consumer gets a :class:`~hw.fifo.StreamFIFO` (``point.fifo_depth``) and, where
the producer's output lanes differ from the lanes the consumer takes, a
:class:`~hw.width.WidthConverter`; where a join's input is narrower than the join
(:meth:`models.qgraph.QGraph.stream_bits`), a :class:`~hw.extend.SignExtend`. A node with
several consumers feeds them through a broadcast fork (a beat leaves the fork once every branch
has taken it).

Residual skip FIFO depth
------------------------
Sized as :mod:`models.ops.add` describes (:func:`models.ops.add.branch_holds`): each stage's
``hold`` from its op, each edge's FIFO (:func:`~models.ops.add.fifo_hold`) and width converter
(one site). Sized this way the fork never waits for the skip branch while the long branch can
accept input, so the residual costs no throughput either. (Deadlock freedom alone needs less: a
stride-1 3x3 layer emits a site once ``2 * W + 1`` later sites have arrived; ``test_compose``
shows a too-small skip FIFO deadlocking.)
"""

from __future__ import annotations

import dataclasses
import importlib

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from common.errors import CodesignError
from models import ops, reference
from models.ops.add import branch_holds, fifo_hold
from models.ops.crop import folded_margin

from .extend import SignExtend
from .fifo import MIN_DEPTH, StreamFIFO
from .requant import Requantizer
from .skid import SkidBuffer
from .stream import TokenShape
from .width import WidthConverter

__all__ = ["Network", "block_class", "build_block"]


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

    def __init__(self, node, inputs, output, o_shape, in_lanes, slots=None, in_bits=None):
        self.node, self.inputs, self.output = node, inputs, output
        self.o_shape, self.in_lanes, self.slots = o_shape, in_lanes, slots
        self.in_bits = o_shape.data_width if in_bits is None else in_bits

    @property
    def hold(self) -> int:
        return ops.of(self.node).hold(self.node, slots=self.slots,
                                       beats=self.o_shape.beats_per_site)


def _requant(node, conv, out_bits, dsp_acc_bits=None):
    # the accumulator's real width (bounds over the input stream's whole range), so the requant
    # multiplier fits one DSP per lane; wider than the target's DSP: split (hw.requant)
    bits = reference.requant_acc_bits(node, conv.i_shape.data_width)
    width = conv.o_shape.data_width
    return Requantizer(shape=conv.o_shape, M=[int(v) for v in node.M.reshape(-1)], S=int(node.S),
                       lo=int(node.lo), hi=int(node.hi), out_width=out_bits,
                       acc_bits=max(2, min(bits, width)),
                       R=None if node.R is None else [int(v) for v in node.R.reshape(-1)],
                       dsp_acc_bits=dsp_acc_bits)


def block_class(op):
    """The Amaranth component class of ``op`` (its ``block`` entry, ``"module:Class"``)."""
    if op.block is None:
        raise CodesignError(f"op {op.name!r} has no hardware block")
    mod, cls = op.block.split(":")
    return getattr(importlib.import_module(mod), cls)


def build_block(node, choice, shape, *, abits: int = 8, dense: bool = False, margin: int = 0):
    """The hardware block of QGraph ``node`` under ``choice`` on an input stream ``shape``
    (``dense``: the network's frames hold every site; ``margin``: the border a window conv
    leaves to the crop after it, :func:`models.ops.crop.folded_margin`)."""
    op = ops.of(node)
    args = op.block_args(node, choice, shape, abits=abits, dense=dense)
    if margin:
        args["margin"] = margin
    return block_class(op)(**args)



class Network(wiring.Component):
    """The whole accelerator of a QGraph at a design point.

    Parameters
    ----------
    qgraph : models.qgraph.QGraph
    point : contract.point.DesignPoint
        Validated against ``qgraph`` here.
    skip_depth : int, optional
        Force every residual skip FIFO to this depth instead of the computed one (experiments
        only: too small a depth deadlocks the network).
    dsp_acc_bits : int, optional
        Widest accumulator one DSP of the target multiplies (``dse.cost.DSP_ACC_BITS``): the
        requantizers split wider ones (:class:`hw.requant.Requantizer`). Default: never split.

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

    def __init__(self, qgraph, point, *, skip_depth=None, dsp_acc_bits=None):
        point.validate(qgraph)
        self._skip_override = skip_depth
        self.dsp_acc_bits = dsp_acc_bits
        self.qgraph, self.point = qgraph, point
        self.abits = qgraph.abits
        #: signed lane bits of every node's output stream (docs/CONTRACT.md, "Stream widths")
        self.stream_bits = qgraph.stream_bits()
        self.dense = qgraph.dense
        self._subs = []          # (name, component)
        self._links = []         # (producer port, consumer port)
        self.stages = {}
        self.skip_depths = {}
        nodes = list(qgraph.nodes)
        consumers = {n.name: [c for c in nodes if n.name in c.inputs] for n in nodes}

        # lanes each node takes at its input(s)
        def in_lanes(n):
            if ops.of(n).compute:
                return point.choice(n.name).lanes
            return None  # pass-through stages inherit from their (first) producer

        def downstream_lanes(name):
            # the lanes of the first compute layer reached through pass-through stages
            for c in consumers[name]:
                ln = in_lanes(c) or downstream_lanes(c.name)
                if ln:
                    return ln
            return None

        inp = nodes[0]
        lanes0 = downstream_lanes(inp.name) or 1
        c0, h0, w0 = inp.out_shape
        self.i_shape = TokenShape(height=h0, width=w0, channels=c0, lanes=lanes0,
                                  data_width=self.abits)
        # the input node is a FIFO at the top-level input; its output feeds the first layers
        in_fifo = self._add(f"{inp.name}_fifo", StreamFIFO(layout=self.i_shape.layout(),
                                                          depth=point.fifo_depth))
        self._in_port = in_fifo.i
        self.stages[inp.name] = _Stage(inp, [], in_fifo.o, self.i_shape, lanes0)

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
        op = ops.of(n)
        if op.block is None:
            raise CodesignError(f"node {n.name}: op {n.op!r} has no hardware block")
        if op.compute:
            ch = self.point.choice(n.name)
            c, h, w = n.in_shape
            shape = TokenShape(height=h, width=w, channels=c, lanes=ch.lanes,
                               data_width=self.stages[n.inputs[0]].o_shape.data_width)
            in_lanes = ch.lanes
        else:
            ch = None
            shape = self.stages[n.inputs[0]].o_shape
            lanes = op.stage_lanes(n, shape.lanes)
            if lanes != shape.lanes:  # a join that needs fewer lanes: a converter before it
                shape = dataclasses.replace(shape, lanes=lanes)
            # a join takes its inputs at its own width (the narrower one is sign-extended)
            shape = dataclasses.replace(shape, data_width=op.stage_in_bits(
                n, self.stream_bits[n.name]))
            in_lanes = shape.lanes
        # submodule names as in the Verilog hierarchy that the resource fit reads
        suffix = "conv" if op.compute else op.name
        block = self._add(f"{n.name}_{suffix}", build_block(
            n, ch, shape, abits=shape.data_width, dense=self.dense,
            margin=folded_margin(self.qgraph, n) if op.compute else 0))
        out, o_shape = block.o, block.o_shape
        if op.compute and n.requant:
            rq = self._add(f"{n.name}_requant", _requant(n, block, self.stream_bits[n.name],
                                                             self.dsp_acc_bits))
            # the MAC unit's enable starts at a register, not at the FIFO after the requantizer
            skid = self._add(f"{n.name}_skid", SkidBuffer(layout=block.o_shape.layout()))
            self._links += [(block.o, skid.i), (skid.o, rq.i)]
            out, o_shape = rq.o, rq.o_shape
        if self.stream_bits[n.name] not in (None, o_shape.data_width):
            raise AssertionError(f"{n.name}: the block's stream has {o_shape.data_width}-bit "
                                 f"lanes, the graph says {self.stream_bits[n.name]}")
        ports = [getattr(block, p) for p in op.in_ports]
        self.stages[n.name] = _Stage(n, ports, out, o_shape, in_lanes,
                                     getattr(block, "slots", None), in_bits=shape.data_width)

    # -- edges ---------------------------------------------------------------------------------
    def _edge_depth(self, src, n) -> int:
        """The FIFO depth of edge ``src -> n``: the point's, or what ``n``'s op asks of its input
        (:meth:`models.ops.base.Op.input_fifo_sites`)."""
        shape = self.stages[src].o_shape
        producer = self.stages[src].node
        return max(self.point.fifo_depth, ops.of(n).input_fifo_sites(n) * shape.beats_per_site,
                   ops.of(producer).output_fifo_sites(producer) * shape.beats_per_site)

    def _edge_hold(self, src, n):
        shape = self.stages[src].o_shape
        hold = fifo_hold(depth=max(self._edge_depth(src, n), MIN_DEPTH),
                         beats=shape.beats_per_site)
        if self.stages[n.name].in_lanes != shape.lanes:
            hold += 1  # the width converter holds one site
        return hold

    def _connect_edge(self, src, n, k):
        port = self._edge_src[src, n.name]
        st = self.stages[src]
        shape = st.o_shape
        depth = self._edge_depth(src, n)
        to_lanes = self.stages[n.name].in_lanes
        if len(n.inputs) == 2 and k == 1:
            to_lanes = self.stages[n.name].in_lanes  # the join's lanes (its first input's)
        if len(n.inputs) == 2:
            holds = branch_holds(self.qgraph, n, node_hold=lambda x: self.stages[x.name].hold,
                                 edge_hold=self._edge_hold)
            mine, other = holds[k], holds[1 - k]
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
            shape = conv.o_shape
        if shape.data_width != self.stages[n.name].in_bits:  # a join's narrower input
            ext = self._add(f"{src}_to_{n.name}{k}_extend",
                            SignExtend(shape=shape, data_width=self.stages[n.name].in_bits))
            self._links.append((out, ext.i))
            out = ext.o
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
