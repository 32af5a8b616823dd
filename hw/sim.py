"""Simulation helpers every hw test drives streams with (amaranth.sim async testbenches).

``stream_put`` / ``stream_get`` move one payload; :func:`stream_source` and :func:`stream_sink`
move many, with seeded random idle cycles (source) and backpressure (sink) so every block is checked
under stalls; :func:`simulate` runs testbenches with a watchdog so a hung block fails quickly.
Payloads go in as anything ``ctx.set`` accepts for the payload's layout (for a
:class:`~amaranth.lib.data.StructLayout`, a dict such as ``{"y": 1, "x": 2, "data": [3, -4],
"eof": 0}``) and come out as plain dicts via :func:`to_python`.

Frame helpers for token-stream blocks: :func:`random_frame` makes a sparse frame
``(coords, feats)``, :func:`hw.width.frame_beats` / :func:`hw.width.beats_frames` convert between
frames and beats (``frame_beats`` is re-exported here), :func:`run_frames` streams frames through
a block and timestamps each end of frame, and
:func:`conv3x3_reference` is the integer golden model of a 3x3 layer's raw accumulators.
"""

from __future__ import annotations

import random

from amaranth.lib import data
from amaranth.sim import Simulator

from models.reference import sparse_conv

from .width import beats_frames, frame_beats

__all__ = [
    "to_python",
    "stream_put",
    "stream_get",
    "stream_source",
    "stream_sink",
    "simulate",
    "CycleCounter",
    "random_frame",
    "frame_beats",
    "run_beats",
    "run_frames",
    "conv3x3_reference",
]


def to_python(value):
    """A simulator value (int or ``data.Const`` view) as plain ints, lists and dicts."""
    if isinstance(value, data.Const):
        layout = data.Layout.cast(value.shape())
        if isinstance(layout, data.ArrayLayout):
            return [to_python(value[i]) for i in range(layout.length)]
        return {name: to_python(value[name]) for name, _ in layout}
    return value


async def stream_put(ctx, stream, payload):
    """Offer one payload and wait until it is accepted."""
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream):
    """Accept one payload (as a plain Python value)."""
    ctx.set(stream.ready, 1)
    (payload,) = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return to_python(payload)


def _rng(rng):
    if rng is None:
        return random.Random(0)
    if isinstance(rng, int):
        return random.Random(rng)
    return rng


def _check_prob(name, p):
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), not {p!r}")


async def stream_source(ctx, stream, payloads, *, rng=None, idle=0.0):
    """Send ``payloads`` in order, inserting an idle cycle before a beat with probability ``idle``.

    ``rng`` is a :class:`random.Random`, a seed, or None (seed 0).
    """
    _check_prob("idle", idle)
    rng = _rng(rng)
    for payload in payloads:
        while idle and rng.random() < idle:
            await ctx.tick()
        await stream_put(ctx, stream, payload)


async def stream_sink(ctx, stream, *, until, rng=None, stall=0.0, on_beat=None):
    """Receive payloads until ``until(payload)`` is true for an accepted one; return them all.

    Each cycle ``ready`` is low with probability ``stall`` (backpressure). ``on_beat(payload)`` is
    called for every accepted beat as it arrives (e.g. to timestamp it).
    """
    _check_prob("stall", stall)
    rng = _rng(rng)
    out = []
    while True:
        ready = 0 if (stall and rng.random() < stall) else 1
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if ready and valid:
            p = to_python(payload)
            out.append(p)
            if on_beat is not None:
                on_beat(p)
            if until(p):
                ctx.set(stream.ready, 0)
                return out


class CycleCounter:
    """Counts clock cycles from the start of simulation (add with :meth:`attach`)."""

    def __init__(self):
        self.now = 0

    def attach(self, sim):
        async def count(ctx):
            # one-shot ticks: a pending async-for iterator warns when the simulation ends
            while True:
                await ctx.tick()
                self.now += 1
        sim.add_testbench(count, background=True)
        return self


def simulate(dut, *testbenches, max_cycles=100_000, vcd=None, counter=None):
    """Run the testbenches on ``dut`` (clock period 1 us) until they all finish.

    A background watchdog raises :class:`TimeoutError` after ``max_cycles`` cycles, so a block that
    deadlocks fails the test instead of hanging it. ``counter`` (a :class:`CycleCounter`) is
    attached if given.
    """
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for tb in testbenches:
        sim.add_testbench(tb)

    async def watchdog(ctx):
        for _ in range(max_cycles):
            await ctx.tick()
        raise TimeoutError(f"simulation did not finish within {max_cycles} cycles")

    sim.add_testbench(watchdog, background=True)
    if counter is not None:
        counter.attach(sim)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return sim


