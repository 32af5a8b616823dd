import random

import pytest
import torch

from hw.conv1x1 import Conv1x1, cycles_per_frame, fill_cycles
from hw.sim import run_stream as hw_run_stream
from hw.stream import TokenShape
from models import reference as ref
from models.quant.formats import weight_format


def _frames(rng, h, w, c, sizes):
    out = []
    for n in sizes:
        sites = sorted(rng.sample([(y, x) for y in range(h) for x in range(w)], n))
        out.append((sites, [[rng.randint(-127, 127) for _ in range(c)] for _ in sites]))
    return out


def _weights(rng, fmt, c_out, c_in):
    levels = weight_format(fmt).levels.tolist()
    w = [[rng.choice(levels) for _ in range(c_in)] for _ in range(c_out)]
    b = [rng.randint(-5000, 5000) for _ in range(c_out)]
    return w, b


def run_stream(dut, frames, *, idle=0.0, stall=0.0, seed=0, max_cycles=200_000):
    """Drive ``frames`` through a token-stream block; return (output frames, cycles)."""
    return hw_run_stream(dut, frames, idle=idle, stall=stall, seed=seed, max_cycles=max_cycles)


def _check(frames, got, w, b):
    assert len(got) == len(frames)
    for (coords, feats), (gc, gf) in zip(frames, got, strict=True):
        assert gc == coords
        if feats:
            want = ref.linear(torch.tensor(feats), torch.tensor(w), torch.tensor(b)).tolist()
        else:
            want = []
        assert gf == want


@pytest.mark.parametrize("fmt,c_in,c_out,lanes,pe", [
    ("int8", 8, 6, 2, 3),
    ("dybit4", 8, 4, 4, 2),
    ("int4", 6, 4, 1, 4),
    ("dybit8", 4, 8, 4, 8),
    ("int8", 4, 4, 4, 4),
])
def test_conv1x1_exact_under_stalls(fmt, c_in, c_out, lanes, pe):
    rng = random.Random(c_in * 31 + c_out * 7 + lanes + pe)
    w, b = _weights(rng, fmt, c_out, c_in)
    shape = TokenShape(height=4, width=5, channels=c_in, lanes=lanes)
    dut = Conv1x1(shape=shape, c_out=c_out, pe=pe, fmt=fmt, weight=w, bias=b)
    frames = _frames(rng, 4, 5, c_in, [3, 0, 1, 20, 0, 2])
    got, _ = run_stream(dut, frames, idle=0.3, stall=0.3, seed=pe)
    _check(frames, got, w, b)


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("fmt,datapath,c_in,c_out,lanes,pe", [
    ("int8", "dsp2", 8, 6, 2, 2),
    ("int4", "dsp2", 8, 4, 4, 4),
    ("int4", "lut", 6, 4, 3, 2),
    ("int8", "dsp2", 4, 8, 1, 8),
])
def test_conv1x1_datapaths_exact(fmt, datapath, c_in, c_out, lanes, pe, stall):
    """Two products per DSP (dsp2) and LUT multipliers: bit-exact under stalls on empty, full,
    single-site and random frames, with the extreme weights and activations in every frame."""
    rng = random.Random(c_in * 31 + c_out * 7 + lanes + pe)
    w, b = _weights(rng, fmt, c_out, c_in)
    q = max(weight_format(fmt).levels.tolist())
    w[0] = [-q] * c_in  # a negative low product: the pair's borrow
    w[1] = [q] * c_in
    shape = TokenShape(height=4, width=5, channels=c_in, lanes=lanes)
    dut = Conv1x1(shape=shape, c_out=c_out, pe=pe, fmt=fmt, weight=w, bias=b, datapath=datapath)
    frames = _frames(rng, 4, 5, c_in, [3, 0, 1, 20, 20])
    frames[3] = (frames[3][0], [[127 if (i + j) % 2 else -127 for j in range(c_in)]
                                for i in range(20)])
    got, cycles = run_stream(dut, frames, idle=stall, stall=stall, seed=pe)
    _check(frames, got, w, b)
    if stall == 0.0:  # the same cycles as one product per DSP
        ref_dut = Conv1x1(shape=shape, c_out=c_out, pe=pe, fmt=fmt, weight=w, bias=b)
        assert run_stream(ref_dut, frames)[1] == cycles


@pytest.mark.parametrize("c_in,c_out,lanes,pe", [(8, 8, 2, 2), (8, 4, 8, 4), (16, 16, 4, 4),
                                                 (4, 4, 4, 4)])
def test_conv1x1_cycles_and_utilisation(c_in, c_out, lanes, pe):
    rng = random.Random(1)
    w, b = _weights(rng, "int8", c_out, c_in)
    shape = TokenShape(height=8, width=8, channels=c_in, lanes=lanes)
    dut = Conv1x1(shape=shape, c_out=c_out, pe=pe, fmt="int8", weight=w, bias=b)
    frames = _frames(rng, 8, 8, c_in, [60])
    got, cycles = run_stream(dut, frames)
    _check(frames, got, w, b)
    want = cycles_per_frame(active_sites=60, c_in=c_in, c_out=c_out, lanes=lanes, pe=pe)
    assert cycles == want + fill_cycles(c_in=c_in, lanes=lanes, fmt="int8")
    # MAC utilisation of a lone frame, input fill and eof included; the pipeline's latency is
    # paid once per lone frame (it overlaps the next frame in a stream of frames)
    mac_cycles = 60 * (c_in // lanes) * (c_out // pe)
    assert mac_cycles / (cycles - dut.latency) >= 0.9


def test_conv1x1_rejects_bad_weights():
    shape = TokenShape(height=2, width=2, channels=2, lanes=1)
    with pytest.raises(ValueError, match="not representable"):
        Conv1x1(shape=shape, c_out=1, pe=1, fmt="dybit4", weight=[[5, 1]], bias=[0])
    with pytest.raises(ValueError, match="pe must"):
        Conv1x1(shape=shape, c_out=3, pe=2, fmt="int8", weight=[[1, 1]] * 3, bias=[0] * 3)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["int8", "int4", "dybit4", "dybit8"])
