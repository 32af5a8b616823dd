import random

import pytest
import torch

from hw.requant import LATENCY, Requantizer, cycles_per_frame
from hw.sim import run_stream
from hw.stream import TokenShape
from models.quant.requant import requant


def _frame(rng, h, w, c, n, lo=-(1 << 31), hi=(1 << 31) - 1):
    sites = sorted(rng.sample([(y, x) for y in range(h) for x in range(w)], n))
    feats = [[rng.randint(lo, hi) for _ in range(c)] for _ in sites]
    return sites, feats


def _run(dut, frames, *, seed, idle=0.0, stall=0.0):
    return run_stream(dut, frames, idle=idle, stall=stall, seed=seed)


@pytest.mark.parametrize("lanes,relu,S",
                         [(1, True, 20), (4, False, 31), (8, True, 47), (2, False, 1)])
def test_requant_exact_under_stalls(lanes, relu, S):
    rng = random.Random(lanes * 100 + S)
    c = 8
    shape = TokenShape(height=5, width=6, channels=c, lanes=lanes, data_width=32)
    M = [rng.randrange(1 << 15) for _ in range(c)]
    M[0] = (1 << 15) - 1
    lo, hi = (0, 127) if relu else (-127, 127)
    dut = Requantizer(shape=shape, M=M, S=S, lo=lo, hi=hi)
    small = 1 << min(S + 2, 31)
    frames = [_frame(rng, 5, 6, c, 7, -small, small - 1), _frame(rng, 5, 6, c, 0),
              _frame(rng, 5, 6, c, 1), _frame(rng, 5, 6, c, 30)]
    got, _ = _run(dut, frames, seed=lanes, idle=0.3, stall=0.3)
    assert len(got) == len(frames)
    for (coords, feats), (gc, gf) in zip(frames, got, strict=True):
        assert gc == coords
        want = requant(torch.tensor(feats, dtype=torch.int64).reshape(-1, c), M, S, lo, hi)
        assert gf == want.tolist()


def test_requant_cycles_match_formula():
    rng = random.Random(5)
    shape = TokenShape(height=4, width=4, channels=6, lanes=2, data_width=32)
    dut = Requantizer(shape=shape, M=[3] * 6, S=4, lo=-127, hi=127)
    frame = _frame(rng, 4, 4, 6, 16, -1000, 1000)
    _, cycles = _run(dut, [frame], seed=0)
    # source starts at cycle 0; the last beat leaves LATENCY cycles after it entered
    assert cycles == cycles_per_frame(active_sites=16, channels=6, lanes=2) + LATENCY


def test_requant_rejects_bad_params():
    shape = TokenShape(height=4, width=4, channels=2, lanes=1, data_width=32)
    with pytest.raises(ValueError, match="multipliers"):
        Requantizer(shape=shape, M=[1], S=4, lo=0, hi=127)
    with pytest.raises(ValueError, match="S must"):
        Requantizer(shape=shape, M=[1, 1], S=0, lo=0, hi=127)
    with pytest.raises(ValueError, match="clamp range"):
        Requantizer(shape=shape, M=[1, 1], S=3, lo=0, hi=300)


@pytest.mark.parametrize("acc_bits,dsp_acc_bits", [(10, None), (24, None), (24, 19), (20, 19),
                                                   (32, 27), (19, 19), (18, 19), (5, 3)])
def test_requant_narrow_accumulator_exact(acc_bits, dsp_acc_bits):
    """Narrow accumulators, and accumulators wider than one DSP split into an unsigned low part
    and a signed high part (the extremes of both parts in the first site)."""
    rng = random.Random(acc_bits)
    c, lanes, S = 4, 2, 12
    shape = TokenShape(height=4, width=4, channels=c, lanes=lanes, data_width=32)
    M = [rng.randrange(1 << 15) for _ in range(c)]
    M[1] = (1 << 15) - 1
    dut = Requantizer(shape=shape, M=M, S=S, lo=-127, hi=127, acc_bits=acc_bits,
                      dsp_acc_bits=dsp_acc_bits)
    split = dut.split
    assert split == (dsp_acc_bits - 1 if dsp_acc_bits and acc_bits >= dsp_acc_bits else None)
    top = 1 << (acc_bits - 1)
    frames = [_frame(rng, 4, 4, c, 16, -top, top - 1), _frame(rng, 4, 4, c, 0)]
    frames[0][1][0] = [-top, top - 1, -top, top - 1]
    if split is not None:  # low part all ones with the high part at -1 and 0, and vice versa
        low = (1 << split) - 1
        frames[0][1][1] = [-1, low, -(1 << split), min(1 << split, top - 1)]
    got, _ = _run(dut, frames, seed=3, idle=0.2, stall=0.2)
    for (coords, feats), (gc, gf) in zip(frames, got, strict=True):
        assert gc == coords
        want = requant(torch.tensor(feats, dtype=torch.int64).reshape(-1, c), M, S, -127, 127)
        assert gf == want.tolist()


@pytest.mark.parametrize("lanes,S,acc_bits,stall,dsp", [(1, 6, 12, 0.0, None),
                                                        (4, 20, 24, 0.3, 19),
                                                        (2, 13, 18, 0.7, None),
                                                        (8, 31, 32, 0.3, 19),
                                                        (2, 8, 26, 0.3, 19)])
def test_requant_per_channel_offsets_exact(lanes, S, acc_bits, stall, dsp):
    """Per-channel rounding offsets R (an imported layer's bias fraction): exact under stalls,
    offsets from below 0 to above 2^S, narrow accumulators too."""
    from models.quant.requant import rounding_offsets

    rng = random.Random(lanes * 7 + S)
    c = 8
    shape = TokenShape(height=4, width=5, channels=c, lanes=lanes, data_width=32)
    M = [rng.randrange(1, 1 << 15) for _ in range(c)]
    frac = [rng.uniform(-0.5, 0.5) for _ in range(c)]
    frac[0], frac[1] = -0.5, 0.5
    R = list(rounding_offsets(M, S, frac))
    if S < 15:
        assert min(R) < 0  # a small shift: the offset goes negative
    dut = Requantizer(shape=shape, M=M, S=S, lo=-7, hi=15, acc_bits=acc_bits, R=R,
                      dsp_acc_bits=dsp)
    assert (dut.split is not None) == (dsp is not None and acc_bits >= dsp)
    big = 1 << (acc_bits - 1)
    frames = [_frame(rng, 4, 5, c, 9, -big, big - 1), _frame(rng, 4, 5, c, 0),
              _frame(rng, 4, 5, c, 20, -big, big - 1)]
    got, _ = _run(dut, frames, seed=S, idle=stall, stall=stall)
    for (coords, feats), (gc, gf) in zip(frames, got, strict=True):
        assert gc == coords
        acc = torch.tensor(feats, dtype=torch.int64).reshape(-1, c)
        assert gf == requant(acc, M, S, -7, 15, R=R).tolist()
    # the offsets round (acc + fraction) * M / 2^S
    acc = torch.arange(-300, 300).reshape(-1, 1).expand(-1, c)
    exact = torch.floor((acc.double() + torch.tensor(frac)) * torch.tensor(M, dtype=torch.float64)
                        / 2**S + 0.5)
    diff = (requant(acc, M, S, -10**9, 10**9, R=R) - exact).abs()
    assert diff.max() <= 1
    if S >= 13:  # R's resolution is 1 / M of an accumulator step: fine once M is large
        assert diff.double().mean() < 0.01
