"""hw.conv3x3: raw accumulators bit-exact against models.reference.conv2d, under random stalls."""

import gc
import random
import warnings

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable

from contract.constants import mac_latency
from contract.cycles import window_cycle_bounds as cycle_bounds
from contract.cycles import window_cycles
from hw.conv3x3 import Conv3x3
from hw.line_buffer import output_sites
from hw.sim import conv3x3_reference, random_frame, run_frames
from hw.stream import TokenShape
from models.quant.formats import weight_format


def random_weights(rng, fmt, c_out, c_in):
    levels = [int(v) for v in weight_format(fmt).levels]
    w = np.array([rng.choice(levels) for _ in range(c_out * c_in * 9)], dtype=np.int64)
    b = np.array([rng.randint(-5000, 5000) for _ in range(c_out)], dtype=np.int64)
    return w.reshape(c_out, c_in, 3, 3), b


def edge_case_frames(rng, *, height, width, c_in, dense, n_dense):
    """``n_dense`` dense random frames; on a sparse map first a half-dense random frame, the
    empty frame, a single site and the border at the extremes."""
    border = [(y, x) for y in range(height) for x in range(width)
              if y in (0, height - 1) or x in (0, width - 1)]
    dense_frames = [random_frame(rng, height=height, width=width, channels=c_in, density=1.0)
                    for _ in range(n_dense)]
    return dense_frames if dense else [
        random_frame(rng, height=height, width=width, channels=c_in, density=0.5), ([], []),
        ([(height // 2, width // 2)], [[-127] * c_in]),
        (border, [[127] * c_in for _ in border])] + dense_frames


def check(frames, *, height, width, c_in, c_out, lanes, pe, stride, fmt, seed=0, **kw):
    rng = random.Random(seed)
    weight, bias = random_weights(rng, fmt, c_out, c_in)
    shape = TokenShape(height=height, width=width, channels=c_in, lanes=lanes)
    dut = Conv3x3(shape=shape, c_out=c_out, pe=pe, stride=stride, fmt=fmt, weight=weight,
                  bias=bias)
    got, times = run_frames(dut, frames, lanes=lanes, seed=seed, **kw)
    assert len(got) == len(frames)
    for k, ((coords, feats), (got_c, got_f)) in enumerate(zip(frames, got, strict=True)):
        ec, ef = conv3x3_reference(coords, feats, height=height, width=width, weight=weight,
                                   bias=bias, stride=stride)
        assert got_c == ec, f"frame {k}: output sites differ"
        assert got_f == ef, f"frame {k}: accumulators differ"
    return times


CASES = [
    # height, width, c_in, c_out, lanes, pe, stride, fmt, density
    (5, 7, 1, 4, 1, 2, 1, "int8", 0.5),
    (5, 7, 3, 4, 3, 4, 2, "dybit4", 0.5),
    (8, 8, 2, 2, 1, 1, 1, "dybit8", 1.0),
    (6, 6, 4, 6, 2, 3, 2, "int4", 0.3),
    (4, 5, 2, 4, 2, 1, 1, "int8", 1.0),
]


@pytest.mark.parametrize("height,width,c_in,c_out,lanes,pe,stride,fmt,density", CASES)
def test_conv3x3_random_stalls(height, width, c_in, c_out, lanes, pe, stride, fmt, density):
    rng = random.Random(height * 100 + width + c_in)
    frames = [random_frame(rng, height=height, width=width, channels=c_in, density=d)
              for d in (density, 0.0, 1.0)]
    frames.append(([(0, width - 1), (height - 1, 0)], [[127] * c_in, [-127] * c_in]))
    check(frames, height=height, width=width, c_in=c_in, c_out=c_out, lanes=lanes, pe=pe,
          stride=stride, fmt=fmt, idle=0.3, stall=0.3, seed=4)


@pytest.mark.parametrize("stride,lanes,pe", [(1, 1, 1), (2, 2, 2), (1, 2, 4)])
def test_conv3x3_cycles(stride, lanes, pe):
    h, w, c_in, c_out = 8, 8, 2, 4
    rng = random.Random(31)
    frames = [random_frame(rng, height=h, width=w, channels=c_in, density=d)
              for d in (1.0, 1.0, 1.0, 0.3)]
    times = check(frames, height=h, width=w, c_in=c_in, c_out=c_out, lanes=lanes, pe=pe,
                  stride=stride, fmt="int8")
    starts = [-mac_latency("int8", lanes * 9)] + times[:-1]
    g = c_out // pe
    for k, ((coords, _), t0, t1) in enumerate(zip(frames, starts, times, strict=True)):
        n_out = len(output_sites(coords, height=h, width=w, stride=stride))
        lo, hi = cycle_bounds(height=h, width=w, channels=c_in, lanes=lanes, stride=stride,
                              active_sites=len(coords), output_sites=n_out, cycles_per_beat=g)
        assert lo <= t1 - t0 <= hi
        if k > 0:  # the estimate is for frames back to back
            est = window_cycles(height=h, width=w, channels=c_in, lanes=lanes, stride=stride,
                                active_sites=len(coords), output_sites=n_out,
                                cycles_per_beat=c_out // pe)
            if len(coords) == h * w:
                assert t1 - t0 == est
            else:  # sparse rows differ; the estimate assumes they balance
                assert abs((t1 - t0) - est) <= 0.1 * est + 2


def _rejects(match, **kw):
    # the half-built component would warn "created but never used" when collected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ValueError, match=match) as info:
            Conv3x3(**kw)
        del info
        gc.collect()


def test_conv3x3_rejects_bad_input():
    shape = TokenShape(height=4, width=4, channels=1, lanes=1)
    w = np.zeros((2, 1, 3, 3), dtype=np.int64)
    _rejects("pe must be a positive divisor of c_out=2, not 3",
             shape=shape, c_out=2, pe=3, stride=1, fmt="int8", weight=w, bias=[0, 0])
    _rejects("weight value 9 is not representable in int4",
             shape=shape, c_out=2, pe=1, stride=1, fmt="int4", weight=w + 9, bias=[0, 0])
    _rejects("bias must have 2 values",
             shape=shape, c_out=2, pe=1, stride=1, fmt="int8", weight=w, bias=[0])


@pytest.mark.slow
@pytest.mark.parametrize("height,width,c_in,c_out,lanes,pe,stride,fmt,density", [
    (60, 80, 2, 8, 2, 4, 1, "dybit8", 0.2),
    (60, 80, 2, 8, 1, 8, 2, "int8", 0.2),
    (16, 16, 3, 16, 3, 4, 2, "int4", 1.0),
    (15, 17, 4, 4, 2, 2, 1, "dybit4", 0.6),
])
def test_conv3x3_sweep(height, width, c_in, c_out, lanes, pe, stride, fmt, density):
    rng = random.Random(55)
    frames = [random_frame(rng, height=height, width=width, channels=c_in, density=density)
              for _ in range(2)]
    check(frames, height=height, width=width, c_in=c_in, c_out=c_out, lanes=lanes, pe=pe,
          stride=stride, fmt=fmt, idle=0.2, stall=0.2, seed=6)


def test_conv3x3_built_from_its_op_and_no_multiplier_for_dybit():
    from amaranth.back import rtlil

    from contract.point import LayerChoice
    from hw.compose import build_block
    from models.qgraph import QNode

    rng = random.Random(2)
    c_in, c_out, h, w = 1, 4, 6, 6
    for fmt, has_mul in (("dybit4", False), ("int4", True)):
        weight, bias = random_weights(rng, fmt, c_out, c_in)
        node = QNode(name="stem", op="conv", inputs=("x",), in_shape=(c_in, h, w),
                     out_shape=(c_out, h, w), kernel=3, stride=1, groups=1, wformat=fmt,
                     weight=weight, bias=bias, M=np.ones(c_out, dtype=np.int64))
        dut = build_block(node, LayerChoice(fmt, 1, 2), TokenShape(height=h, width=w,
                                                                        channels=c_in, lanes=1))
        assert dut.o_shape == TokenShape(height=h, width=w, channels=c_out, lanes=2,
                                         data_width=32)
        assert ("$mul" in rtlil.convert(dut, name="stem")) == has_mul


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("height,width,c_in,c_out,lanes,pe,stride,fmt,datapath,kernel", [
    (5, 6, 2, 4, 2, 2, 1, "int8", "dsp2", 3),
    (6, 5, 3, 4, 1, 4, 2, "int4", "dsp2", 3),
    (5, 7, 2, 3, 2, 3, 1, "int4", "lut", 3),
    (6, 6, 2, 2, 1, 2, 2, "int4", "lut", 5),
])
def test_conv3x3_datapaths_exact(height, width, c_in, c_out, lanes, pe, stride, fmt, datapath,
                                 kernel, stall):
    """dsp2 and LUT datapaths of window convs: bit-exact against the golden conv on random,
    empty, full, single-site and border frames under stalls, extreme weights included."""
    rng = random.Random(height * 100 + width + c_out)
    k = kernel
    levels = [int(v) for v in weight_format(fmt).levels]
    weight = np.array([rng.choice(levels) for _ in range(c_out * c_in * k * k)],
                      dtype=np.int64).reshape(c_out, c_in, k, k)
    weight[0], weight[1] = -max(levels), max(levels)
    bias = np.array([rng.randint(-5000, 5000) for _ in range(c_out)], dtype=np.int64)
    border = [(y, x) for y in range(height) for x in range(width)
              if y in (0, height - 1) or x in (0, width - 1)]
    frames = [random_frame(rng, height=height, width=width, channels=c_in, density=0.5),
              ([], []),
              random_frame(rng, height=height, width=width, channels=c_in, density=1.0),
              ([(height // 2, width // 2)], [[-127] * c_in]),
              (border, [[127] * c_in for _ in border])]
    shape = TokenShape(height=height, width=width, channels=c_in, lanes=lanes)
    dut = Conv3x3(shape=shape, c_out=c_out, pe=pe, stride=stride, fmt=fmt, weight=weight,
                  bias=bias, kernel=kernel, datapath=datapath)
    got, _ = run_frames(dut, frames, lanes=lanes, seed=3, idle=stall, stall=stall)
    for n, ((coords, feats), out) in enumerate(zip(frames, got, strict=True)):
        assert out == tuple(conv3x3_reference(coords, feats, height=height, width=width,
                                              weight=weight, bias=bias, stride=stride)), n


def test_conv3x3_int4_activations():
    h, w, c_in, c_out = 5, 4, 2, 2
    rng = random.Random(12)
    weight, bias = random_weights(rng, "dybit8", c_out, c_in)
    shape = TokenShape(height=h, width=w, channels=c_in, lanes=1, data_width=4)
    dut = Conv3x3(shape=shape, c_out=c_out, pe=1, stride=2, fmt="dybit8", weight=weight,
                  bias=bias)
    frames = [random_frame(rng, height=h, width=w, channels=c_in, density=d, lo=-7, hi=7)
              for d in (0.5, 1.0)]
    got, _ = run_frames(dut, frames, lanes=1, idle=0.2, stall=0.2)
    for (coords, feats), out in zip(frames, got, strict=True):
        assert out == tuple(conv3x3_reference(coords, feats, height=h, width=w, weight=weight,
                                              bias=bias, stride=2))


# height, width, c_in, c_out, lanes, pe, stride, fmt, kernel
KXK = [
    (6, 7, 2, 4, 1, 2, 1, "int8", 5),
    (7, 9, 3, 4, 3, 2, 2, "int4", 5),
    (8, 8, 1, 3, 1, 3, 1, "dybit4", 7),
    (9, 7, 2, 2, 2, 1, 2, "int8", 7),
    (3, 4, 2, 2, 1, 1, 1, "int8", 5),   # a map smaller than the window
    (13, 8, 1, 4, 1, 2, 2, "int8", (11, 5)),  # a DS-CNN stem's 10x4 / 2, centred
    (7, 9, 2, 2, 2, 2, 1, "int4", (3, 9)),
]


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("height,width,c_in,c_out,lanes,pe,stride,fmt,kernel", KXK)
def test_convkxk_exact(height, width, c_in, c_out, lanes, pe, stride, fmt, kernel, stall):
    """5x5 and 7x7 windows: bit-exact against the one golden conv (models.reference.sparse_conv)
    on empty, full, single-site, border and random frames, under stalls."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    rng = random.Random(kh * 1000 + kw * 100 + height * 10 + width)
    levels = [int(v) for v in weight_format(fmt).levels]
    weight = np.array([rng.choice(levels) for _ in range(c_out * c_in * kh * kw)],
                      dtype=np.int64).reshape(c_out, c_in, kh, kw)
    bias = np.array([rng.randint(-5000, 5000) for _ in range(c_out)], dtype=np.int64)
    border = [(y, x) for y in range(height) for x in range(width)
              if y in (0, height - 1) or x in (0, width - 1)]
    frames = [random_frame(rng, height=height, width=width, channels=c_in, density=0.4),
              ([], []),
              random_frame(rng, height=height, width=width, channels=c_in, density=1.0),
              ([(height // 2, width // 2)], [[127] * c_in]),
              (border, [[rng.randint(-127, 127) for _ in range(c_in)] for _ in border]),
              random_frame(rng, height=height, width=width, channels=c_in, density=1.0),
              random_frame(rng, height=height, width=width, channels=c_in, density=1.0)]
    shape = TokenShape(height=height, width=width, channels=c_in, lanes=lanes)
    dut = Conv3x3(shape=shape, c_out=c_out, pe=pe, stride=stride, fmt=fmt, weight=weight,
                  bias=bias, kernel=kernel)
    got, times = run_frames(dut, frames, lanes=lanes, seed=kh + kw, idle=stall, stall=stall)
    for k, ((coords, feats), (gc_, gf)) in enumerate(zip(frames, got, strict=True)):
        from models.reference import sparse_conv

        oc, of = sparse_conv(coords, feats, weight=weight, bias=bias, height=height,
                             width=width, stride=stride)
        assert gc_ == [tuple(v) for v in oc.tolist()], f"frame {k}: output sites differ"
        assert gf == of.tolist(), f"frame {k}: accumulators differ"
    if stall == 0.0:
        # a dense frame right after a dense one (frames back to back): within 10 % of the
        # window formula the DSE prices
        coords = frames[-1][0]
        n_out = len(output_sites(coords, height=height, width=width, stride=stride,
                                 kernel=kernel))
        est = window_cycles(height=height, width=width, channels=c_in, lanes=lanes,
                            stride=stride, active_sites=len(coords), output_sites=n_out,
                            cycles_per_beat=c_out // pe)
        meas = times[-1] - times[-2]
        assert abs(meas - est) <= 0.1 * est, (meas, est)


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("block,height,width,c_in,c_out,lanes,pe,stride,fmt,datapath,kernel", [
    ("conv", 6, 7, 2, 4, 1, 2, 1, "int8", "dsp2", 3),
    ("conv", 7, 6, 4, 4, 2, 1, 2, "int4", "lut", 5),
    ("conv", 5, 5, 1, 2, 1, 2, 2, "dybit4", "", 3),
    ("dw", 8, 6, 8, 8, 4, 1, 2, "int8", "", 3),
    ("dw", 5, 7, 4, 4, 2, 2, 1, "int4", "lut", 3),
])
def test_window_convs_on_the_dense_line_buffer(block, height, width, c_in, c_out, lanes, pe,
                                               stride, fmt, datapath, kernel, stall):
    """A dense network's window convs take the dense line buffer: bit-exact against the golden
    conv on dense frames (random, extreme values) under stalls, and frames back to back within
    two cycles of window_cycles."""
    from hw.dense_line_buffer import DenseLineBuffer
    from hw.dwconv import DWConv3x3

    rng = random.Random(height * 7 + width + c_out + pe)
    levels = [int(v) for v in weight_format(fmt).levels]
    groups = c_in if block == "dw" else 1
    weight = np.array([rng.choice(levels) for _ in range(c_out * c_in // groups * kernel ** 2)],
                      dtype=np.int64).reshape(c_out, c_in // groups, kernel, kernel)
    bias = np.array([rng.randint(-5000, 5000) for _ in range(c_out)], dtype=np.int64)
    shape = TokenShape(height=height, width=width, channels=c_in, lanes=lanes)
    if block == "dw":
        dut = DWConv3x3(shape=shape, stride=stride, fmt=fmt, weight=weight, bias=bias, pe=pe,
                        datapath=datapath, dense=True)
    else:
        dut = Conv3x3(shape=shape, c_out=c_out, pe=pe, stride=stride, fmt=fmt, weight=weight,
                      bias=bias, kernel=kernel, datapath=datapath, dense=True)
    assert isinstance(dut.elaborate(None).submodules.lb, DenseLineBuffer)
    sites = [(y, x) for y in range(height) for x in range(width)]
    frames = [random_frame(rng, height=height, width=width, channels=c_in, density=1.0)
              for _ in range(4)]
    frames[1] = (sites, [[127 if (y + x) % 2 else -127] * c_in for y, x in sites])
    got, times = run_frames(dut, frames, lanes=lanes, seed=11, idle=stall, stall=stall)
    for n, ((coords, feats), out) in enumerate(zip(frames, got, strict=True)):
        assert out == tuple(conv3x3_reference(coords, feats, height=height, width=width,
                                              weight=weight, bias=bias, stride=stride,
                                              groups=groups)), n
    if stall == 0.0:
        g = (c_out // pe) if block == "conv" else lanes // pe
        est = window_cycles(height=height, width=width, channels=c_in, lanes=lanes,
                            stride=stride, active_sites=height * width, cycles_per_beat=g)
        for t0, t1 in zip(times[1:], times[2:], strict=False):
            assert abs((t1 - t0) - est) <= 2


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("height,width,c_in,c_out,lanes,pe,stride,fmt,datapath,kernel,dense", [
    (5, 6, 2, 4, 2, 2, 1, "int8", "", 3, False),
    (6, 5, 4, 2, 2, 1, 2, "int4", "lut", 3, False),
    (6, 7, 2, 4, 1, 4, 1, "int8", "dsp2", 5, True),
    (7, 6, 4, 4, 4, 2, 2, "dybit4", "", 3, True),
])
def test_conv3x3_kernel_rows_folded(height, width, c_in, c_out, lanes, pe, stride, fmt, datapath,
                                    kernel, dense, stall):
    """kfold = kh: one kernel row per cycle (pe x lanes x kw multipliers), bit-exact on random,
    empty, full, single-site and border frames (dense: dense frames) under stalls; frames back to
    back cost window_cycles with kh times the cycles per beat."""
    rng = random.Random(height * 13 + width + c_out + pe)
    k = kernel
    levels = [int(v) for v in weight_format(fmt).levels]
    weight = np.array([rng.choice(levels) for _ in range(c_out * c_in * k * k)],
                      dtype=np.int64).reshape(c_out, c_in, k, k)
    bias = np.array([rng.randint(-5000, 5000) for _ in range(c_out)], dtype=np.int64)
    frames = edge_case_frames(rng, height=height, width=width, c_in=c_in, dense=dense,
                              n_dense=4)
    shape = TokenShape(height=height, width=width, channels=c_in, lanes=lanes)
    dut = Conv3x3(shape=shape, c_out=c_out, pe=pe, stride=stride, fmt=fmt, weight=weight,
                  bias=bias, kernel=kernel, datapath=datapath, dense=dense, kfold=k)
    got, times = run_frames(dut, frames, lanes=lanes, seed=5, idle=stall, stall=stall)
    for n, ((coords, feats), out) in enumerate(zip(frames, got, strict=True)):
        assert out == tuple(conv3x3_reference(coords, feats, height=height, width=width,
                                              weight=weight, bias=bias, stride=stride)), n
    if stall == 0.0:
        est = window_cycles(height=height, width=width, channels=c_in, lanes=lanes,
                            stride=stride, active_sites=height * width,
                            cycles_per_beat=c_out // pe * k)
        assert dut.cycles_per_frame(height * width) == est
        for t0, t1 in zip(times[-3:], times[-2:], strict=False):
            assert abs((t1 - t0) - est) <= 2, (t1 - t0, est)


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("height,width,c_in,c_out,lanes,pe,stride,fmt,datapath,kfold,dense", [
    (5, 6, 8, 4, 2, 2, 1, "int8", "", 1, False),      # B = 4
    (6, 5, 8, 2, 1, 1, 2, "int4", "lut", 3, False),   # B = 8, rows folded
    (6, 7, 8, 4, 2, 4, 1, "int8", "dsp2", 3, True),   # B = 4, rows folded, dense
    (5, 5, 16, 4, 1, 2, 1, "dybit4", "", 1, True),    # B = 16
])
def test_window_beats_in_lut_ram_are_the_register_buffer_cycle_for_cycle(
        monkeypatch, height, width, c_in, c_out, lanes, pe, stride, fmt, datapath, kfold, dense,
        stall):
    """With B >= BEAT_BUFFER_RAM_BEATS input beats a site the window beats that later groups and
    row steps re-read sit in LUT RAM (one memory per row step): bit-exact against the golden conv
    on random, empty, single-site, border and dense frames under stalls, and every output beat
    leaves in the same cycle as from the register buffer it replaces."""
    import hw.conv3x3 as conv_mod
    from contract.constants import BEAT_BUFFER_RAM_BEATS

    assert c_in // lanes >= BEAT_BUFFER_RAM_BEATS
    rng = random.Random(height * 17 + width + c_in + kfold)
    weight, bias = random_weights(rng, fmt, c_out, c_in)
    frames = edge_case_frames(rng, height=height, width=width, c_in=c_in, dense=dense,
                              n_dense=3)
    shape = TokenShape(height=height, width=width, channels=c_in, lanes=lanes)

    def run():
        dut = Conv3x3(shape=shape, c_out=c_out, pe=pe, stride=stride, fmt=fmt, weight=weight,
                      bias=bias, datapath=datapath, dense=dense, kfold=kfold)
        mems = [n for n in dut.elaborate(None)._named_submodules if n.startswith("beats")]
        return mems, run_frames(dut, frames, lanes=lanes, seed=9, idle=stall, stall=stall)

    mems, (got, times) = run()
    assert len(mems) == kfold
    for n, ((coords, feats), out) in enumerate(zip(frames, got, strict=True)):
        assert out == tuple(conv3x3_reference(coords, feats, height=height, width=width,
                                              weight=weight, bias=bias, stride=stride)), n
    monkeypatch.setattr(conv_mod, "BEAT_BUFFER_RAM_BEATS", 10 ** 6)
    reg_mems, (reg_got, reg_times) = run()
    assert reg_mems == [] and reg_got == got
    assert reg_times == times


def test_synthesis_keeps_both_live_registers(tmp_path):
    """The unit's `live` is two registers (the issue's and the taps' select), kept apart in
    synthesis: Yosys would otherwise merge them into one, whose net then runs from the group
    counter's update into every tap bit's select (docs/IMPLEMENT.md, stop 61)."""
    import json
    import re

    from hw.synth import synthesize

    rng = random.Random(5)
    fmt = "int8"
    levels = [int(v) for v in weight_format(fmt).levels]
    weight = np.array([rng.choice(levels) for _ in range(4 * 2 * 9)],
                      dtype=np.int64).reshape(4, 2, 3, 3)
    bias = np.zeros(4, dtype=np.int64)
    dut = Conv3x3(shape=TokenShape(height=4, width=4, channels=2, lanes=1), c_out=4, pe=2,
                  stride=1, fmt=fmt, weight=weight, bias=bias, dense=True)
    synthesize(dut, name="conv", workdir=tmp_path, family="ecp5", netlist=True)
    cells = json.loads((tmp_path / "conv.json").read_text())["modules"]["conv"]["cells"]
    found = {re.match(r"\\?(live_[iq])_TRELLIS_FF", n).group(1) for n, c in cells.items()
             if c["type"] == "TRELLIS_FF" and re.match(r"\\?live_[iq]_TRELLIS_FF", n)}
    assert found == {"live_i", "live_q"}
