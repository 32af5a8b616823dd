"""Cost model: pure functions ``(LayerWork, LayerChoice) -> Cost`` (cycles per frame, resources).

Every per-layer figure comes from the layer's op (:mod:`models.ops`): its cycle model (the block
formulas of :mod:`contract.cycles`), its tail in a lone frame, and its resource price, whose
coefficients live in ``resource_model.json`` (fitted by ``benchmarks/fit_resources.py`` against
Yosys ``synth_xilinx`` runs of the real hw blocks). This module composes them into a pipeline
stage: a compute layer and the pass-through stages (``add``, ``gap``, ``maxpool``) it feeds, which
run at its output lanes.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path

from contract.constants import ACT_BITS, FIFO_DEPTH, FIFO_LATENCY, datapaths
from contract.point import LayerChoice
from models import ops
from models.ops import _price
from models.ops._price import memory_bram18
from models.ops.base import divisors, parallelism_options
from models.quant.formats import WEIGHT_FORMATS, weight_format

from .workload import LayerWork

__all__ = [
    "LayerChoice",
    "Cost",
    "ResourceModel",
    "resource_model",
    "for_budget",
    "for_dsp_cell",
    "for_family",
    "cycles",
    "fill_cycles",
    "stage_tails",
    "resources",
    "layer_cost",
    "converter_cost",
    "converter_coefficients",
    "converter_mux_inputs",
    "divisors",
    "parallelism_options",
    "candidates",
    "memory_bram18",
    "ACT_BITS",
]

_MODEL_FILE = Path(__file__).with_name("resource_model.json")


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


def _stage_stats(layer: LayerWork, stage: dict, activity: str) -> dict:
    stats = {"active_in_mean": _stage_sites(layer, stage, activity)}
    if "active_out" in stage:
        stats["active_sites_mean"] = float(stage["active_out"])
    return stats


@dataclass(frozen=True)
class _Stage:
    """A pass-through stage's geometry, as its op's cycle model reads it."""

    name: str
    op: str
    in_shape: tuple
    out_shape: tuple
    #: A window stage's (the k x k max pool's): its op's ``stage_fields``.
    kernel: int = 1
    stride: int = 1


def _stage_node(s: dict) -> _Stage:
    return _Stage(s["name"], s["op"], s["in_shape"], s.get("out_shape", s["in_shape"]),
                  s.get("kernel", 1), s.get("stride", 1))


def check_choice(layer: LayerWork, choice: LayerChoice) -> None:
    """Raise ``ValueError`` naming the layer unless ``choice`` fits it."""
    try:
        ops.of(layer).check_choice(layer, choice)
    except ValueError as exc:
        raise ValueError(f"layer {layer.name}: {exc}") from None
    why = _input_stage_misfit(layer, choice)
    if why:
        raise ValueError(f"layer {layer.name}: {why}")


def _input_stage_misfit(layer: LayerWork, choice: LayerChoice) -> str | None:
    """Why a stage between the network input and ``layer`` cannot run at ``choice``'s input lanes
    (hw.compose runs them there): they must divide its own channels (a flatten of a 1-channel
    image before an MLP's first linear layer)."""
    for s in layer.stages:
        if s.get("at") == "input" and s["in_shape"][0] % choice.lanes:
            return (f"lanes ({choice.lanes}) must divide the {s['in_shape'][0]} channels of "
                    f"{s['name']} ({s['op']}) before it")
    return None


def cycles(layer: LayerWork, choice: LayerChoice, *, activity: str = "mean") -> int:
    """Cycles per frame of ``layer``'s pipeline stage under ``choice`` at the measured ``activity``
    (mean/p95), frames back to back.

    The op's stage cycles (the block formula plus the stream effects of frames back to back); a
    pass-through stage fed by this layer runs at its width and must not be slower; one may also
    hold the layer up (the global pool while it divides).
    """
    check_choice(layer, choice)
    stats = _stats(layer, activity)
    own = ops.of(layer).stage_cycles(layer, choice, stats)
    for s in layer.stages:
        op = ops.get(s["op"])
        lanes = _stage_lanes(s, choice)
        st = op.stage_cycles(_stage_node(s), None, _stage_stats(layer, s, activity), lanes=lanes)
        if s.get("at") != "input" and not s.get("buffered"):
            # the stream that feeds the stage: this layer's output or a stage's before it (a
            # join's deep skip FIFO in between takes the stall up: "buffered")
            beats_in = _stage_sites(layer, s, activity) * s["in_shape"][0] / lanes
            own = own + op.producer_stall(own, beats_in, s, lanes=lanes, fifo_depth=FIFO_DEPTH)
        own = max(own, st)
    return math.ceil(own - 1e-9)


def _stage_lanes(stage: dict, choice: LayerChoice) -> int:
    """A stage on the layer's input stream runs at its ``lanes``, one on its output at ``pe``
    (narrowed after a concat to a divisor of its inputs' channels, ``lanes_gcd``)."""
    lanes = choice.lanes if stage.get("at") == "input" else choice.pe
    return math.gcd(lanes, stage["lanes_gcd"]) if "lanes_gcd" in stage else lanes


def fill_cycles(layer: LayerWork, choice: LayerChoice) -> int:
    """``layer``'s share of a lone frame's latency: its stage's tail (the op's ``tail``, from the
    last input beat to the last output beat) and that of the pass-through stages it feeds, plus a
    FIFO per stage.

    A lone frame's latency is predicted as the II plus every layer's fill: the frame streams in at
    the slowest stage's pace, then drains through each stage after it.
    """
    total = ops.of(layer).tail(layer, choice, layer.stats()) + FIFO_LATENCY
    return math.ceil(total + stage_tails(layer, choice) - 1e-9)


def stage_tails(layer: LayerWork, choice: LayerChoice) -> float:
    """Cycles the pass-through stages ``layer`` feeds add after its block: each one's ``tail``
    and its FIFO (a join's other inputs are counted with its first)."""
    total = 0.0
    for s in layer.stages:
        if s.get("shadow"):  # counted with the join's first input
            continue
        total += ops.get(s["op"]).tail(_stage_node(s), None, _stage_stats(layer, s, "mean"),
                                       lanes=_stage_lanes(s, choice)) + FIFO_LATENCY
    return total


# -- resources -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResourceModel:
    """Coefficients of the resource model (see ``resource_model.json``)."""

    status: str
    provenance: str
    mac: dict  # format -> {"lut", "ff", "dsp"} per multiply-accumulate
    # kind -> {"base", "per_lane", "per_pe"[, "per_lb_lut", "per_fold_bit", "per_tap_fold_bit",
    # "per_window_bit", ...]}:
    # {"lut", "ff", "dsp"}
    block: dict
    requant: dict  # per output lane {"lut", "ff", "dsp"} (+ "base": {"lut", "ff"})
    memory: dict  # {"lutram_max_bits", "lutram_bits_per_lut", "line_buffer_rows"}
    # {"base": {"lut", "ff"}, "per_bit": {"lut", "ff"}[, "per_mux_bit": {"lut", "ff"}]}
    converter: dict
    stage: dict = None  # {"fifo", "add", "gap"}: composed-network terms (fit_network)
    #: The target's DSP slice (:data:`contract.constants.DSP_WIDE_BITS`): which packed pairs fit.
    dsp_cell: str = "DSP48E2"

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


#: The widest signed accumulator whose product with the 15-bit unsigned requant multiplier fits one
#: DSP slice: DSP48E2's multiplier is 27 x 18, DSP48E1's 25 x 18 (Yosys synth_xilinx of the
#: requantizer: 4 lanes take 4 DSP48E1 up to 25 bits and 8 from 26, 4 DSP48E2 up to 27 bits and
#: 8 from 28; -family xc7 and xcup). ECP5's MULT18X18D: one up to 19 bits (the extra bit in LUTs),
#: two from 20 (synth_ecp5).
DSP_ACC_BITS = {"DSP48E2": 27, "DSP48E1": 25, "MULT18X18D": 19}

#: The DSP slice of each synthesis family (``hw.synth.FAMILIES``): what a build for the family
#: sizes its requantizer's multipliers to (``hw.requant``).
FAMILY_DSP_CELL = {"xcup": "DSP48E2", "xc7": "DSP48E1", "ecp5": "MULT18X18D"}

#: The resource model fitted for each synthesis family besides UltraScale+
#: (``resource_model.json``): ECP5, and the 7 series (synth_xilinx -family xc7 of the same grid:
#: a block's registers come out a median 20 % fewer than on xcup, up to 61 %, its LUTs about the
#: same; its LUT RAM cells differ).
_FAMILY_FILES = {"ecp5": "resource_model_ecp5.json", "xc7": "resource_model_xc7.json"}


def for_dsp_cell(model: ResourceModel, dsp_cell: str) -> ResourceModel:
    """``model`` for a device whose DSP slice is ``dsp_cell``: the requantizer's one-DSP
    accumulator width of that slice."""
    bits = DSP_ACC_BITS.get(dsp_cell)
    if bits is None:
        return model
    if model.dsp_cell != dsp_cell:
        model = replace(model, dsp_cell=dsp_cell)
    if model.requant.get("dsp_acc_bits") in (None, bits):
        return model
    return replace(model, requant={**model.requant, "dsp_acc_bits": bits})


def for_family(family: str, dsp_cell: str | None = None) -> ResourceModel:
    """The resource model of a device family (``zynq7``, ``xc7``, ``ecp5``...): its Yosys
    family's fit (``resource_model_<family>.json``, else UltraScale+'s) at ``dsp_cell``'s
    width (default: the family's own slice, :data:`FAMILY_DSP_CELL`)."""
    from .devices import synth_family

    fam = synth_family(family or "")
    name = _FAMILY_FILES.get(fam)
    model = resource_model(_MODEL_FILE.with_name(name)) if name else resource_model()
    return for_dsp_cell(model, dsp_cell or FAMILY_DSP_CELL.get(fam, "DSP48E2"))


def for_budget(budget) -> ResourceModel:
    """The resource model that prices designs for ``budget``'s part (:func:`for_family`)."""
    return for_family(getattr(budget, "family", ""), budget.dsp_cell)


@cache
def resource_model(path=None) -> ResourceModel:
    """The resource model in ``path`` (default: ``dse/resource_model.json``)."""
    p = Path(path) if path else _MODEL_FILE
    return ResourceModel.from_dict(json.loads(p.read_text()))


def resources(layer: LayerWork, choice: LayerChoice, model: ResourceModel | None = None) -> dict:
    """``{"dsp", "lut", "ff", "bram18"}`` of ``layer``'s stage: the compute block, its memories
    and requantizer (the op's price), the FIFO in front of it, and the pass-through stages it
    feeds."""
    check_choice(layer, choice)
    model = model or resource_model()
    res = ops.of(layer).price(layer, choice, model)
    coord = _price.coord_bits(layer.in_shape)
    fin = _price.fifo(model, _price.stream_bits(choice.lanes, coord, layer.in_bits))
    extra = {"lut": fin["lut"], "ff": fin["ff"], "dsp": 0.0, "bram18": 0}
    for s in layer.stages:
        if s.get("shadow"):  # priced with the join's first input, but for its skip FIFO
            if "skip_sites" in s:
                skip = _price.skip_fifo(model, s, lanes=_stage_lanes(s, choice),
                                        coord_bits=coord)
                extra["lut"] += skip["lut"]
                extra["bram18"] += skip["bram18"]
            continue
        st = ops.get(s["op"]).stage_price(s, lanes=_stage_lanes(s, choice), coord_bits=coord,
                                          model=model)
        for r in extra:
            extra[r] += st[r]
    for r in ("lut", "ff", "dsp"):
        res[r] += extra[r]
    bram = res["bram18"] + extra["bram18"]
    return {"dsp": math.ceil(res["dsp"] - 1e-9), "lut": math.ceil(res["lut"]),
            "ff": math.ceil(res["ff"]), "bram18": int(bram)}


def layer_cost(layer: LayerWork, choice: LayerChoice, *, model: ResourceModel | None = None,
               activity: str = "mean") -> Cost:
    """Cycles, fill and resources of one (layer, choice)."""
    r = resources(layer, choice, model)
    return Cost(cycles=cycles(layer, choice, activity=activity), fill=fill_cycles(layer, choice),
                dsp=r["dsp"], lut=r["lut"], ff=r["ff"], bram18=r["bram18"])


def multipliers(layer: LayerWork, choice: LayerChoice) -> int:
    """The multipliers (or shift-add units, or halves of a packed DSP) of one (layer, choice):
    the products its block computes a cycle (:meth:`models.ops.base.ComputeOp.mac_count`)."""
    return ops.of(layer).mac_count(layer, choice)


def converter_mux_inputs(width_in: int, width_out: int) -> int:
    """Input lanes a converter's buffer entries choose among: entry ``j`` of its ``a + b`` takes
    any of ``min(a, j + 1)`` input lanes (:class:`hw.width.WidthConverter`), so ``a (a + 1) / 2
    + a b`` in all (``a`` = ``width_in``, ``b`` = ``width_out``). What makes a wide input cost
    more than a wide output: 1 -> 16 lanes takes 17, 16 -> 4 lanes 200."""
    a, b = width_in, width_out
    return a * (a + 1) // 2 + a * b


def converter_coefficients(model: ResourceModel | None = None) -> dict:
    """``{"lut": (base, per_bit, fifo_per_bit, per_mux_bit), "ff": (...)}``: a converter from
    ``a`` to ``b`` lanes of ``bits`` bits costs ``base + bits * (per_bit * (a + b) + per_mux_bit
    * converter_mux_inputs(a, b))`` when ``a != b``.

    ``fifo_per_bit`` is what one more lane bit costs the stage FIFO in front of a layer
    (:func:`models.ops._price.fifo`, its storage and output registers). A layer's price holds
    that FIFO at its own input width, but where a converter follows the FIFO the composer
    (:mod:`hw.compose`) builds the FIFO at the producer's width, before the converter: the
    program adds ``fifo_per_bit * 8 * (a - b)`` on the edge that carries the layer's input FIFO
    (:meth:`dse.problem.Problem.fifo_edge`), ``a`` the producer's width and ``b`` the layer's."""
    model = model or resource_model()
    one, two = _price.fifo(model, 1), _price.fifo(model, 2)
    mux = model.converter.get("per_mux_bit", {})
    return {r: (float(model.converter["base"][r]), float(model.converter["per_bit"][r]),
                float(two[r] - one[r]), float(mux.get(r, 0.0)))
            for r in ("lut", "ff")}


def converter_cost(width_in: int, width_out: int, model: ResourceModel | None = None, *,
                   bits: int = ACT_BITS) -> dict:
    """``{"lut", "ff"}`` of a stream width converter from ``width_in`` to ``width_out`` lanes of
    ``bits`` bits (:func:`converter_coefficients`, without the FIFO term).

    Zero when the widths agree. The converter never limits throughput: it moves one beat per cycle
    on each side, and the layers around it need at least as many cycles per site.
    """
    if width_in == width_out:
        return {"lut": 0, "ff": 0}
    model = model or resource_model()
    mux = model.converter.get("per_mux_bit", {})
    lanes, inputs = width_in + width_out, converter_mux_inputs(width_in, width_out)
    return {r: math.ceil(model.converter["base"][r]
                         + bits * (model.converter["per_bit"][r] * lanes
                                   + mux.get(r, 0.0) * inputs))
            for r in ("lut", "ff")}


# -- candidate choices -----------------------------------------------------------------------------

def candidates(layer: LayerWork, formats, *, max_lanes: int = 64, max_pe: int = 64,
               count: int = 6, model: ResourceModel | None = None) -> list[LayerChoice]:
    """Every (format, lanes, pe, datapath) the explorer considers for ``layer`` (its op's
    enumeration over :func:`models.ops.base.parallelism_options` of the channel counts, and every
    datapath the format has on ``model``'s DSP slice: :func:`contract.constants.datapaths`)."""
    formats = [weight_format(f).name for f in (layer.formats or formats)]
    cell = (model or resource_model()).dsp_cell
    out = ops.of(layer).candidates(layer, formats, max_lanes=max_lanes, max_pe=max_pe,
                                   count=count, datapaths=lambda f: datapaths(f, dsp_cell=cell))
    return [c for c in out if _input_stage_misfit(layer, c) is None]
