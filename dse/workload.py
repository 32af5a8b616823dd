"""Workload: one record per configurable layer of a network, with its measured activity.

A :class:`LayerWork` carries what the cost model prices: the layer kind, channels, kernel, stride,
input/output map size, the mean and 95th-percentile number of active sites per frame (dense maps:
every site), and for 3x3 layers the histogram of active-neighbour counts. It keeps the field names
of :class:`models.qgraph.QNode` (``op``, ``in_shape``, ``out_shape``, ``kernel``, ``stride``,
``groups``) so that the hardware cycle functions, written against a ``QNode``, accept it directly.

Records are frozen dataclasses that round-trip through JSON (:meth:`Workload.to_json`).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, field, replace

from contract.constants import ACT_BITS, WEIGHT_FORMAT_NAMES
from models import ops
from models.ops.add import EDGE_HOLD_ESTIMATE, branch_holds
from models.ops.crop import folded_margin
from models.reference import requant_acc_bits

__all__ = [
    "LayerWork",
    "Workload",
    "layer_kind",
    "from_qgraph",
    "from_bundle",
    "measure_activity",
    "synthetic",
    "skip_sites",
]

def layer_kind(op: str, kernel: int, groups: int, c_in: int, kernel_w: int = 0) -> str:
    """The op (hardware block kind) of a compute node with this geometry."""
    node = _Geometry(op, kernel, groups, (c_in, 1, 1), kernel_w)
    kind = ops.of(node)
    if not kind.compute:
        raise ValueError(f"op {op!r} is not a compute node")
    return kind.name


@dataclass(frozen=True)
class _Geometry:
    op: str
    kernel: int
    groups: int
    in_shape: tuple
    kernel_w: int = 0


@dataclass(frozen=True)
class LayerWork:
    """One compute layer as the cost model sees it.

    Attributes
    ----------
    name : str
        Node name in the QGraph (the design point's layer name).
    op : str
        ``"conv"`` or ``"linear"``.
    in_shape, out_shape : tuple of int
        ``(C, H, W)``; a linear layer has ``(C, 1, 1)``.
    kernel, stride, groups : int
        Convolution geometry (``1, 1, 1`` for linear).
    active_in, active_in_p95, active_out, active_out_p95 : float
        Active sites per frame at the layer's input and output (mean and 95th percentile).
    neighbour_hist : tuple of float
        For 3x3 layers, fraction of output sites with 0..9 active 3x3 neighbours (incl. itself);
        empty for 1x1/linear.
    producers : tuple of str
        Compute layers whose output streams reach this layer's input (through add/gap nodes); a
        stream width converter sits on each edge whose widths differ.
    stages : tuple of dict
        Pass-through pipeline stages (``add``, ``gap``, ...) fed by this layer's output stream,
        which run at this layer's output width (``pe``): ``{"name", "op", "in_shape",
        "active_in"}`` (and ``out_shape``, ``active_out`` when the stage changes the map).
        Their cycles per frame count toward the II through this layer's choice.
    formats : tuple of str
        The weight formats the layer may take; empty: any the explorer is given. An imported
        QONNX model's layers keep their own (one each).
    acc_bits : tuple of (str, int)
        The accumulator's real width per weight format, from the quantized weights
        (:func:`models.reference.requant_acc_bits`, as the composer sizes the requantizer);
        empty: the op's bound from the fan-in alone.
    dense : bool
        The network's frames hold every site (:attr:`models.qgraph.QGraph.dense`): a window
        layer is built on the dense line buffer and priced as such.
    in_bits : int
        Lane bits of the layer's input stream (:meth:`models.qgraph.QGraph.stream_bits`): its
        FIFO, line buffer and the converter before it are priced at that width. A stage's own
        input stream width is its ``"bits"`` entry (absent: :data:`ACT_BITS`).
    margin : int
        The border a dense stride-1 window conv leaves to the crop after it
        (:func:`models.ops.crop.folded_margin`): its block computes only the inner sites, and
        the crop stage's ``active_in`` counts only those. 0: every site.
    requant : bool
        A requantizer follows the layer's accumulator (the graph node's ``requant``); given as
        None, the op's default (:attr:`models.ops.base.Op.default_requant`: a linear layer, the
        classifier, none; every other layer one). Priced, and counted in the pipeline, only
        where True.
    """

    name: str
    op: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: int = 1
    kernel_w: int = 0
    stride: int = 1
    groups: int = 1
    active_in: float = -1.0
    active_in_p95: float = -1.0
    active_out: float = -1.0
    active_out_p95: float = -1.0
    neighbour_hist: tuple[float, ...] = ()
    producers: tuple[str, ...] = field(default_factory=tuple)
    stages: tuple = field(default_factory=tuple)
    formats: tuple[str, ...] = ()
    acc_bits: tuple = ()
    dense: bool = False
    in_bits: int = ACT_BITS
    margin: int = 0
    requant: bool | None = None

    def __post_init__(self):
        pairs = self.acc_bits.items() if isinstance(self.acc_bits, dict) else self.acc_bits
        object.__setattr__(self, "acc_bits", tuple(sorted((str(f), int(b)) for f, b in pairs)))
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"layer name must be a non-empty string, not {self.name!r}")
        for key in ("in_shape", "out_shape"):
            shape = tuple(int(v) for v in getattr(self, key))
            if len(shape) != 3 or min(shape) < 1:
                raise ValueError(f"layer {self.name}: {key} must be (C, H, W) >= 1, not {shape}")
            object.__setattr__(self, key, shape)
        layer_kind(self.op, self.kernel, self.groups, self.in_shape[0], self.kernel_w)
        if self.stride not in (1, 2):
            raise ValueError(f"layer {self.name}: stride must be 1 or 2, not {self.stride!r}")
        if not isinstance(self.margin, int) or self.margin < 0 or (
                self.margin and (self.stride != 1 or not self.dense
                                 or 2 * self.margin >= min(self.out_shape[1:]))):
            raise ValueError(f"layer {self.name}: margin must be 0, or on a dense map at stride "
                             f"1 less than half the output map, not {self.margin!r}")
        if not isinstance(self.in_bits, int) or not 2 <= self.in_bits <= 32:
            raise ValueError(f"layer {self.name}: in_bits must be an integer in [2, 32], not "
                             f"{self.in_bits!r}")
        try:
            ops.of(self).check_geometry(self)
        except ValueError as exc:
            raise ValueError(f"layer {self.name}: {exc}") from None
        if self.requant is None:
            object.__setattr__(self, "requant", ops.of(self).default_requant)
        elif not isinstance(self.requant, bool):
            raise ValueError(f"layer {self.name}: requant must be true or false, not "
                             f"{self.requant!r}")
        # Unmeasured activity means a dense map: every site active.
        h_in, w_in = self.in_shape[1:]
        h_out, w_out = self.out_shape[1:]
        for key, dense in (("active_in", h_in * w_in), ("active_out", h_out * w_out)):
            if getattr(self, key) < 0:
                object.__setattr__(self, key, float(dense))
            if getattr(self, key + "_p95") < 0:
                object.__setattr__(self, key + "_p95", float(max(getattr(self, key), 0.0)))
        object.__setattr__(self, "neighbour_hist", tuple(float(v) for v in self.neighbour_hist))
        object.__setattr__(self, "producers", tuple(self.producers))
        object.__setattr__(self, "formats", tuple(str(f) for f in self.formats))
        stages = []
        for s in self.stages:
            s = dict(s)
            if s.get("op") not in ops.names() or not ops.get(s["op"]).stage:
                raise ValueError(f"layer {self.name}: a stage must be a pass-through op, not {s!r}")
            s["in_shape"] = tuple(int(v) for v in s["in_shape"])
            if "out_shape" in s:
                s["out_shape"] = tuple(int(v) for v in s["out_shape"])
                s["active_out"] = float(s["active_out"])
            if s.get("at", "output") not in ("input", "output"):
                raise ValueError(f"layer {self.name}: a stage runs at its 'input' or 'output' "
                                 f"stream, not {s['at']!r}")
            s["active_in"] = float(s["active_in"])
            if "bits" in s:
                s["bits"] = int(s["bits"])
            if "skip_sites" in s:
                s["skip_sites"] = int(s["skip_sites"])
            if "join_input" in s:
                s["join_input"] = int(s["join_input"])
            for flag in ("shadow", "buffered"):
                if flag in s:
                    s[flag] = bool(s[flag])
            stages.append(s)
        object.__setattr__(self, "stages", tuple(stages))

    @property
    def kind(self) -> str:
        return layer_kind(self.op, self.kernel, self.groups, self.in_shape[0], self.kernel_w)

    @property
    def wformat(self) -> None:
        return None

    @property
    def c_in(self) -> int:
        return self.in_shape[0]

    @property
    def c_out(self) -> int:
        return self.out_shape[0]

    @property
    def weight_count(self) -> int:
        """Number of weights: ``C_out * C_in / groups * k * k``."""
        return self.c_out * (self.c_in // self.groups) * self.kernel * (self.kernel_w
                                                                         or self.kernel)

    @property
    def macs(self) -> float:
        """Multiply-accumulates per frame at the measured mean activity."""
        return self.weight_count * self.active_out

    def stats(self) -> dict:
        """This layer's activity in the form of :func:`models.stats.layer_stats` entries."""
        return {
            "active_sites_mean": self.active_out,
            "active_sites_p95": self.active_out_p95,
            "active_in_mean": self.active_in,
            "active_in_p95": self.active_in_p95,
            "neighbour_hist": list(self.neighbour_hist),
        }

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("in_shape", "out_shape", "neighbour_hist", "producers", "formats"):
            d[key] = list(d[key])
        d["acc_bits"] = dict(self.acc_bits)
        if self.in_bits == ACT_BITS:  # int8 streams: the workload files of before
            del d["in_bits"]
        if not self.margin:
            del d["margin"]
        if self.requant == ops.of(self).default_requant:  # the workload files of before
            del d["requant"]
        d["stages"] = [dict(s, in_shape=list(s["in_shape"]),
                            **({"out_shape": list(s["out_shape"])} if "out_shape" in s else {}))
                       for s in self.stages]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LayerWork:
        d = dict(d)
        d.pop("kind", None)
        for key in ("in_shape", "out_shape", "neighbour_hist", "producers", "stages", "formats"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


@dataclass(frozen=True)
class Workload:
    """A network's compute layers in topological order."""

    name: str
    layers: tuple[LayerWork, ...]
    source: str = ""

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ValueError(f"workload {self.name!r} has no compute layers")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"workload {self.name!r} has duplicate layer names")
        seen = set()
        for layer in self.layers:
            for p in layer.producers:
                if p not in seen:
                    raise ValueError(f"layer {layer.name}: producer {p!r} is not an earlier layer")
            seen.add(layer.name)

    def __len__(self) -> int:
        return len(self.layers)

    def index(self, name: str) -> int:
        for i, layer in enumerate(self.layers):
            if layer.name == name:
                return i
        raise KeyError(name)

    def edges(self) -> list[tuple[int, int]]:
        """(producer index, consumer index) of every stream between compute layers."""
        pos = {layer.name: i for i, layer in enumerate(self.layers)}
        return [(pos[p], i) for i, layer in enumerate(self.layers) for p in layer.producers]

    def converter_edges(self) -> list[tuple[int, int, bool, int]]:
        """``(producer, layer, to_join, bits)`` of every stream on which the composer may build a
        width converter (:meth:`hw.compose.Network._connect_edge`), ``bits`` its lane bits.

        A stream into a compute layer (``to_join`` False) is converted from the producer's
        ``pe`` to the layer's ``lanes``: :meth:`edges`, but for the streams that reach the layer
        as a later input of a residual add. The composer converts such a stream once, before
        the add, to the add's width: its first input's, so ``layer`` is then the compute layer
        whose stream is that first input and the converter goes to its ``pe`` (``to_join``
        True); the add's output is converted to each consumer's lanes on the first input's
        edges. A workload without the joins' ``join_input`` marks, or a join that narrows its
        stream (a concat, ``lanes_gcd``), keeps :meth:`edges` for those streams."""
        pos = {layer.name: i for i, layer in enumerate(self.layers)}
        # per join, the one layer whose output stream is its first input (an entry not shadowed)
        first: dict[str, list[int]] = {}
        for i, layer in enumerate(self.layers):
            for s in layer.stages:
                if not s.get("shadow"):
                    first.setdefault(s["name"], []).append(i)
        joins = {}  # layer index -> [(first-input layer, bits)] of the adds it enters later
        for q, layer in enumerate(self.layers):
            for s in layer.stages:
                if s.get("join_input") and "lanes_gcd" not in s \
                        and len(first.get(s["name"], ())) == 1:
                    joins.setdefault(q, []).append((first[s["name"]][0],
                                                    s.get("bits", ACT_BITS)))
        out, later = [], []
        for c, layer in enumerate(self.layers):
            prods = {pos[p] for p in layer.producers}
            for p in layer.producers:
                q = pos[p]
                if any(j in prods and j != q for j, _ in joins.get(q, ())):
                    continue  # behind an add this stream enters later: converted before it
                out.append((q, c, False, layer.in_bits))
        for q, js in joins.items():
            later += [(q, j, True, bits) for j, bits in js]
        return out + sorted(later)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Workload:
        return cls(
            name=d["name"],
            source=d.get("source", ""),
            layers=tuple(LayerWork.from_dict(x) for x in d["layers"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Workload:
        return cls.from_dict(json.loads(text))


def _normalised_hist(hist) -> tuple[float, ...]:
    if not hist:
        return ()
    total = float(sum(hist))
    if total <= 0:
        return tuple(0.0 for _ in hist)
    return tuple(float(v) / total for v in hist)


def from_qgraph(qgraph, stats: dict | None = None, *, name: str | None = None,
                fixed_formats: bool = False) -> Workload:
    """Workload of a :class:`models.qgraph.QGraph` and its :func:`models.stats.layer_stats`.

    ``stats`` maps node names to ``{"active_sites_mean", "active_sites_p95", "neighbour_hist"}`` of
    that node's output; the input activity of a layer is its input node's entry. Nodes without
    stats are taken as dense.
    """
    stats = stats or {}
    nodes = {n.name: n for n in qgraph.nodes}
    compute = {n.name for n in qgraph.compute_nodes()}

    def producers(node_name):
        # Trace a stream back through pass-through nodes to the compute layers that feed it.
        node = nodes[node_name]
        if node.name in compute:
            return [node.name]
        out = []
        for src in node.inputs:
            for p in producers(src):
                if p not in out:
                    out.append(p)
        return out

    def sites_of(name, shape):
        # measured active sites of a node's output; unmeasured means a dense map
        return float(stats.get(name, {}).get("active_sites_mean", shape[1] * shape[2]))

    widths = qgraph.stream_bits()

    def in_bits(n):
        # the lane bits a node takes its input stream at (a join: its own, hw.compose)
        op = ops.of(n)
        return op.stage_in_bits(n, widths[n.name]) if op.stage else widths[n.inputs[0]]

    def stage_entry(n):
        st = {"name": n.name, "op": ops.of(n).name, "in_shape": tuple(n.in_shape),
              "active_in": sites_of(n.inputs[0], n.in_shape)}
        if n.inputs[0] in nodes and folded_margin(qgraph, nodes[n.inputs[0]]):
            # the conv before this crop sends only the sites it keeps
            st["active_in"] = sites_of(n.name, n.out_shape)
        if in_bits(n) != ACT_BITS:
            st["bits"] = in_bits(n)
        if widths[n.name] != in_bits(n):  # a stage that changes the width (a table activation)
            st["out_bits"] = widths[n.name]
        st.update(ops.of(n).stage_fields(n))
        if tuple(n.out_shape) != tuple(n.in_shape):
            st["out_shape"] = tuple(n.out_shape)
            st["active_out"] = sites_of(n.name, n.out_shape)
        return st

    def stages(node_name):
        # Pass-through nodes whose first input is this stream run at its width (docs/CONTRACT.md:
        # "others inherit the lanes of their input").
        # A stream that is a later input of a join (the second input of a residual add) feeds
        # it too: the join and the stages after it hold this layer up as much as the first
        # input's, so they are listed here as well, marked "shadow": they count for its cycles,
        # not for the resources or the latency (priced once, with the first input's layer),
        # but for the join's skip FIFO when it holds this stream ("skip_sites").
        # The input of a join behind its deep skip FIFO does not feel the stalls of the stages
        # after it (the FIFO takes them up): "buffered", no producer stall for that layer.
        out = []
        for n in qgraph.nodes:
            if not (ops.of(n).stage and n.inputs) or node_name not in n.inputs:
                continue
            k = n.inputs.index(node_name)
            first = stage_entry(n)
            if len(n.inputs) == 2 and k == (skip_input(qgraph, n) or 0):
                # the skip FIFO sits on the skip input's stream, at its producer's width: it
                # is priced with that layer (a shadow entry then carries only this memory)
                first["skip_sites"] = skip_sites(qgraph, n)
            chain = [first, *stages(n.name)]
            # a join that runs at fewer lanes (a concat: a divisor of both inputs' channels)
            # narrows its stream and the stages after it: they run at gcd(pe, lanes_gcd)
            div = ops.of(n).stage_lanes(n, 1 << 30)
            if div != 1 << 30:
                chain = [dict(s, lanes_gcd=math.gcd(div, s.get("lanes_gcd", div)))
                         for s in chain]
            if k > 0:
                # the join this stream enters as its k-th input: the composer converts it to
                # the join's width there (Workload.converter_edges)
                chain = [dict(chain[0], join_input=k), *chain[1:]]
                chain = [dict(s, shadow=True) for s in chain]
            if len(n.inputs) > 1 and skip_input(qgraph, n) == k:
                chain = [dict(s, buffered=True) for s in chain]
            out += chain
        return out

    priced = set()

    def input_stages(node):
        # pass-through stages between the network input and this compute layer run on the input
        # stream at this layer's input lanes (hw.compose); they are priced with the first such
        # layer, marked "at": "input"
        chain, src = [], nodes[node.inputs[0]]
        while not ops.of(src).compute and src.inputs:
            chain.insert(0, src)
            src = nodes[src.inputs[0]]
        if src.inputs or not chain or chain[0].name in priced:
            return []
        out = []
        for n in chain:
            priced.add(n.name)
            out.append(dict(stage_entry(n), at="input"))
        return out

    layers = []
    for node in qgraph.nodes:
        if node.name not in compute:
            continue
        src = node.inputs[0]
        s_in = stats.get(src, {})
        s_out = stats.get(node.name, {})
        kernel = int(getattr(node, "kernel", 1) or 1)
        kernel_w = int(getattr(node, "kernel_w", 0) or 0)
        hist = s_out.get("neighbour_hist") or () if kernel == 3 and kernel_w in (0, 3) else ()
        prods = []
        for inp in node.inputs:
            for p in producers(inp):
                if p not in prods:
                    prods.append(p)
        in_shape = tuple(node.in_shape)
        out_shape = tuple(node.out_shape)
        if ops.of(node).single_site:
            in_shape = (in_shape[0], 1, 1)
            out_shape = (out_shape[0], 1, 1)
        layers.append(
            LayerWork(
                name=node.name,
                op=node.op,
                in_shape=in_shape,
                out_shape=out_shape,
                kernel=kernel,
                kernel_w=kernel_w,
                stride=int(getattr(node, "stride", 1) or 1),
                groups=int(getattr(node, "groups", 1) or 1),
                active_in=float(s_in.get("active_sites_mean", -1.0)),
                active_in_p95=float(s_in.get("active_sites_p95", -1.0)),
                active_out=float(s_out.get("active_sites_mean", -1.0)),
                active_out_p95=float(s_out.get("active_sites_p95", -1.0)),
                neighbour_hist=_normalised_hist(hist),
                producers=tuple(prods),
                stages=tuple(input_stages(node) + stages(node.name)),
                formats=(node.wformat,) if fixed_formats else (),
                acc_bits=(((node.wformat, requant_acc_bits(node, in_bits(node))),)
                          if node.weight is not None and node.requant else ()),
                dense=bool(getattr(qgraph, "dense", False)),
                margin=folded_margin(qgraph, node),
                in_bits=in_bits(node),
                requant=bool(node.requant),
            )
        )
    if stats:
        # A linear layer after global pooling sees one token per frame, whatever the map density.
        layers = [
            _replace_activity(layer, 1.0) if ops.of(layer).single_site else layer
            for layer in layers
        ]
    return Workload(name=name or getattr(qgraph, "name", "") or "network", layers=tuple(layers),
                    source="qgraph")


def skip_sites(qgraph, add) -> int:
    """Sites the skip FIFO of residual ``add`` holds (``hw.compose`` sizes it so): the most sites
    its long branch can hold in flight minus the short branch's, plus one
    (:func:`models.ops.add.branch_holds`, each stage's op ``hold``; lanes are not known here, so
    each edge holds :data:`~models.ops.add.EDGE_HOLD_ESTIMATE` sites).
    """
    paths = branch_holds(qgraph, add, node_hold=lambda n: ops.of(n).hold(n),
                         edge_hold=lambda src, n: EDGE_HOLD_ESTIMATE)
    paths = [p or 0 for p in paths]
    return int(max(paths) - min(paths) + 1)


def skip_input(qgraph, add) -> int | None:
    """Which input of residual ``add`` comes through its deep skip FIFO (the branch that holds
    fewer sites, as :mod:`hw.compose` sizes it); None when neither does."""
    paths = branch_holds(qgraph, add, node_hold=lambda n: ops.of(n).hold(n),
                         edge_hold=lambda src, n: EDGE_HOLD_ESTIMATE)
    paths = [p or 0 for p in paths]
    if len(paths) != 2 or paths[0] == paths[1]:
        return None
    return 0 if paths[0] < paths[1] else 1


def _replace_activity(layer: LayerWork, sites: float) -> LayerWork:
    d = layer.to_dict()
    d.update(active_in=sites, active_in_p95=sites, active_out=sites, active_out_p95=sites)
    return LayerWork.from_dict(d)


def measure_activity(qgraph, frames) -> dict:
    """Alias of :func:`models.stats.layer_stats` (the one implementation), kept for callers."""
    from models.stats import layer_stats

    return layer_stats(qgraph, frames)


def from_bundle(bundle, *, frames: int = 32, formats="int8", seed: int = 0) -> Workload:
    """Workload of a :func:`models.zoo.load` bundle, activity measured on ``frames`` test frames
    with :func:`models.stats.layer_stats`."""
    from models.stats import layer_stats

    fixed = bool(getattr(bundle.qnet_base, "fixed_formats", False))
    if fixed:  # an imported model keeps its own formats
        formats = dict(bundle.qnet_base.formats)
    qgraph = bundle.qgraph(formats)
    stats = layer_stats(qgraph, bundle.frames(frames, seed=seed, split="test"))
    w = from_qgraph(qgraph, stats, name=bundle.name, fixed_formats=fixed)
    if fixed:
        return w
    # the requantizer's width under every weight format the explorer may choose
    bits: dict = {layer.name: dict(layer.acc_bits) for layer in w.layers}
    in_bits = {layer.name: layer.in_bits for layer in w.layers}
    for fmt in WEIGHT_FORMAT_NAMES:
        q = qgraph if formats == fmt else bundle.qgraph(fmt)
        for node in q.compute_nodes():
            if node.name in bits and node.weight is not None and node.requant:
                bits[node.name][fmt] = requant_acc_bits(node, in_bits[node.name])
    return replace(w, layers=tuple(replace(layer, acc_bits=bits[layer.name])
                                   for layer in w.layers))


def synthetic(n_layers: int = 50, *, seed: int = 0, size: int = 64,
              density: float = 1.0) -> Workload:
    """A MobileNet-like dense network of exactly ``n_layers`` compute layers (benchmarks, tests).

    A 3x3 stem, then depthwise-3x3 / pointwise-1x1 pairs whose width grows at each stride-2 stage,
    and a final linear classifier. ``density`` scales the active sites (1.0: dense).
    """
    if n_layers < 3:
        raise ValueError(f"n_layers must be >= 3, not {n_layers}")
    rng = random.Random(seed)
    layers = []
    c, h = 16, size // 2
    layers.append(LayerWork(name="stem", op="conv", in_shape=(3, size, size),
                            out_shape=(c, h, h), kernel=3, stride=2,
                            active_in=density * size * size, active_out=density * h * h))
    n_pairs = (n_layers - 2) // 2
    stride2_at = set(rng.sample(range(1, n_pairs), k=min(4, max(n_pairs - 1, 0))))
    prev = "stem"
    for i in range(n_pairs):
        stride = 2 if (i in stride2_at and h > 2) else 1
        h_out = math.ceil(h / stride)
        dw = LayerWork(name=f"dw{i}", op="conv", in_shape=(c, h, h), out_shape=(c, h_out, h_out),
                       kernel=3, stride=stride, groups=c, active_in=density * h * h,
                       active_out=density * h_out * h_out, producers=(prev,))
        c_out = min(2 * c, 256) if stride == 2 else c
        pw = LayerWork(name=f"pw{i}", op="conv", in_shape=(c, h_out, h_out),
                       out_shape=(c_out, h_out, h_out), kernel=1,
                       active_in=density * h_out * h_out, active_out=density * h_out * h_out,
                       producers=(dw.name,))
        layers += [dw, pw]
        prev, c, h = pw.name, c_out, h_out
    if len(layers) < n_layers - 1:
        # Odd layer count: one more pointwise layer keeps the count exact.
        layers.append(LayerWork(name="pw_extra", op="conv", in_shape=(c, h, h),
                                out_shape=(c, h, h), kernel=1, active_in=density * h * h,
                                active_out=density * h * h, producers=(prev,)))
        prev = "pw_extra"
    layers.append(LayerWork(name="fc", op="linear", in_shape=(c, 1, 1), out_shape=(10, 1, 1),
                            active_in=1.0, active_out=1.0, producers=(prev,)))
    return Workload(name=f"synthetic{n_layers}", layers=tuple(layers), source=f"synthetic:{seed}")
