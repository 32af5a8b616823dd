"""Cost model: pure functions ``(LayerWork, Choice) -> Cost`` (cycles per frame and resources).

Cycles are the hardware blocks' own ``cycles_per_frame`` formulas (``hw/perf.py`` /
``hw/<block>.py``) when those modules are importable; otherwise the documented formulas below,
which are the same expressions:

- ``conv1x1``, ``linear``: ``ceil(C_in/lanes) * ceil(C_out/pe)`` cycles per output site;
- ``dwconv3x3``: ``ceil(C/lanes)`` per output site (the nine taps in parallel, ``pe == lanes``);
- ``conv3x3``: ``ceil(C_in/lanes) * ceil(C_out/pe)`` per output site;
- a 3x3 block also takes its input at ``lanes`` channels per cycle, so a frame costs at least
  ``active_in * ceil(C_in/lanes)`` cycles; plus one end-of-frame beat.

Resources come from a linear model whose coefficients live in ``resource_model.json`` (fitted by
``dse/fit_resources.py`` against Yosys ``synth_xilinx`` runs of the real hw blocks): per MAC of each
format, per input lane, per output lane, a per-block base, plus memories (weights, line buffers)
priced as BRAM18 by aspect ratio or as LUTRAM when small.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from models.quant.formats import WEIGHT_FORMATS, weight_format

from .workload import LayerWork

__all__ = [
    "Choice",
    "Cost",
    "ResourceModel",
    "resource_model",
    "cycles",
    "fill_cycles",
    "resources",
    "layer_cost",
    "converter_cost",
    "converter_coefficients",
    "divisors",
    "parallelism_options",
    "candidates",
    "ACT_BITS",
]

#: Activation bits on every stream (docs/CONTRACT.md: W{format}A8).
ACT_BITS = 8

_MODEL_FILE = Path(__file__).with_name("resource_model.json")

#: BRAM18 aspect ratios (depth, width) of a RAMB18E2 in simple dual-port mode.
_BRAM18_SHAPES = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))


@dataclass(frozen=True)
class Choice:
    """One per-layer hardware choice: weight format, input lanes, output lanes (PE)."""

    format: str
    lanes: int
    pe: int

    def __post_init__(self):
        weight_format(self.format)
        for key in ("lanes", "pe"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{key} must be a positive integer, not {v!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Choice:
        return cls(format=d["format"], lanes=int(d["lanes"]), pe=int(d["pe"]))


@dataclass(frozen=True)
class Cost:
    """Price of one (layer, choice): cycles per frame, pipeline fill, and resources."""

    cycles: int
    fill: int
    dsp: int
    lut: int
    ff: int
    bram18: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Cost:
        return cls(**{k: int(d[k]) for k in ("cycles", "fill", "dsp", "lut", "ff", "bram18")})

    def __add__(self, other: Cost) -> Cost:
        return Cost(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values(),
                                            strict=True)))


# -- cycles ----------------------------------------------------------------------------------------

def _hw_cycles():
    """``hw.perf.layer_cycles`` if the hardware package provides it (the one definition)."""
    try:
        from hw.perf import layer_cycles
    except ImportError:
        return None
    return layer_cycles


def _sites(layer: LayerWork, activity: str) -> tuple[float, float]:
    if activity == "mean":
        return layer.active_in, layer.active_out
    if activity == "p95":
        return layer.active_in_p95, layer.active_out_p95
    raise ValueError(f"activity must be 'mean' or 'p95', not {activity!r}")


def _per_site(layer: LayerWork, choice: Choice) -> int:
    if layer.kind == "dwconv3x3":
        return math.ceil(layer.c_in / choice.lanes)
    return math.ceil(layer.c_in / choice.lanes) * math.ceil(layer.c_out / choice.pe)


def _documented_cycles(layer: LayerWork, choice: Choice, activity: str) -> float:
    s_in, s_out = _sites(layer, activity)
    compute = s_out * _per_site(layer, choice)
    if layer.kernel == 3:
        compute = max(compute, s_in * math.ceil(layer.c_in / choice.lanes))
    return compute + 1


def cycles(layer: LayerWork, choice: Choice, *, activity: str = "mean") -> int:
    """Cycles per frame of ``layer``'s pipeline stage under ``choice`` at the measured ``activity``
    (mean/p95), frames back to back.

    The block's own formula with the frame turnaround of a 1x1 unit (:func:`hw.perf.stage_cycles`);
    an ``add`` stage fed by this layer runs at its width and must not be slower; a global pool fed
    by it holds the layer up while it divides (:func:`hw.perf.pool_stall`).
    """
    _check_choice(layer, choice)
    if _hw_cycles() is None:
        return math.ceil(_documented_cycles(layer, choice, activity))
    from hw.perf import pool_stall, stage_cycles

    stats = _stats(layer, activity)
    own = stage_cycles(layer, choice, stats)
    out_beats = stats["active_sites_mean"] * layer.c_out / choice.pe
    for s in layer.stages:
        node = _Stage(s["name"], s["op"], s["in_shape"], s["in_shape"])
        st = stage_cycles(node, None, {"active_in_mean": _stage_sites(layer, s, activity)},
                          lanes=choice.pe)
        if s["op"] == "gap":
            _, h, w = s["in_shape"]
            own = own + pool_stall(own, out_beats, channels=s["in_shape"][0], lanes=choice.pe,
                                   height=h, width=w, fifo_depth=FIFO_DEPTH)
        own = max(own, st)
    return math.ceil(own - 1e-9)


def _stats(layer: LayerWork, activity: str) -> dict:
    stats = layer.stats()
    if activity == "p95":
        stats = dict(stats, active_sites_mean=layer.active_out_p95,
                     active_in_mean=layer.active_in_p95)
    elif activity != "mean":
        raise ValueError(f"activity must be 'mean' or 'p95', not {activity!r}")
    return stats


def _stage_sites(layer: LayerWork, stage: dict, activity: str) -> float:
    # a stage's input is this layer's output stream
    if activity == "p95":
        return max(float(stage["active_in"]), layer.active_out_p95)
    return float(stage["active_in"])


#: Depth of the FIFO between stages (``hw.point.DesignPoint.fifo_depth``'s default).
FIFO_DEPTH = 4


@dataclass(frozen=True)
class _Stage:
    name: str
    op: str
    in_shape: tuple
    out_shape: tuple


def fill_cycles(layer: LayerWork, choice: Choice) -> int:
    """``layer``'s share of a lone frame's latency: its stage's tail (:func:`hw.perf.tail_cycles`,
    from the last input beat to the last output beat) and that of the ``add`` / ``gap`` stages it
    feeds, plus a FIFO per stage.

    A lone frame's latency is predicted as the II plus every layer's fill: the frame streams in at
    the slowest stage's pace, then drains through each stage after it.
    """
    if _hw_cycles() is None:
        return _documented_fill(layer, choice)
    from hw.perf import EDGE_LATENCY, tail_cycles

    stats = layer.stats()
    total = tail_cycles(layer, choice, stats) + EDGE_LATENCY
    for s in layer.stages:
        node = _Stage(s["name"], s["op"], s["in_shape"], s["in_shape"])
        total += tail_cycles(node, None, {"active_in_mean": s["active_in"]},
                             lanes=choice.pe) + EDGE_LATENCY
    return math.ceil(total - 1e-9)


def _documented_fill(layer: LayerWork, choice: Choice) -> int:
    density = layer.active_in / (layer.in_shape[1] * layer.in_shape[2])
    per_site = _per_site(layer, choice)
    if layer.kernel == 3:
        wait = (layer.in_shape[2] + 1) * density * math.ceil(layer.c_in / choice.lanes)
        return math.ceil(wait + per_site) + _PIPE_DEPTH
    return per_site + _PIPE_DEPTH


#: Register stages of a compute block and its requantizer, from input beat to output beat.
_PIPE_DEPTH = 6


def _check_choice(layer: LayerWork, choice: Choice) -> None:
    if layer.c_in % choice.lanes:
        raise ValueError(f"layer {layer.name}: lanes {choice.lanes} does not divide C_in "
                         f"{layer.c_in}")
    if layer.c_out % choice.pe:
        raise ValueError(f"layer {layer.name}: pe {choice.pe} does not divide C_out {layer.c_out}")
    if layer.kind == "dwconv3x3" and choice.pe != choice.lanes:
        raise ValueError(f"layer {layer.name}: depthwise needs pe == lanes")


# -- resources -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResourceModel:
    """Coefficients of the resource model (see ``resource_model.json``)."""

    status: str
    provenance: str
    mac: dict  # format -> {"lut", "ff", "dsp"} per multiply-accumulate
    block: dict  # kind -> {"base", "per_lane", "per_pe"[, "per_lb_lut"]}: {"lut", "ff", "dsp"}
    requant: dict  # per output lane {"lut", "ff", "dsp"} (+ "base": {"lut", "ff"})
    memory: dict  # {"lutram_max_bits", "lutram_bits_per_lut", "line_buffer_rows"}
    converter: dict  # {"base": {"lut", "ff"}, "per_bit": {"lut", "ff"}}
    stage: dict = None  # {"fifo", "add", "gap"}: composed-network terms (fit_network)

    @classmethod
    def from_dict(cls, d: dict) -> ResourceModel:
        missing = [k for k in ("mac", "block", "requant", "memory", "converter") if k not in d]
        if missing:
            raise ValueError(f"resource model lacks {', '.join(missing)}")
        for fmt in WEIGHT_FORMATS:
            if fmt not in d["mac"]:
                raise ValueError(f"resource model has no MAC coefficients for {fmt}")
        return cls(status=d.get("status", ""), provenance=d.get("provenance", ""),
                   mac=d["mac"], block=d["block"], requant=d["requant"], memory=d["memory"],
                   converter=d["converter"], stage=d.get("stage") or {})


@cache
def resource_model(path=None) -> ResourceModel:
    """The resource model in ``path`` (default: ``dse/resource_model.json``)."""
    p = Path(path) if path else _MODEL_FILE
    return ResourceModel.from_dict(json.loads(p.read_text()))


def memory_bram18(width: int, depth: int) -> int:
    """BRAM18 blocks for a ``width`` x ``depth`` memory.

    The word is split into slices, each in its best aspect ratio, the way Yosys maps it: a 19-bit x
    4255 FIFO takes an 18-bit slice (5 blocks of 1K x 18) and a 1-bit slice (1 block of 16K x 1), 6
    blocks, where one aspect ratio for the whole word would take 9.
    """
    if width <= 0 or depth <= 0:
        return 0
    return _sliced_bram18(width, depth)


@cache
def _sliced_bram18(width: int, depth: int) -> int:
    if width <= 0:
        return 0
    return min(math.ceil(depth / d) + _sliced_bram18(width - w, depth) for d, w in _BRAM18_SHAPES)


def _memory(model: ResourceModel, width: int, depth: int) -> tuple[int, int]:
    """(LUTs, BRAM18) of a memory: LUTRAM when small, block RAM otherwise."""
    bits = width * depth
    if bits <= 0:
        return 0, 0
    # Yosys keeps shallow memories (wide weight words) in LUTs even when large; block RAM only
    # pays off from one BRAM18's depth at its widest aspect (512)
    if bits <= model.memory["lutram_max_bits"] or depth < _BRAM18_SHAPES[0][0]:
        per_lut = model.memory["lutram_bits_per_lut"]
        return math.ceil(width * math.ceil(depth / per_lut)), 0
    return 0, memory_bram18(width, depth)


def _mac_count(layer: LayerWork, choice: Choice) -> int:
    taps = layer.kernel * layer.kernel
    if layer.kind == "dwconv3x3":
        return taps * choice.lanes
    return taps * choice.lanes * choice.pe


def _coord_bits(layer: LayerWork) -> int:
    _, h, w = layer.in_shape
    return max(1, (h - 1).bit_length()) + max(1, (w - 1).bit_length())


def acc_bits(layer: LayerWork, fmt) -> int:
    """Bound on the accumulator's width: int8 activations times the format's largest weight over
    the fan-in, plus the bias and the sign (what the composer sizes the requantizer by)."""
    fan_in = (layer.c_in // layer.groups) * layer.kernel * layer.kernel
    wmax = max(abs(int(v)) for v in weight_format(fmt).levels)
    return math.ceil(math.log2(127 * wmax * fan_in + 1)) + 2


def _fifo(model: ResourceModel, width: int) -> dict:
    f = (model.stage or {}).get("fifo")
    if not f:
        return {"lut": 0.0, "ff": 0.0}
    return {r: f[r]["base"] + f[r]["per_bit"] * width for r in ("lut", "ff")}


def _stages(layer: LayerWork, choice: Choice, model: ResourceModel) -> dict:
    """Resources of the FIFO in front of ``layer`` and of the add / pool stages it feeds."""
    st = model.stage or {}
    lanes_bits = choice.pe * ACT_BITS + _coord_bits(layer) + 1
    res = {"lut": 0.0, "ff": 0.0, "dsp": 0.0, "bram18": 0}
    fin = _fifo(model, choice.lanes * ACT_BITS + _coord_bits(layer) + 1)
    for r in ("lut", "ff"):
        res[r] += fin[r]
    for s in layer.stages:
        if s["op"] == "add" and "add" in st:
            for r in ("lut", "ff", "dsp"):
                res[r] += st["add"][r] * choice.pe
            # both inputs through a FIFO; the skip one holds the long branch's sites
            for _ in range(2):
                f = _fifo(model, lanes_bits)
                res["lut"] += f["lut"]
                res["ff"] += f["ff"]
            depth = s.get("skip_sites", 0) * math.ceil(s["in_shape"][0] / choice.pe)
            lut_m, bram_m = _memory(model, lanes_bits, depth)
            res["lut"] += lut_m
            res["bram18"] += bram_m
        elif s["op"] == "gap" and "gap" in st:
            for r in ("lut", "ff"):
                res[r] += (st["gap"][r]["per_channel"] * s["in_shape"][0]
                           + st["gap"][r]["per_lane"] * choice.pe)
            f = _fifo(model, lanes_bits)
            res["lut"] += f["lut"]
            res["ff"] += f["ff"]
    return res


def line_buffer_luts(layer: LayerWork, choice: Choice) -> int:
    """LUTs of a 3x3 layer's line buffer as Yosys maps it: ``slots x 4`` column-bank memories of
    ``ceil(W/4) * B`` words of ``lanes * 8`` bits, each in RAM32M16 (32 x 14 bits) or RAM64M8
    (64 x 7 bits) cells of 8 LUTs, whichever takes fewer (exact on the digits and event-digits
    builds)."""
    from hw.line_buffer import _BANKS, DEFAULT_SLOTS

    width = choice.lanes * ACT_BITS
    depth = math.ceil(layer.in_shape[2] / _BANKS) * math.ceil(layer.c_in / choice.lanes)
    cells = min(math.ceil(width / 14) * math.ceil(depth / 32),
                math.ceil(width / 7) * math.ceil(depth / 64))
    return DEFAULT_SLOTS * _BANKS * 8 * cells


def resources(layer: LayerWork, choice: Choice, model: ResourceModel | None = None) -> dict:
    """``{"dsp", "lut", "ff", "bram18"}`` of ``layer``'s stage: the compute block, its memories
    and requantizer, the FIFO in front of it, and the add / pool stages it feeds."""
    _check_choice(layer, choice)
    model = model or resource_model()
    fmt = weight_format(choice.format)
    macs = _mac_count(layer, choice)
    blk = model.block[layer.kind]
    out_lanes = choice.pe
    rq = model.requant
    rq_dsp = rq.get("dsp", 0)
    if "dsp_acc_bits" in rq and acc_bits(layer, fmt.name) > rq["dsp_acc_bits"]:
        rq_dsp *= 2  # the accumulator x M product no longer fits one DSP48E2
    res = {}
    for r in ("lut", "ff", "dsp"):
        v = (blk["base"].get(r, 0) + blk["per_lane"].get(r, 0) * choice.lanes
             + blk["per_pe"].get(r, 0) * out_lanes + model.mac[fmt.name].get(r, 0) * macs)
        if layer.kernel == 3:  # line-buffer addressing and read muxes grow with its depth
            v += blk.get("per_lb_lut", {}).get(r, 0) * line_buffer_luts(layer, choice)
        if layer.kind != "linear":  # the classifier emits raw accumulators: no requantizer
            per_lane = rq_dsp if r == "dsp" else rq.get(r, 0)
            v += rq.get("base", {}).get(r, 0) + per_lane * out_lanes
        res[r] = v
    # Weight memory: one word per cycle holds every weight the MACs use in that cycle.
    w_width = macs * fmt.bits
    w_depth = math.ceil(layer.weight_count / macs)
    lut_w, bram_w = _memory(model, w_width, w_depth)
    bram = bram_w
    res["lut"] += lut_w
    if layer.kernel == 3:
        res["lut"] += line_buffer_luts(layer, choice)
    extra = _stages(layer, choice, model)
    for r in ("lut", "ff", "dsp"):
        res[r] += extra[r]
    bram += extra["bram18"]
    return {"dsp": math.ceil(res["dsp"] - 1e-9), "lut": math.ceil(res["lut"]),
            "ff": math.ceil(res["ff"]), "bram18": int(bram)}


def layer_cost(layer: LayerWork, choice: Choice, *, model: ResourceModel | None = None,
               activity: str = "mean") -> Cost:
    """Cycles, fill and resources of one (layer, choice)."""
    r = resources(layer, choice, model)
    return Cost(cycles=cycles(layer, choice, activity=activity), fill=fill_cycles(layer, choice),
                dsp=r["dsp"], lut=r["lut"], ff=r["ff"], bram18=r["bram18"])


def converter_coefficients(model: ResourceModel | None = None) -> dict:
    """``{"lut": (base, per_bit), "ff": (base, per_bit)}``: a converter between ``a`` and ``b``
    lanes costs ``base + per_bit * 8 * (a + b)`` when ``a != b``."""
    model = model or resource_model()
    return {r: (float(model.converter["base"][r]), float(model.converter["per_bit"][r]))
            for r in ("lut", "ff")}


def converter_cost(width_in: int, width_out: int, model: ResourceModel | None = None) -> dict:
    """``{"lut", "ff"}`` of a stream width converter from ``width_in`` to ``width_out`` lanes.

    Zero when the widths agree. The converter never limits throughput: it moves one beat per cycle
    on each side, and the layers around it need at least as many cycles per site.
    """
    if width_in == width_out:
        return {"lut": 0, "ff": 0}
    model = model or resource_model()
    bits = ACT_BITS * (width_in + width_out)
    return {r: math.ceil(model.converter["base"][r] + model.converter["per_bit"][r] * bits)
            for r in ("lut", "ff")}


# -- candidate choices -----------------------------------------------------------------------------

def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def parallelism_options(n: int, *, max_par: int = 64, count: int = 6) -> list[int]:
    """Divisors of ``n`` up to ``max_par``: every power of two that divides, plus other divisors,
    thinned to at most ``count`` values spread geometrically (always keeping 1 and the largest)."""
    opts = [d for d in divisors(n) if d <= max_par]
    if len(opts) <= count:
        return opts
    pow2 = [d for d in opts if d & (d - 1) == 0]
    if len(pow2) >= count:
        # geometric thinning of the powers of two, keeping both ends
        idx = sorted({round(i * (len(pow2) - 1) / (count - 1)) for i in range(count)})
        return [pow2[i] for i in idx]
    rest = [d for d in opts if d not in pow2]
    keep = set(pow2) | {opts[-1]}
    for d in sorted(rest, key=lambda d: -d):
        if len(keep) >= count:
            break
        keep.add(d)
    return sorted(keep)


def candidates(layer: LayerWork, formats, *, max_lanes: int = 64, max_pe: int = 64,
               count: int = 6) -> list[Choice]:
    """Every (format, lanes, pe) the explorer considers for ``layer``.

    ``lanes`` and ``pe`` run over :func:`parallelism_options` of the channel counts; a depthwise
    layer has ``pe == lanes``; a linear layer (one token per frame) is kept at low parallelism.
    """
    formats = [weight_format(f).name for f in formats]
    lanes_opts = parallelism_options(layer.c_in, max_par=max_lanes, count=count)
    if layer.kind == "dwconv3x3":
        pairs = [(ln, ln) for ln in lanes_opts]
    else:
        pe_opts = parallelism_options(layer.c_out, max_par=max_pe, count=count)
        pairs = [(ln, p) for ln in lanes_opts for p in pe_opts]
    return [Choice(f, ln, p) for f in formats for ln, p in pairs]
