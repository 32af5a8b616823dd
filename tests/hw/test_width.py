import gc
import random
import warnings

import pytest
from amaranth.hdl import UnusedElaboratable

from hw.sim import run_stream
from hw.stream import TokenShape
from hw.width import LATENCY, WidthConverter, cycles_per_frame


def _frames(rng, c, sizes):
    out = []
    for n in sizes:
        sites = sorted(rng.sample([(y, x) for y in range(4) for x in range(5)], n))
        out.append((sites, [[rng.randint(-128, 127) for _ in range(c)] for _ in sites]))
    return out


def _run(dut, frames, *, idle=0.0, stall=0.0, seed=0):
    # a pass-through converter has no clocked logic: run_stream gives it a sync domain
    def check(p):
        assert len(p["data"]) == dut.o_shape.lanes

    return run_stream(dut, frames, idle=idle, stall=stall, seed=seed, sink_seed=seed + 7,
                      sync_domain=True, check_beat=check)


@pytest.mark.parametrize("c,a,b", [(12, 1, 4), (12, 4, 1), (12, 2, 3), (12, 3, 2), (12, 4, 6),
                                   (12, 12, 1), (8, 8, 8), (6, 6, 2)])
def test_width_converter_exact_under_stalls(c, a, b):
    rng = random.Random(c * a + b)
    dut = WidthConverter(shape=TokenShape(height=4, width=5, channels=c, lanes=a), lanes_out=b)
    frames = _frames(rng, c, [3, 0, 1, 20, 0])
    got, _ = _run(dut, frames, idle=0.3, stall=0.3, seed=a + b)
    assert got == frames


@pytest.mark.parametrize("c,a,b", [(12, 1, 4), (12, 4, 1), (12, 2, 3), (12, 3, 2), (8, 2, 2),
                                   (24, 8, 3), (12, 12, 1)])
def test_width_converter_cycles(c, a, b):
    rng = random.Random(3)
    dut = WidthConverter(shape=TokenShape(height=4, width=5, channels=c, lanes=a), lanes_out=b)
    frames = _frames(rng, c, [10])
    _, cycles = _run(dut, frames)
    fill = 0 if a == b else LATENCY
    assert cycles == cycles_per_frame(active_sites=10, channels=c, a=a, b=b) + fill


def test_width_converter_rejects_bad_lanes():
    # the half-built component would warn "created but never used" when collected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ValueError, match="divisor") as info:
            WidthConverter(shape=TokenShape(height=4, width=5, channels=6, lanes=3), lanes_out=4)
        del info
        gc.collect()


@pytest.mark.slow
@pytest.mark.parametrize("a", [1, 2, 3, 4, 6, 12])
@pytest.mark.parametrize("b", [1, 2, 3, 4, 6, 12])
def test_width_converter_all_divisors(a, b):
    rng = random.Random(a * 13 + b)
    dut = WidthConverter(shape=TokenShape(height=4, width=5, channels=12, lanes=a), lanes_out=b)
    frames = _frames(rng, 12, [4, 0, 20])
    got, _ = _run(dut, frames, idle=0.4, stall=0.4, seed=a * b)
    assert got == frames
