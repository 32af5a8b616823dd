"""hw.line_buffer: windows bit-exact against the zero-filled dense map, under random stalls."""

import random

import pytest

from contract.cycles import window_cycle_bounds as cycle_bounds
from contract.cycles import window_cycles as cycles_per_frame
from contract.cycles import window_output_size as output_size
from hw.line_buffer import DEFAULT_SLOTS, LineBuffer, output_sites
from hw.sim import frame_beats, random_frame, run_beats
from hw.stream import TokenShape


def reference_windows(coords, feats, *, height, width, channels, lanes, stride):
    """Expected window beats of one frame (payload dicts) from the dense zero-filled map."""
    dense = {tuple(c): f for c, f in zip(coords, feats, strict=True)}
    out = []
    for oy, ox in output_sites(coords, height=height, width=width, stride=stride):
        cy, cx = stride * oy, stride * ox
        for b in range(channels // lanes):
            taps, mask = [], 0
            for t in range(9):
                site = (cy - 1 + t // 3, cx - 1 + t % 3)
                if site in dense:
                    mask |= 1 << t
                    taps.append(dense[site][b * lanes:(b + 1) * lanes])
                else:
                    taps.append([0] * lanes)
            out.append({"y": oy, "x": ox, "taps": taps, "mask": mask, "beat": b, "eof": 0})
    out.append({"y": 0, "x": 0, "taps": [[0] * lanes] * 9, "mask": 0, "beat": 0, "eof": 1})
    return out


def run_line_buffer(frames, *, height, width, channels, lanes, stride, idle=0.0, stall=0.0,
                    seed=0, slots=DEFAULT_SLOTS):
    shape = TokenShape(height=height, width=width, channels=channels, lanes=lanes)
    dut = LineBuffer(shape=shape, stride=stride, slots=slots)
    n_beats = sum(len(frame_beats(c, f, lanes=lanes)) for c, f in frames)
    return run_beats(dut, frames, lanes=lanes, idle=idle, stall=stall, seed=seed,
                     max_cycles=20 * n_beats + 200 * len(frames) + 1000)


def check(frames, *, height, width, channels, lanes, stride, **kw):
    got, times = run_line_buffer(frames, height=height, width=width, channels=channels,
                                 lanes=lanes, stride=stride, **kw)
    expect = []
    for coords, feats in frames:
        expect += reference_windows(coords, feats, height=height, width=width,
                                    channels=channels, lanes=lanes, stride=stride)
    assert len(got) == len(expect)
    for i, (g, e) in enumerate(zip(got, expect, strict=True)):
        assert g == e, f"beat {i}: got {g}, expected {e}"
    return times


GEOMS = [
    # height, width, channels, lanes, stride, density
    (5, 7, 2, 1, 1, 0.4),
    (5, 7, 4, 2, 2, 0.4),
    (8, 8, 3, 3, 1, 1.0),
    (8, 8, 3, 3, 2, 1.0),
    (6, 9, 6, 2, 2, 0.15),
    (7, 5, 1, 1, 1, 0.6),
]


@pytest.mark.parametrize("height,width,channels,lanes,stride,density", GEOMS)
def test_windows_random_stalls(height, width, channels, lanes, stride, density):
    rng = random.Random(hash((height, width, channels, lanes, stride)) & 0xFFFF)
    frames = [random_frame(rng, height=height, width=width, channels=channels, density=d)
              for d in (density, 0.0, density, 1.0)]
    check(frames, height=height, width=width, channels=channels, lanes=lanes, stride=stride,
          idle=0.3, stall=0.3, seed=5)


@pytest.mark.parametrize("slots", [4, 8])
@pytest.mark.parametrize("stride", [1, 2])
def test_special_frames(stride, slots):
    h, w, c = 5, 6, 2
    rng = random.Random(7)
    border = [(y, x) for y in range(h) for x in range(w) if y in (0, h - 1) or x in (0, w - 1)]
    cases = [
        [],                                   # empty
        [(0, 0)], [(h - 1, w - 1)], [(2, 3)],  # single sites incl. corners
        border,                               # every border site
        [(0, 2), (4, 2)],                     # rows far apart
        [(y, x) for y in range(h) for x in range(w)],
    ]
    frames = [(cs, [[rng.randint(-127, 127) for _ in range(c)] for _ in cs]) for cs in cases]
    check(frames, height=h, width=w, channels=c, lanes=1, stride=stride, idle=0.2, stall=0.4,
          slots=slots)


@pytest.mark.parametrize("slots", [4, 8])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("density", [1.0, 0.3])
def test_cycles_no_stalls(stride, density, slots):
    h, w, c, lanes = 8, 8, 4, 2
    rng = random.Random(11)
    frames = [random_frame(rng, height=h, width=w, channels=c, density=density)
              for _ in range(4)]
    times = check(frames, height=h, width=w, channels=c, lanes=lanes, stride=stride,
                  slots=slots)
    starts = [0] + times[:-1]
    for k, ((coords, _), t0, t1) in enumerate(zip(frames, starts, times, strict=True)):
        n_out = len(output_sites(coords, height=h, width=w, stride=stride))
        lo, hi = cycle_bounds(height=h, width=w, channels=c, lanes=lanes, stride=stride,
                              active_sites=len(coords), output_sites=n_out)
        measured = t1 - t0
        assert lo <= measured <= hi
        if k == 0:
            continue  # the estimate is for frames back to back
        est = cycles_per_frame(height=h, width=w, channels=c, lanes=lanes, stride=stride,
                               active_sites=len(coords), output_sites=n_out)
        if slots == 4:
            # the documented price of fewer slots on dense maps (sparse: only the bounds hold):
            # at stride 1 the writer waits a cycle per row for the step in stage a (8x8: 137
            # against 131), at stride 2 none
            if density == 1.0:
                assert est <= measured <= est + (h - 2 if stride == 1 else 0)
        elif density == 1.0:
            assert measured == est
        else:
            # rows of a small random map differ; the estimate assumes they balance
            assert abs(measured - est) <= 0.1 * est + 2


def test_output_sites_rule():
    # stride 2: (oy, ox) active iff an input in rows 2oy-1..2oy+1, cols 2ox-1..2ox+1
    h, w = 7, 6
    rng = random.Random(3)
    coords = [(y, x) for y in range(h) for x in range(w) if rng.random() < 0.2]
    ho, wo = output_size(h, w, 2)
    brute = [(oy, ox) for oy in range(ho) for ox in range(wo)
             if any(2 * oy - 1 <= y <= 2 * oy + 1 and 2 * ox - 1 <= x <= 2 * ox + 1
                    for y, x in coords)]
    assert output_sites(coords, height=h, width=w, stride=2) == brute


def test_bad_params():
    with pytest.raises(ValueError, match="stride must be 1 or 2, not 3"):
        output_size(4, 4, 3)


@pytest.mark.parametrize("height,width", [(1, 1), (2, 2), (1, 5), (3, 1)])
@pytest.mark.parametrize("stride", [1, 2])
def test_tiny_maps(height, width, stride):
    rng = random.Random(height * 10 + width)
    frames = [random_frame(rng, height=height, width=width, channels=2, density=d)
              for d in (1.0, 0.5, 0.0)]
    check(frames, height=height, width=width, channels=2, lanes=1, stride=stride,
          idle=0.3, stall=0.3)


@pytest.mark.slow
@pytest.mark.parametrize("height,width,channels,lanes,stride,density", [
    (60, 80, 2, 2, 1, 0.2),
    (60, 80, 2, 1, 2, 0.2),
    (16, 16, 32, 1, 1, 0.5),
    (16, 16, 32, 4, 2, 1.0),
    (13, 11, 6, 3, 2, 0.05),
])
def test_windows_sweep(height, width, channels, lanes, stride, density):
    rng = random.Random(99)
    frames = [random_frame(rng, height=height, width=width, channels=channels, density=density)
              for _ in range(2)]
    check(frames, height=height, width=width, channels=channels, lanes=lanes, stride=stride,
          idle=0.2, stall=0.2, seed=9)