@pytest.mark.parametrize("c_in,c_out,lanes,pe", [(16, 16, 1, 1), (16, 16, 16, 16), (16, 32, 4, 8),
                                                 (12, 6, 3, 2)])
def test_conv1x1_sweep(fmt, c_in, c_out, lanes, pe):
    rng = random.Random(hash((fmt, c_in, c_out, lanes, pe)) & 0xFFFF)
    w, b = _weights(rng, fmt, c_out, c_in)
    shape = TokenShape(height=4, width=4, channels=c_in, lanes=lanes)
    dut = Conv1x1(shape=shape, c_out=c_out, pe=pe, fmt=fmt, weight=w, bias=b)
    frames = _frames(rng, 4, 4, c_in, [16, 0, 3])
    got, _ = run_stream(dut, frames, idle=0.25, stall=0.25, seed=lanes + pe)
    _check(frames, got, w, b)


def test_conv1x1_rejects_accumulator_overflow():
    shape = TokenShape(height=2, width=2, channels=2, lanes=1)
    with pytest.raises(OverflowError, match="accumulator needs"):
        Conv1x1(shape=shape, c_out=1, pe=1, fmt="int8", weight=[[127, 127]], bias=[(1 << 31) - 1])


def _stride2_golden(frames, w, b, h, wd):
    """The op's golden model (models.reference.sparse_conv, k = 1, stride 2) per frame."""
    out = []
    for coords, feats in frames:
        xf = torch.tensor(feats, dtype=torch.int64).reshape(len(coords), len(w[0]))
        oc, of = ref.sparse_conv(torch.tensor(coords, dtype=torch.int64).reshape(-1, 2), xf,
                                 weight=torch.tensor(w), bias=torch.tensor(b), height=h, width=wd,
                                 stride=2)
        out.append(([tuple(c) for c in oc.tolist()], of.tolist()))
    return out


@pytest.mark.parametrize("fmt,c_in,c_out,lanes,pe,h,wd", [
    ("int8", 8, 6, 2, 3, 5, 6),     # odd height: the last row is an output row
    ("dybit4", 4, 8, 4, 2, 4, 4),
    ("int4", 6, 4, 1, 4, 7, 3),
    ("int8", 4, 4, 4, 4, 1, 5),     # a single row
])
def test_conv1x1_stride2_exact_under_stalls(fmt, c_in, c_out, lanes, pe, h, wd):
    """Projection shortcut: output (oy, ox) is input (2 oy, 2 ox); empty, full, single-site
    (on and off the even grid) and border frames, under random idle and backpressure."""
    rng = random.Random(c_in * 13 + c_out + lanes * 5 + pe + h)
    w, b = _weights(rng, fmt, c_out, c_in)
    shape = TokenShape(height=h, width=wd, channels=c_in, lanes=lanes)
    dut = Conv1x1(shape=shape, c_out=c_out, pe=pe, fmt=fmt, weight=w, bias=b, stride=2)
    assert (dut.o_shape.height, dut.o_shape.width) == (-(-h // 2), -(-wd // 2))
    every = [(y, x) for y in range(h) for x in range(wd)]
    border = [(y, x) for y, x in every if y in (0, h - 1) or x in (0, wd - 1)]

    def frame(sites):
        return (sites, [[rng.randint(-127, 127) for _ in range(c_in)] for _ in sites])
    frames = [frame([]), frame(every), frame([(0, 0)]), frame([every[-1]]), frame(border),
              frame([(y, x) for y, x in every if y % 2 or x % 2]), frame([])]
    frames += _frames(rng, h, wd, c_in, [rng.randint(0, h * wd) for _ in range(6)])
    for seed, (idle, stall) in enumerate(((0.0, 0.0), (0.3, 0.3), (0.7, 0.7))):
        got, _ = run_stream(dut, frames, idle=idle, stall=stall, seed=seed)
        assert got == _stride2_golden(frames, w, b, h, wd)


@pytest.mark.parametrize("c_in,c_out,lanes,pe", [(8, 8, 8, 8), (8, 4, 2, 4), (16, 16, 4, 2)])
def test_conv1x1_stride2_cycles(c_in, c_out, lanes, pe):
    """Frames back to back cost exactly the formula: max(MAC cycles of the kept sites, a cycle per
    input beat) + 1 (dense 6x6 maps: 36 input sites, 9 kept)."""
    rng = random.Random(3)
    w, b = _weights(rng, "int8", c_out, c_in)
    shape = TokenShape(height=6, width=6, channels=c_in, lanes=lanes)
    every = [(y, x) for y in range(6) for x in range(6)]
    res = []
    for n in (2, 6):
        dut = Conv1x1(shape=shape, c_out=c_out, pe=pe, fmt="int8", weight=w, bias=b, stride=2)
        frames = [(every, [[1] * c_in for _ in every])] * n
        res.append(run_stream(dut, frames)[1])
    want = cycles_per_frame(active_sites=9, input_sites=36, c_in=c_in, c_out=c_out, lanes=lanes,
                            pe=pe)
    assert (res[1] - res[0]) / 4 == want