def random_frame(rng, *, height, width, channels, density, lo=-127, hi=127):
    """A random sparse frame: ``(coords, feats)`` with coords ``[(y, x), ...]`` in raster order.

    Each site is active with probability ``density`` (0 gives an empty frame, 1 a dense one);
    ``feats[i]`` is a list of ``channels`` ints in ``[lo, hi]``.
    """
    coords = [(y, x) for y in range(height) for x in range(width) if rng.random() < density]
    feats = [[rng.randint(lo, hi) for _ in range(channels)] for _ in coords]
    return coords, feats


def run_beats(dut, frames, *, lanes, idle=0.0, stall=0.0, seed=0, max_cycles=None):
    """Stream ``frames`` ``[(coords, feats), ...]`` into ``dut`` (``lanes`` per beat) and collect
    its output beats (payload dicts) until it has sent one end-of-frame beat per frame.

    Returns ``(beats, eof_cycles)``: the cycle at which each output end-of-frame beat was accepted
    (cycle 0 is the first input offer).
    """
    beats = [b for coords, feats in frames for b in frame_beats(coords, feats, lanes=lanes)]
    got, eof_times = [], []
    counter = CycleCounter()
    n = len(frames)

    async def src(ctx):
        await stream_source(ctx, dut.i, beats, rng=random.Random(seed), idle=idle)

    def on_beat(p):
        if p["eof"]:
            eof_times.append(counter.now)

    async def snk(ctx):
        got.extend(await stream_sink(ctx, dut.o, until=lambda p: p["eof"] and len(eof_times) == n,
                                     rng=random.Random(seed + 1), stall=stall, on_beat=on_beat))

    if max_cycles is None:
        max_cycles = 50 * len(beats) + 500 * n + 1000
    simulate(dut, src, snk, counter=counter, max_cycles=max_cycles)
    return got, eof_times


def run_frames(dut, frames, *, lanes, idle=0.0, stall=0.0, seed=0, max_cycles=None):
    """:func:`run_beats` with the output regrouped into frames by :func:`hw.width.beats_frames`
    (which rejects a frame that ends mid-site): ``(out_frames, eof_cycles)``."""
    got, eof_times = run_beats(dut, frames, lanes=lanes, idle=idle, stall=stall, seed=seed,
                               max_cycles=max_cycles)
    return beats_frames(got, dut.o_shape.channels), eof_times


def conv3x3_reference(coords, feats, *, height, width, weight, bias, stride, groups=1):
    """:func:`models.reference.sparse_conv` (the one golden model of every conv) with the
    coordinates and features as lists: ``(out_coords [(y, x)], out_feats [[...]])``."""
    oc, of = sparse_conv(coords, feats, weight=weight, bias=bias, height=height, width=width,
                         stride=stride, groups=groups)
    return [tuple(c) for c in oc.tolist()], of.tolist()


def run_stream(dut, frames, *, idle=0.0, stall=0.0, seed=0, sink_seed=None, max_cycles=100_000,
               sync_domain=False, check_beat=None):
    """Stream ``frames`` through a token-in, token-out ``dut``, strictly regrouped into frames.

    Returns ``(out_frames, cycles)``: the output split with :func:`hw.width.beats_frames` (which
    rejects a frame that ends mid-site) and the cycle count of the whole run. ``sink_seed``
    defaults to ``seed + 1``; ``sync_domain`` wraps a purely combinational ``dut`` in a module with
    a clocked signal so the simulator has a sync domain; ``check_beat`` sees every output payload.
    """
    from amaranth.hdl import Module, Signal

    beats = [b for c, f in frames for b in frame_beats(c, f, dut.i_shape.lanes)]
    got = []
    counter = CycleCounter()

    async def src(ctx):
        await stream_source(ctx, dut.i, beats, rng=seed, idle=idle)

    async def sink(ctx):
        n = 0

        def until(p):
            nonlocal n
            n += p["eof"]
            return n == len(frames)
        got.extend(await stream_sink(ctx, dut.o, until=until,
                                     rng=seed + 1 if sink_seed is None else sink_seed,
                                     stall=stall))

    top = dut
    if sync_domain:
        top = Module()
        top.submodules.dut = dut
        top.d.sync += Signal(name="tick").eq(1)
    simulate(top, src, sink, counter=counter, max_cycles=max_cycles)
    if check_beat is not None:
        for p in got:
            check_beat(p)
    return beats_frames(got, dut.o_shape.channels), counter.now
