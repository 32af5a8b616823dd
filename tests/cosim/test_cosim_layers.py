"""Per-layer benches: real hw/ blocks through the cosim machinery, against sparse-conv goldens."""

import numpy as np
import pytest

from cosim.layer import conv_golden, write_block_build
from cosim.session import simulate
from hw.line_buffer import output_sites

pytestmark = pytest.mark.rtl

H = W = 6


def _weights(fmt, shape, seed):
    from models.quant.formats import weight_format
    levels = np.asarray(sorted(int(v) for v in weight_format(fmt).levels))
    return np.random.default_rng(seed).choice(levels, size=shape)


def _bias(n, seed):
    return np.random.default_rng(seed).integers(-5000, 5000, size=n)


@pytest.fixture(scope="module")
def conv1x1_build(tmp_path_factory):
    from hw.conv1x1 import Conv1x1
    from hw.stream import TokenShape
    w, b = _weights("int8", (8, 8), 1), _bias(8, 2)
    block = Conv1x1(shape=TokenShape(height=H, width=W, channels=8, lanes=4), c_out=8, pe=2,
                    fmt="int8", weight=w, bias=b)
    d = write_block_build(block, tmp_path_factory.mktemp("conv1x1"), top="conv1x1")
    return d, conv_golden(weight=w, bias=b, stride=1, height=H, width=W), block


@pytest.mark.parametrize("path, stall", [("fast", 0.0), ("fast", 0.7), ("python", 0.3)])
def test_conv1x1_block(conv1x1_build, kit, sim_cache, path, stall):
    sim = kit.any_sim()
    kit.need(sim)
    d, golden, block = conv1x1_build
    frames = kit.frame_set(seed=8, height=H, width=W, channels=8)
    r = simulate(d, frames, golden, sim=sim, path=path, stall_in=stall, stall_out=stall,
                 cache_dir=sim_cache)
    assert r.ok, (r.mismatches[:3], r.stopped)
    if stall == 0.0:
        # hw.conv1x1.cycles_per_frame, measured: one extra cycle per non-empty frame (the
        # pipeline hand-over between sites; reported to hw/).
        want = [block.cycles_per_frame(len(c)) for c, _ in frames]
        assert all(0 <= got - w <= 1 for got, w in zip(r.cycles_per_frame[1:], want[1:],
                                                        strict=True)), (r.cycles_per_frame, want)


def _window_block(kind, stride, fmt, tmp_path_factory, lanes=2, c_in=4, c_out=4, pe=2):
    from hw.stream import TokenShape
    shape = TokenShape(height=H, width=W, channels=c_in, lanes=lanes)
    if kind == "dw":
        from hw.dwconv import DWConv3x3
        w, b = _weights(fmt, (c_in, 1, 3, 3), 3), _bias(c_in, 4)
        block = DWConv3x3(shape=shape, stride=stride, fmt=fmt, weight=w, bias=b)
        groups = c_in
    else:
        from hw.conv3x3 import Conv3x3
        w, b = _weights(fmt, (c_out, c_in, 3, 3), 5), _bias(c_out, 6)
        block = Conv3x3(shape=shape, c_out=c_out, pe=pe, stride=stride, fmt=fmt, weight=w,
                        bias=b)
        groups = 1
    d = write_block_build(block, tmp_path_factory.mktemp(f"{kind}{stride}"),
                          top=f"{kind}conv_s{stride}")
    golden = conv_golden(weight=w, bias=b, stride=stride, height=H, width=W, groups=groups)
    return d, golden, block


def _check_window_cycles(r, frames, block, stride, c_in, lanes, cycles_per_beat):
    from contract.cycles import window_cycle_bounds as cycle_bounds
    for i, (coords, _) in enumerate(frames[1:], start=1):
        n_out = len(output_sites(coords, height=H, width=W, stride=stride))
        lo, hi = cycle_bounds(height=H, width=W, channels=c_in, lanes=lanes, stride=stride,
                              active_sites=len(coords), output_sites=n_out,
                              cycles_per_beat=cycles_per_beat)
        assert lo <= r.cycles_per_frame[i] <= hi + 4, (i, lo, r.cycles_per_frame[i], hi)


@pytest.mark.parametrize("kind, stride, fmt", [
    ("dw", 1, "dybit4"),
    pytest.param("dw", 2, "int8", marks=pytest.mark.slow),
    pytest.param("full", 2, "int4", marks=pytest.mark.slow),
    pytest.param("full", 1, "dybit8", marks=pytest.mark.slow),
])
def test_window_blocks(kind, stride, fmt, tmp_path_factory, kit, sim_cache):
    sim = kit.any_sim()
    kit.need(sim)
    d, golden, block = _window_block(kind, stride, fmt, tmp_path_factory)
    frames = kit.frame_set(seed=9, height=H, width=W, channels=4)
    for path, stall in (("fast", 0.0), ("fast", 0.3), ("python", 0.7)):
        r = simulate(d, frames, golden, sim=sim, path=path, stall_in=stall, stall_out=stall,
                     seed=stall > 0, cache_dir=sim_cache)
        assert r.ok, (path, stall, r.mismatches[:3], r.stopped)
        if stall == 0.0:
            _check_window_cycles(r, frames, block, stride, 4, 2, 1 if kind == "dw" else 2)


