"""The clock as a measurement: an Fmax estimate per block and per design, fitted to nextpnr.

``dse/fmax_model.json`` (written by ``benchmarks/fit_fmax.py`` from nextpnr-ecp5 runs of every
block alone) gives, per block kind, the critical path in ns as

    delay = base[kind] + per_level[kind] * levels + per_kbit[kind] * window_kbits
            + mult[format] + datapath[datapath:format]

where ``levels`` is the depth of the adder tree that sums one accumulator's products in a cycle
(the accumulator add included), ``window_kbits`` a window block's window beat in thousands of
bits (``kh x kw x lanes`` activations: what its row selects and tap registers fan out over),
``mult[format]`` the multiply (a MULT18X18D for int formats, shift-adds in LUTs for DyBit) and
``datapath[...]`` what a datapath other than the format's default adds (two products per DSP
with their correction, ``dsp2:int8``; LUT multipliers, ``lut:int4``; 0 in a model fitted
without it). ``per_kbit`` is fitted for a kind whose sweep holds kernels folded over their rows
(``kfold``): unfolded, a window's bits and its adder tree grow together and one term stands for
both; folded, the tree shrinks and the window does not (a 5x5 int8 window of 4 lanes folded
five times ran at 83 MHz alone, where levels alone gave 107; docs/IMPLEMENT.md, stop 62). A
model or kind without it prices no window term; a design runs at ``1000 / (max over its blocks
of delay * routing_factor + routing_ns)`` MHz, the routing derate fitted on whole networks
implemented with ``codesign implement``. The ECP5 model's derate is additive (:func:`routing_ns`):
nanoseconds of wire that a network's critical path has beyond its slowest block's logic, growing
with the share of the part's LUTs the design uses; the Xilinx estimates keep a factor
(:func:`routing_factor`, ``1 + routing``). Why additive: congestion lengthens every path's wires by
about the same time, whatever its logic; a factor charged the deepest block's logic for it and
priced a DS-CNN, whose 55-product stem is the slowest block alone but not its critical path, 17.5 %
slow (docs/IMPLEMENT.md, "The routing derate made additive").
It is an estimate, labelled so wherever it appears (``fmax_est_mhz``); ``implementation.json``
holds the measurement.

The Xilinx parts have no open placer: their models (``dse/fmax_model_xc7.json`` for the 7-series
parts, ``dse/fmax_model_xcup.json`` for UltraScale+) are fitted by ``benchmarks/fit_fmax.py
--family xc7|xcup`` to the same blocks' *estimated* Fmax (``hw/timing.py``: static timing of the
``synth_xilinx`` netlist with 7-series cell delays and assumed routing), so on those parts the
model estimates an estimate; the docs and reports say so.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import cache
from pathlib import Path

from contract.constants import default_datapath

from .cost import DSP_ACC_BITS
from .devices import synth_family

__all__ = ["STAGE_KINDS", "WINDOW_KINDS", "block_features", "layer_blocks", "block_delay_ns",
           "fmax_model", "model_file", "design_fmax_mhz", "choice_delay_ns", "period_mhz",
           "period_ns", "routing_factor", "routing_ns", "lut_routing"]

#: Pass-through stages the block sweep places alone (``benchmarks/fit_fmax.py``): no weights;
#: their delay is a kind's base and a term in their lanes (no adder tree, no multiply:
#: :func:`block_features`). Every pass-through op is one: the flatten, the 2x2 pools, the global
#: pools, the window max pool (``maxpoolk``, 3x3 / 2 on the dense line buffer), the crop, the
#: table activation, the upsample and the two joins (the residual add and the concatenation,
#: placed with both input streams). A model fitted without one prices it as no path (0 ns), and
#: the networks recorded in a model file before a kind was listed keep their blocks.
STAGE_KINDS = ("flatten", "maxpool", "avgpool", "gap", "crop", "add", "concat", "act", "gmp",
               "upsample", "maxpoolk")

#: The window blocks (``<kind>_dense`` on the dense line buffer): their features carry the
#: window beat's width (``window_kbits``).
WINDOW_KINDS = ("dwconv3x3", "conv3x3")


def model_file(family: str = "ecp5") -> Path:
    """``dse/fmax_model.json`` (ECP5, measured by nextpnr) or ``dse/fmax_model_<family>.json``
    (``xc7``, ``xcup``: fitted to estimates); ``family`` may be a device family."""
    fam = synth_family(family)
    return Path(__file__).with_name("fmax_model.json" if fam == "ecp5"
                                    else f"fmax_model_{fam}.json")


def block_features(kind: str, fmt: str, lanes: int, kernel: int = 1, *,
                   acc_bits: int = 32, dense: bool = False, datapath: str = "",
                   products: int | None = None, window_bits: int = 0) -> dict:
    """``{"kind", "format", "levels", "datapath"}`` of a block (see the module docstring),
    and ``"window_kbits"`` for a window block given its ``window_bits`` (the beat's bits);
    ``"datapath"`` is ``"<datapath>:<format>"`` for a datapath other than the format's default
    (:func:`contract.constants.default_datapath`), else ``""``. ``kind`` is a
    block of the calibration grid: ``conv1x1`` (and linear), ``dwconv3x3`` (depthwise window),
    ``conv3x3`` (full window), ``requant`` (one level when its multiply spans two MULT18X18D,
    beyond a ``acc_bits`` of 19), ``width``. A window block of a dense network (``dense``: on
    the dense line buffer, whose paths differ from the sparse one's) is the kind
    ``<kind>_dense``; a model without that kind prices it as ``<kind>``. ``products`` (summed
    into one accumulator a cycle) defaults to a square ``kernel``'s at ``lanes``; a layer passes
    its op's count (:func:`layer_blocks`: a non-square kernel, rows folded over cycles). A
    pass-through stage (:data:`STAGE_KINDS`) has no products; its ``levels`` are those of a tree
    over its ``lanes`` instead, the width of the word its control reaches (a global pool at 16
    lanes runs at 108 MHz alone on ECP5, at 1 lane at 174: its dividers' state fans out to every
    lane)."""
    if kind in STAGE_KINDS:
        return {"kind": kind, "format": "none", "levels": math.ceil(math.log2(lanes + 1)),
                "datapath": ""}
    if products is None:
        products = {"conv1x1": lanes, "dwconv3x3": kernel * kernel,
                    "conv3x3": kernel * kernel * lanes}.get(kind, 0)
    levels = math.ceil(math.log2(products + 1)) if products else 0
    if kind == "requant":
        levels = int(acc_bits > DSP_ACC_BITS["MULT18X18D"])
    if dense and kind in ("dwconv3x3", "conv3x3"):
        kind += "_dense"
    special = products and datapath and datapath != default_datapath(fmt)
    feats = {"kind": kind, "format": fmt if products else "none", "levels": levels,
             "datapath": f"{datapath}:{fmt}" if special else ""}
    if window_bits and kind.removesuffix("_dense") in WINDOW_KINDS:
        feats["window_kbits"] = round(window_bits / 1000, 4)
    return feats


def layer_blocks(layer, choice) -> list[dict]:
    """The calibrated blocks a layer's stage is made of: its compute block, its requantizer
    (where it has one) and the pass-through stages of :data:`STAGE_KINDS` that its output
    stream feeds (LeNet-5's max-pools and flatten)."""
    from models import ops
    from models.ops.base import kernel_hw

    op = ops.of(layer)
    kh, kw = kernel_hw(layer)
    if layer.kernel == 1:
        kind, products = "conv1x1", choice.lanes
    else:
        kind = ("dwconv3x3" if layer.groups == layer.in_shape[0] and layer.groups > 1
                else "conv3x3")
        # the products one accumulator sums a cycle, as the block (a window op) builds them: a
        # 11x5 kernel has 55 taps, not 121, and a kernel folded over its rows sums one row a
        # cycle. Not a depthwise fold: every depthwise block of the calibration grid sums its 9
        # taps (one tree depth at any lanes), so the model's depthwise delay is one figure, the
        # line buffer's, which a fold does not shorten (measured: docs/IMPLEMENT.md)
        products = op.products(layer, choice if kind == "conv3x3" else replace(choice, kfold=1),
                               kh * kw)
    blocks = [block_features(kind, choice.format, choice.lanes, kh,
                             dense=bool(getattr(layer, "dense", False)),
                             datapath=choice.datapath, products=products,
                             window_bits=op.window_bits(layer, choice) if layer.kernel != 1
                             else 0)]
    if op.requantized(layer):  # the classifier's raw logits have none
        blocks.append(block_features("requant", "none", choice.pe,
                                     acc_bits=op.acc_bits(layer, choice.format)))
    blocks += [block_features(st["op"], "none", choice.pe)
               for st in getattr(layer, "stages", ()) if st["op"] in STAGE_KINDS]
    return blocks


@cache
def fmax_model(path=None, family: str = "ecp5") -> dict | None:
    """The fitted model of ``family`` (:func:`model_file`) or at ``path``, or None when none has
    been fitted."""
    p = Path(path) if path else model_file(family)
    return json.loads(p.read_text()) if p.is_file() else None


def block_delay_ns(feats: dict, model: dict) -> float:
    kind = feats["kind"]
    if kind in STAGE_KINDS and kind not in model["base"]:
        return 0.0  # a model fitted before the sweep timed the pass-through stages
    if kind not in model["base"]:  # a model fitted before dense window blocks had their kind
        kind = kind.removesuffix("_dense")
    return (model["base"].get(kind, max(model["base"].values()))
            + model["per_level"].get(kind, 0.0) * feats["levels"]
            + model.get("per_kbit", {}).get(kind, 0.0) * feats.get("window_kbits", 0.0)
            + model["mult"].get(feats["format"], 0.0)
            + model.get("datapath", {}).get(feats.get("datapath", ""), 0.0))


def choice_delay_ns(layer, choice, model: dict) -> float:
    """Estimated critical path of one layer's stage at ``choice``: its slowest block, ns (no
    routing derate: that is the whole design's, :func:`design_fmax_mhz`)."""
    return max(block_delay_ns(f, model) for f in layer_blocks(layer, choice))


def design_fmax_mhz(layers, choices, model: dict | None = None, *,
                    lut_share: float | None = None) -> float | None:
    """Estimated Fmax of a design: its slowest block, derated for routing in a whole network
    that uses ``lut_share`` of the part's LUTs (:func:`period_ns`)."""
    model = model if model is not None else fmax_model()
    if not model:
        return None
    worst = max(choice_delay_ns(layer, ch, model)
                for layer, ch in zip(layers, choices, strict=True))
    return period_mhz(worst, model, lut_share=lut_share)


def _share_term(model: dict, key: str, lut_share: float | None) -> float:
    k = model.get(f"{key}_per_lut_share")
    if k and lut_share is not None:
        return k * (lut_share - model.get("routing_ref_share", 0.0))
    return 0.0


def routing_factor(model: dict, lut_share: float | None = None) -> float:
    """The multiplicative part of the routing derate (the Xilinx estimates' form): ``1 + routing
    + routing_per_lut_share x (lut_share - routing_ref_share)``; 1 in a model with an additive
    derate only (:func:`routing_ns`). A model without the share term, or a design whose share is
    not known, gets the derate at the fitted networks' mean share."""
    return 1.0 + model.get("routing", 0.0) + _share_term(model, "routing", lut_share)


def routing_ns(model: dict, lut_share: float | None = None) -> float:
    """The additive part of the routing derate (the ECP5 model's form): ``routing_ns +
    routing_ns_per_lut_share x (lut_share - routing_ref_share)`` nanoseconds that a whole
    network's critical path has beyond its slowest block's alone (at least 0). On an LFE5U-85F
    the digits networks ran 1.7 ns over their slowest block at 12 % of the LUT4s and 7.3 ns at
    70 %. 0 in a model without it."""
    if "routing_ns" not in model:
        return 0.0
    return max(0.0, model["routing_ns"] + _share_term(model, "routing_ns", lut_share))


def period_ns(delay_ns: float, model: dict, *, lut_share: float | None = None) -> float:
    """The clock period (ns) of a whole design whose slowest block's delay is ``delay_ns``."""
    return delay_ns * routing_factor(model, lut_share) + routing_ns(model, lut_share)


def lut_routing(model: dict, device_lut: int) -> tuple[float, float, float, float]:
    """``(a, b, c, d)`` with ``delay x (a + b x lut) + c + d x lut`` = :func:`period_ns` of a
    design with ``lut`` of the part's ``device_lut`` LUTs: the linear form the DSE's time search
    prices (:attr:`dse.problem.Problem.routing`)."""
    a, c = routing_factor(model, 0.0), routing_ns(model, 0.0)
    b = (routing_factor(model, 1.0) - a) / device_lut
    d = (routing_ns(model, 1.0) - c) / device_lut
    return a, b, c, d


def period_mhz(delay_ns: float, model: dict, *, lut_share: float | None = None) -> float:
    """The clock (MHz) of a design whose slowest block's delay is ``delay_ns``, derated for
    routing in a whole network (:func:`period_ns`)."""
    return 1000.0 / period_ns(delay_ns, model, lut_share=lut_share)
