"""hw.dense_line_buffer: windows of dense frames bit-exact against a reference and against
LineBuffer, under random stalls; cycles per frame against contract.cycles.window_cycles."""

import gc
import random
import re
import warnings

import pytest
from amaranth.hdl import UnusedElaboratable

from contract.cycles import window_cycles, window_output_size
from hw.dense_line_buffer import DenseLineBuffer, history_columns, lag_steps, row_slots
from hw.line_buffer import LineBuffer
from hw.sim import CycleCounter, frame_beats, run_beats, simulate, stream_source, to_python
from hw.stream import TokenShape

KERNELS = [3, 5, 7, (3, 9), (11, 5)]


def _hw(kernel):
    return (kernel, kernel) if isinstance(kernel, int) else kernel


def dense_frame(rng, *, height, width, channels, lo=-128, hi=127):
    """Every site of the map in raster order with random features in ``[lo, hi]``."""
    coords = [(y, x) for y in range(height) for x in range(width)]
    return coords, [[rng.randint(lo, hi) for _ in range(channels)] for _ in coords]


def reference_windows(frame, *, height, width, lanes, stride, kernel):
    """Expected window beats of one dense frame (payload dicts), "same" zero padding."""
    coords, feats = frame
    kh, kw = _hw(kernel)
    dense = {tuple(c): f for c, f in zip(coords, feats, strict=True)}
    beats = len(feats[0]) // lanes
    ho, wo = window_output_size(height, width, stride)
    out = []
    for oy in range(ho):
        for ox in range(wo):
            for b in range(beats):
                taps, mask = [], 0
                for t in range(kh * kw):
                    site = (stride * oy - kh // 2 + t // kw, stride * ox - kw // 2 + t % kw)
                    if site in dense:
                        mask |= 1 << t
                        taps.append(dense[site][b * lanes:(b + 1) * lanes])
                    else:
                        taps.append([0] * lanes)
                out.append({"y": oy, "x": ox, "taps": taps, "mask": mask, "beat": b, "eof": 0})
    out.append({"y": 0, "x": 0, "taps": [[0] * lanes] * (kh * kw), "mask": 0, "beat": 0,
                "eof": 1})
    return out


def make(*, height, width, channels, lanes, stride, kernel=3, ram="auto", margin=0):
    shape = TokenShape(height=height, width=width, channels=channels, lanes=lanes)
    return DenseLineBuffer(shape=shape, stride=stride, kernel=kernel, ram=ram, margin=margin)


def check(*, height, width, channels, lanes, stride, kernel=3, frames=3, idle=0.0, stall=0.0,
          seed=0, values=None, margin=0):
    """Stream ``frames`` dense frames back to back; compare every beat; return the eof times."""
    rng = random.Random(seed)
    if values is None:
        fr = [dense_frame(rng, height=height, width=width, channels=channels)
              for _ in range(frames)]
    else:
        fr = values
    dut = make(height=height, width=width, channels=channels, lanes=lanes, stride=stride,
               kernel=kernel, margin=margin)
    got, times = run_beats(dut, fr, lanes=lanes, idle=idle, stall=stall, seed=seed)
    expect = [b for f in fr for b in reference_windows(f, height=height, width=width,
                                                       lanes=lanes, stride=stride, kernel=kernel)
              if b["eof"] or (margin <= b["y"] < height - margin
                              and margin <= b["x"] < width - margin)]
    assert len(got) == len(expect)
    for i, (g, e) in enumerate(zip(got, expect, strict=True)):
        assert g == e, f"beat {i}: got {g}, expected {e}"
    return times


# kernel, stride, (height, width), lanes, beats: every kernel at both strides, the maps and the
# lane/beat splits spread over them
CASES = [
    (3, 1, (5, 7), 1, 2), (3, 2, (8, 8), 2, 1), (5, 1, (7, 9), 4, 1), (5, 2, (5, 7), 1, 4),
    (7, 1, (8, 8), 2, 2), (7, 2, (7, 9), 1, 1), ((3, 9), 1, (5, 7), 2, 1),
    ((3, 9), 2, (8, 8), 4, 2), ((11, 5), 1, (12, 10), 1, 1), ((11, 5), 2, (12, 10), 2, 2),
]


@pytest.mark.parametrize("kernel,stride,hw,lanes,beats", CASES)
def test_windows_random_stalls(kernel, stride, hw, lanes, beats):
    check(height=hw[0], width=hw[1], channels=lanes * beats, lanes=lanes, stride=stride,
          kernel=kernel, idle=0.3, stall=0.3, seed=sum(hw) + lanes)


@pytest.mark.parametrize("kernel", [3, 5, (3, 9), (11, 5)])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("hw", [(1, 1), (1, 6), (5, 1), (3, 3)])
def test_tiny_maps(hw, stride, kernel):
    # maps narrower or lower than the window: the read-ahead runs past rows and frames
    check(height=hw[0], width=hw[1], channels=2, lanes=1, stride=stride, kernel=kernel,
          frames=4, idle=0.3, stall=0.3, seed=hw[0] * 7 + hw[1])


@pytest.mark.parametrize("idle", [0.0, 0.3])
@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("stride", [1, 2])
def test_idle_and_stalls(stride, stall, idle):
    check(height=6, width=7, channels=4, lanes=2, stride=stride, kernel=5, frames=3, idle=idle,
          stall=stall, seed=int(10 * (idle + stall)))


@pytest.mark.parametrize("lanes,beats", [(1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (2, 4), (4, 1),
                                         (4, 2), (4, 4)])
def test_lanes_and_beats(lanes, beats):
    check(height=5, width=6, channels=lanes * beats, lanes=lanes, stride=1 + (beats == 2),
          kernel=3, idle=0.2, stall=0.2, seed=lanes * 10 + beats)


@pytest.mark.parametrize("stride", [1, 2])
def test_extreme_values(stride):
    h, w, c = 5, 6, 4
    coords = [(y, x) for y in range(h) for x in range(w)]
    frames = [(coords, [[v] * c for _ in coords]) for v in (-128, 127)]
    frames.append((coords, [[(-128, 127)[(y + x + ch) % 2] for ch in range(c)]
                            for y, x in coords]))
    check(height=h, width=w, channels=c, lanes=2, stride=stride, kernel=3, values=frames,
          stall=0.3)


@pytest.mark.parametrize("kernel,stride,hw,lanes,channels", [
    (3, 1, (6, 7), 1, 2), (3, 2, (7, 9), 2, 4), (5, 1, (8, 8), 2, 2), ((11, 5), 2, (12, 10), 1, 2),
])
def test_same_as_line_buffer(kernel, stride, hw, lanes, channels):
    h, w = hw
    rng = random.Random(5)
    frames = [dense_frame(rng, height=h, width=w, channels=channels) for _ in range(2)]
    shape = TokenShape(height=h, width=w, channels=channels, lanes=lanes)
    outs = []
    for dut in (DenseLineBuffer(shape=shape, stride=stride, kernel=kernel),
                LineBuffer(shape=shape, stride=stride, kernel=kernel,
                           slots=max(8, row_slots(_hw(kernel)[0])))):
        got, _ = run_beats(dut, frames, lanes=lanes, idle=0.2, stall=0.3, seed=1)
        outs.append(got)
    assert outs[0] == outs[1]


def run_groups(dut, frames, *, lanes, groups, burst=False):
    """Frames back to back, never idle; the consumer holds ``ready`` low ``groups - 1`` cycles after
    each accepted window beat (``burst``: takes a site's ``B`` beats back to back, then holds
    ``(groups - 1) * B`` cycles, as :class:`~hw.conv3x3.Conv3x3` does), the eof beat at once.
    Returns the cycle of each output eof beat."""
    beats = [b for c, f in frames for b in frame_beats(c, f, lanes=lanes)]
    counter = CycleCounter()
    times = []

    async def src(ctx):
        await stream_source(ctx, dut.i, beats)

    async def snk(ctx):
        hold, taken = 0, 0
        while len(times) < len(frames):
            ready = int(hold == 0)
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            hold = max(0, hold - 1)
            if ready and valid:
                if to_python(payload)["eof"]:
                    times.append(counter.now)
                elif not burst:
                    hold = groups - 1
                else:
                    taken += 1
                    if taken == dut.beats:
                        hold, taken = (groups - 1) * dut.beats, 0
        ctx.set(dut.o.ready, 0)

    simulate(dut, src, snk, counter=counter, max_cycles=groups * 4 * len(beats) + 1000)
    return times


def frame_cycles(*, height, width, channels, lanes, stride, kernel, groups=1, burst=False,
                 frames=5, margin=0):
    """Cycles of each frame after the second one (the first two fill the pipeline: the second
    pays the prefill the first one's end could not overlap)."""
    rng = random.Random(3)
    fr = [dense_frame(rng, height=height, width=width, channels=channels) for _ in range(frames)]
    dut = make(height=height, width=width, channels=channels, lanes=lanes, stride=stride,
               kernel=kernel, margin=margin)
    times = run_groups(dut, fr, lanes=lanes, groups=groups, burst=burst)
    return [t1 - t0 for t0, t1 in zip(times[1:], times[2:], strict=False)]


CYCLE_CASES = [
    # height, width, channels, lanes, stride, kernel
    (8, 8, 4, 2, 1, 3), (8, 8, 4, 2, 2, 3), (7, 9, 2, 1, 1, 5), (7, 9, 2, 1, 2, 7),
    (12, 10, 4, 1, 2, (11, 5)), (6, 5, 8, 2, 1, (3, 9)),
]


@pytest.mark.parametrize("height,width,channels,lanes,stride,kernel", CYCLE_CASES)
def test_cycles_no_stalls(height, width, channels, lanes, stride, kernel):
    est = window_cycles(height=height, width=width, channels=channels, lanes=lanes,
                        stride=stride, active_sites=height * width)
    measured = frame_cycles(height=height, width=width, channels=channels, lanes=lanes,
                            stride=stride, kernel=kernel)
    b = channels // lanes
    ho, wo = window_output_size(height, width, stride)
    # exactly one cycle per output (stride 1) or input (stride 2) beat and one for the eof; when
    # the emitter is the bottleneck one more: the eof waits for both pipeline stages to empty
    extra = 2 if ho * wo >= height * width else 1
    assert measured == [b * max(height * width, ho * wo) + extra] * len(measured)
    assert all(abs(m - est) <= 3 for m in measured)


@pytest.mark.parametrize("groups,burst", [(2, False), (4, True), (8, True)])
@pytest.mark.parametrize("height,width,channels,lanes,stride,kernel", CYCLE_CASES[:4])
def test_cycles_consumer_groups(height, width, channels, lanes, stride, kernel, burst, groups):
    est = window_cycles(height=height, width=width, channels=channels, lanes=lanes,
                        stride=stride, active_sites=height * width, cycles_per_beat=groups)
    measured = frame_cycles(height=height, width=width, channels=channels, lanes=lanes,
                            stride=stride, kernel=kernel, groups=groups, burst=burst, frames=4)
    assert all(abs(m - est) <= 3 for m in measured), (measured, est)


@pytest.mark.parametrize("kernel,hw,lanes,beats", [
    (3, (6, 7), 1, 2), (5, (7, 9), 2, 1), (7, (9, 8), 1, 1), (3, (3, 3), 2, 2), (5, (5, 6), 1, 3),
])
@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
def test_margin_sends_only_the_inner_windows(kernel, hw, lanes, beats, stall):
    """A folded crop: the windows of the sites ``k // 2`` or more from every border, the same
    beats as without it, nothing else (coordinates unchanged), under idles and stalls."""
    check(height=hw[0], width=hw[1], channels=lanes * beats, lanes=lanes, stride=1,
          kernel=kernel, frames=3, idle=stall, stall=stall, seed=sum(hw) + beats,
          margin=kernel // 2)


@pytest.mark.parametrize("height,width,channels,lanes,kernel", [
    (14, 14, 6, 6, 5), (8, 8, 4, 2, 3), (10, 9, 2, 1, 5), (12, 10, 4, 2, 7), (6, 7, 4, 1, 3),
])
@pytest.mark.parametrize("groups", [1, 2, 4, 8])
@pytest.mark.parametrize("burst", [False, True])
def test_margin_cycles(height, width, channels, lanes, kernel, groups, burst):
    """Border steps take one cycle a beat while the consumer works on the last inner beat: the
    contract's formula is within 3 % (a few cycles low)."""
    est = window_cycles(height=height, width=width, channels=channels, lanes=lanes, stride=1,
                        active_sites=height * width, cycles_per_beat=groups,
                        margin=kernel // 2, burst=burst)
    full = window_cycles(height=height, width=width, channels=channels, lanes=lanes, stride=1,
                         active_sites=height * width, cycles_per_beat=groups)
    measured = frame_cycles(height=height, width=width, channels=channels, lanes=lanes,
                            stride=1, kernel=kernel, groups=groups, burst=burst, frames=4,
                            margin=kernel // 2)
    assert all(abs(m - est) <= 0.03 * m for m in measured), (measured, est)
    assert all(m <= full for m in measured)
    if groups > 1:
        assert all(m < full for m in measured)


def test_geometry_helpers():
    assert [row_slots(k) for k in (3, 5, 7, 9, 11)] == [4, 8, 8, 16, 16]
    assert [lag_steps(k, 1) for k in (3, 5, 7, 9, 11)] == [1, 2, 3, 4, 5]
    assert [lag_steps(k, 2) for k in (3, 5, 7, 9, 11)] == [0, 1, 1, 2, 2]
    assert [history_columns(k, 1) for k in (3, 5, 7, 9, 11)] == [2, 4, 6, 8, 10]
    assert [history_columns(k, 2) for k in (3, 5, 7, 9, 11)] == [1, 4, 5, 8, 9]
    with warnings.catch_warnings():  # neither block is elaborated here
        warnings.simplefilter("ignore", UnusedElaboratable)
        dut = make(height=5, width=6, channels=4, lanes=2, stride=2, kernel=(11, 5))
        lb = LineBuffer(shape=dut.shape, stride=2, kernel=(11, 5), slots=16)
        assert (dut.out_height, dut.out_width, dut.beats, dut.kernel, dut.slots) == \
            (3, 3, 2, (11, 5), 16)
        assert dut.out_layout == lb.out_layout
        del dut, lb
        gc.collect()


@pytest.mark.parametrize("ram,row_style", [("auto", None), ("lutram", "distributed"),
                                           ("bram", "block")])
def test_ram_style(ram, row_style):
    from amaranth.back import verilog

    dut = make(height=4, width=5, channels=4, lanes=2, stride=2, ram=ram)
    text = verilog.convert(dut, name="dlb", emit_src=False)
    styles = re.findall(r'ram_style = "(\w+)" \*\)\s*reg \[\d+:0\] (\w+) \[', text)
    rows = {name: style for style, name in styles if name.startswith("row")}
    assert ("distributed", "history") in styles  # the history stays in LUTs
    if row_style is None:
        assert rows == {}
    else:
        assert sorted(rows) == [f"row{k}_p{p}" for k in range(4) for p in range(2)]
        assert set(rows.values()) == {row_style}


@pytest.mark.parametrize("kw,match", [
    ({"stride": 3}, "stride must be 1 or 2"),
    ({"kernel": 4}, "window kernel must be one of"),
    ({"kernel": (3, 13)}, "window kernel must be one of"),
    ({"ram": "uram"}, "ram must be one of"),
    ({"margin": 1, "stride": 2}, "margin must be 0"),
    ({"margin": 2}, "margin must be 0"),
    ({"margin": -1}, "margin must be 0"),
])
def test_bad_params(kw, match):
    shape = TokenShape(height=4, width=4, channels=2, lanes=1)
    # the half-built component would warn "created but never used" when collected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ValueError, match=match) as info:
            DenseLineBuffer(**{"shape": shape, "stride": 1, **kw})
        with pytest.raises(TypeError, match="shape must be a TokenShape") as info2:
            DenseLineBuffer(shape=(4, 4), stride=1)
        del info, info2
        gc.collect()


@pytest.mark.slow
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("hw,lanes,beats", [((12, 10), 4, 4), ((16, 16), 1, 8), ((9, 13), 2, 3)])
def test_windows_sweep(hw, lanes, beats, stride, kernel):
    check(height=hw[0], width=hw[1], channels=lanes * beats, lanes=lanes, stride=stride,
          kernel=kernel, frames=3, idle=0.2, stall=0.5, seed=hw[0] + beats)


@pytest.mark.slow
@pytest.mark.parametrize("groups", [1, 2, 4, 8])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", KERNELS)
def test_cycles_sweep(kernel, stride, groups):
    h, w, c, lanes = 12, 10, 6, 2
    est = window_cycles(height=h, width=w, channels=c, lanes=lanes, stride=stride,
                        active_sites=h * w, cycles_per_beat=groups)
    for burst in (False, True):
        measured = frame_cycles(height=h, width=w, channels=c, lanes=lanes, stride=stride,
                                kernel=kernel, groups=groups, burst=burst, frames=4)
        assert all(abs(m - est) <= 3 for m in measured), (burst, measured, est)


@pytest.mark.parametrize("stall", [0.0, 0.5])
@pytest.mark.parametrize("kernel,stride,hw,lanes,beats", [
    (3, 1, (6, 7), 1, 2), (3, 2, (8, 8), 2, 1), (5, 1, (7, 9), 1, 1), (5, 2, (9, 7), 1, 2),
    ((11, 5), 1, (12, 10), 1, 1), (7, 2, (9, 9), 1, 1),
])
def test_no_window_read_meets_a_write_of_its_word(kernel, stride, hw, lanes, beats, stall):
    """The row memories carry Yosys' ``no_rw_check`` (no read-during-write logic after a block
    RAM): that is only right if no read whose word a window uses is of a word written in the
    same cycle. Frames back to back under stalls; every cycle, every slot's write against the
    reader's step at the slots of its window rows. Reads of the other slots, and the reads a
    bubble makes, are not used (and do meet writes: the check counts them, and they happen)."""
    from hw.sim import CycleCounter, frame_beats, simulate, stream_sink, stream_source

    h, w = hw
    channels = lanes * beats
    rng = random.Random(h * w + stride)
    frames = [dense_frame(rng, height=h, width=w, channels=channels) for _ in range(3)]
    dut = make(height=h, width=w, channels=channels, lanes=lanes, stride=stride, kernel=kernel)
    kh = _hw(kernel)[0]
    beats_in = [b for c, f in frames for b in frame_beats(c, f, lanes=lanes)]
    bad, unused, done = [], [], []

    async def src(ctx):
        await stream_source(ctx, dut.i, beats_in, rng=random.Random(1), idle=0.2)

    async def snk(ctx):
        n = [0]

        def until(p):
            n[0] += p["eof"]
            return n[0] == len(frames)
        await stream_sink(ctx, dut.o, until=until, rng=random.Random(2), stall=stall)
        done.append(1)

    async def watch(ctx):
        wports, rports, r_step, rbase, lo = dut.row_probe
        slots = 1 + max(k for k, _ in wports)
        keys = sorted(wports)
        ports = [v for kp in keys for v in (wports[kp].en, wports[kp].addr, rports[kp].en,
                                             rports[kp].addr)]
        while not done:
            _, _, step, base, first, *vals = await ctx.tick().sample(r_step, rbase, lo, *ports)
            # the window's rows inside the map (a row outside it is masked to zero)
            used = {(base + dy) % slots for dy in range(kh) if 0 <= first + dy < h}
            for i, (k, p) in enumerate(keys):
                we, wa, re, ra = vals[4 * i:4 * i + 4]
                if we and re and wa == ra:
                    (bad if step and k in used else unused).append((k, p))

    simulate(dut, src, snk, watch, counter=CycleCounter())
    assert bad == []
    assert unused  # the check sees collisions where they happen: only on words no window uses