def _datapath_block(case, tmp_path_factory):
    """The blocks this test set adds: two products per DSP, LUT multipliers, a depthwise conv
    with fewer pe than lanes, and window convs on the dense line buffer."""
    from hw.conv1x1 import Conv1x1
    from hw.conv3x3 import Conv3x3
    from hw.dwconv import DWConv3x3
    from hw.stream import TokenShape
    kind, fmt, datapath, lanes, pe, stride, dense, *fold = case
    shape = TokenShape(height=H, width=W, channels=8, lanes=lanes)
    if kind == "pw":
        w, b = _weights(fmt, (8, 8), 11), _bias(8, 12)
        block = Conv1x1(shape=shape, c_out=8, pe=pe, fmt=fmt, weight=w, bias=b,
                        datapath=datapath)
        golden = conv_golden(weight=w, bias=b, stride=1, height=H, width=W)
    elif kind == "dw":
        w, b = _weights(fmt, (8, 1, 3, 3), 13), _bias(8, 14)
        block = DWConv3x3(shape=shape, stride=stride, fmt=fmt, weight=w, bias=b, pe=pe,
                          datapath=datapath, dense=dense, kfold=fold[0] if fold else 1)
        golden = conv_golden(weight=w, bias=b, stride=stride, height=H, width=W, groups=8)
    else:
        w, b = _weights(fmt, (4, 8, 3, 3), 15), _bias(4, 16)
        block = Conv3x3(shape=shape, c_out=4, pe=pe, stride=stride, fmt=fmt, weight=w, bias=b,
                        datapath=datapath, dense=dense, kfold=fold[0] if fold else 1)
        golden = conv_golden(weight=w, bias=b, stride=stride, height=H, width=W)
    top = (f"{kind}_{fmt}_{datapath or 'own'}_{lanes}_{pe}_{stride}{'_dense' if dense else ''}"
           f"{'_fold' if fold else ''}")
    return write_block_build(block, tmp_path_factory.mktemp(top), top=top), golden, block


@pytest.mark.parametrize("case", [
    pytest.param(("pw", "int8", "dsp2", 4, 2, 1, False), marks=pytest.mark.slow),
    ("full", "int4", "lut", 2, 2, 1, False, 3),
    pytest.param(("dw", "int4", "lut", 4, 1, 2, False), marks=pytest.mark.slow),
    pytest.param(("full", "int8", "dsp2", 2, 4, 2, True), marks=pytest.mark.slow),
    ("dw", "int8", "", 8, 2, 2, True),
    ("dw", "int4", "lut", 2, 1, 1, False, 9),
    pytest.param(("dw", "int8", "", 4, 2, 2, True, 9), marks=pytest.mark.slow),
], ids=lambda c: "-".join(str(v) for v in c))
def test_datapath_and_dense_blocks(case, tmp_path_factory, kit, sim_cache):
    """dsp2 / LUT datapaths, kernel rows (a depthwise conv's taps) folded, depthwise pe < lanes
    and the dense line buffer
    in Verilator,
    bit-exact under stalls 0 / 0.3 / 0.7: sparse blocks on the special frames (empty,
    full, single-site, border) and random ones, dense blocks on dense frames; cycles of dense
    frames within 10 % of the block's formula."""
    sim = "verilator"
    kit.need(sim)
    (d, golden, block), dense = _datapath_block(case, tmp_path_factory), case[6]
    kind, lanes, pe, stride = case[0], case[3], case[4], case[5]
    fold = case[7] if len(case) > 7 else 1
    if dense:
        frames = [kit.random_frame(__import__("random").Random(s), height=H, width=W,
                                   channels=8, density=1.0) for s in range(6)]
    else:
        frames = kit.frame_set(seed=10, n=8, height=H, width=W, channels=8)
    for path, stall in (("fast", 0.0), ("fast", 0.3), ("python", 0.7)):
        r = simulate(d, frames, golden, sim=sim, path=path, stall_in=stall, stall_out=stall,
                     seed=stall > 0, cache_dir=sim_cache)
        assert r.ok, (path, stall, r.mismatches[:3], r.stopped)
        assert r.frames == len(frames)
        if stall == 0.0 and dense:  # frames back to back after the first
            want = block.cycles_per_frame(H * W)
            for got in r.cycles_per_frame[2:]:
                assert abs(got - want) <= 0.1 * want, (got, want)
        elif stall == 0.0 and kind != "pw":
            _check_window_cycles(r, frames, block, stride, 8, lanes,
                                 (lanes // pe if kind == "dw" else 4 // pe) * fold)
