"""UART receiver and transmitter (amaranth.sim), the frame loader and result sender against the
host protocol (hw.protocol), byte for byte."""

import random

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring

from hw.frame_loader import FrameLoader
from hw.protocol import FLAG_EOF, FLAG_LOST, ProtocolError, decode_results, encode_frames
from hw.result_sender import ResultSender
from hw.sim import simulate, stream_sink, stream_source
from hw.stream import TokenShape
from hw.uart_rx import UARTRx
from hw.uart_tx import UARTTx
from hw.width import frame_beats


class Loopback(wiring.Component):
    def __init__(self, divisor):
        self.tx, self.rx = UARTTx(divisor=divisor), UARTRx(divisor=divisor)
        super().__init__({"i": wiring.In(stream.Signature(8)),
                          "o": wiring.Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx, m.submodules.rx = self.tx, self.rx
        wiring.connect(m, wiring.flipped(self.i), self.tx.i)
        wiring.connect(m, self.rx.o, wiring.flipped(self.o))
        m.d.comb += self.rx.rx.eq(self.tx.tx)
        return m


def _after(n):
    """A stream_sink ``until`` that is true on the ``n``-th beat."""
    seen = [0]

    def until(_):
        seen[0] += 1
        return seen[0] >= n
    return until


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_tx_to_rx_loopback_is_exact(divisor):
    rng = random.Random(divisor)
    data = [0x00, 0xFF, 0x55, 0xAA] + [rng.randrange(256) for _ in range(20)]
    dut = Loopback(divisor)
    got = []

    async def src(ctx):
        await stream_source(ctx, dut.i, data, rng=rng, idle=0.3)

    async def sink(ctx):
        got.extend(await stream_sink(ctx, dut.o, until=_after(len(data)), rng=rng, stall=0.2))

    simulate(dut, src, sink, max_cycles=40 * divisor * len(data))
    assert got == data



def _serial(byte, stop=1):
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


def test_rx_drops_a_byte_with_a_low_stop_bit_and_one_it_has_no_room_for():
    divisor = 5
    dut = UARTRx(divisor=divisor)
    line = [1] * 7 + _serial(0x3C, stop=0) + [1] * 12 + _serial(0xA5) + [1] * 3 \
        + _serial(0x5A) + [1] * 20
    pulses = {"framing": 0, "overrun": 0}
    seen = []

    async def drive(ctx):
        ctx.set(dut.o.ready, 0)  # nothing drains the receiver
        for bit in line:
            for _ in range(divisor):
                ctx.set(dut.rx, bit)
                await ctx.tick()
                pulses["framing"] += ctx.get(dut.framing)
                pulses["overrun"] += ctx.get(dut.overrun)
                if ctx.get(dut.o.valid):
                    seen.append(ctx.get(dut.o.payload))

    simulate(dut, drive, max_cycles=len(line) * divisor + 10)
    # the first byte fails its stop bit; the second waits; the third finds it still waiting
    assert pulses == {"framing": 1, "overrun": 1}
    assert set(seen) == {0xA5}


def _shape(h, w, c, lanes, width=8):
    return TokenShape(height=h, width=w, channels=c, lanes=lanes, data_width=width)


def _frames(rng, h, w, c, counts, lo=-128, hi=127):
    frames = []
    for n in counts:
        sites = sorted(rng.sample([(y, x) for y in range(h) for x in range(w)], n))
        coords = np.array(sites, dtype=np.int64).reshape(-1, 2)
        feats = np.array([[rng.randint(lo, hi) for _ in range(c)] for _ in sites],
                         dtype=np.int64).reshape(-1, c)
        frames.append((coords, feats))
    return frames


@pytest.mark.parametrize("h,w,c,lanes", [(4, 5, 6, 2), (3, 300, 4, 4), (2, 2, 1, 1)])
def test_loader_turns_the_host_bytes_into_the_token_stream(h, w, c, lanes):
    rng = random.Random(h * w)
    shape = _shape(h, w, c, lanes)
    dut = FrameLoader(shape=shape)
    frames = _frames(rng, h, w, c, [h * w, 0, 1, min(3, h * w)])
    data = encode_frames(frames, y_bits=len(dut.o.payload.y), x_bits=len(dut.o.payload.x),
                         channels=c)
    want = [b for co, f in frames for b in frame_beats(co, f, lanes)]
    got = []

    async def src(ctx):
        await stream_source(ctx, dut.i, list(data), rng=rng, idle=0.3)

    async def sink(ctx):
        got.extend(await stream_sink(ctx, dut.o, until=_after(len(want)), rng=rng, stall=0.3))

    simulate(dut, src, sink, max_cycles=20 * len(data) + 100)
    assert got == want


@pytest.mark.parametrize("h,w,c,lanes,width", [(1, 1, 10, 1, 32), (4, 3, 6, 3, 8),
                                               (2, 300, 2, 2, 20)])
def test_sender_bytes_decode_to_the_tokens_it_took(h, w, c, lanes, width):
    rng = random.Random(c * lanes)
    shape = _shape(h, w, c, lanes, width)
    dut = ResultSender(shape=shape)
    lim = 1 << (width - 1)
    frames = _frames(rng, h, w, c, [h * w, 0, 1], lo=-lim, hi=lim - 1)
    beats = [b for co, f in frames for b in frame_beats(co, f, lanes)]
    got = bytearray()

    async def src(ctx):
        ctx.set(dut.lost, 0)
        await stream_source(ctx, dut.i, beats, rng=rng, idle=0.3)

    async def sink(ctx):
        def done(byte):
            got.append(byte)
            dec, _ = decode_results(bytes(got), y_bits=len(dut.i.payload.y),
                                    x_bits=len(dut.i.payload.x), channels=c, value_bits=width)
            return len(dec) == len(frames)
        await stream_sink(ctx, dut.o, until=done, rng=rng, stall=0.3)

    simulate(dut, src, sink, max_cycles=200 * len(beats) + 100)
    dec, lost = decode_results(bytes(got), y_bits=len(dut.i.payload.y),
                               x_bits=len(dut.i.payload.x), channels=c, value_bits=width)
    assert not lost and len(dec) == len(frames)
    for (wc, wf), (gc, gf) in zip(frames, dec, strict=True):
        assert (gc == wc).all() and (gf == wf).all() and gf.shape == wf.shape


def test_protocol_rejects_what_it_cannot_carry():
    with pytest.raises(ValueError, match="outside"):
        encode_frames([(np.array([[0, 0]]), np.array([[200]]))], y_bits=2, x_bits=2, channels=1)
    with pytest.raises(ValueError, match="2 values for 1 sites"):
        encode_frames([(np.array([[0, 0]]), np.array([[1, 2]]))], y_bits=2, x_bits=2, channels=1)
    assert encode_frames([(np.array([[0, 0]]), np.array([[200]]))], y_bits=2, x_bits=2,
                         channels=1, signed=False) == bytes([0, 0, 0, 200, FLAG_EOF])
    with pytest.raises(ProtocolError, match="flags"):
        decode_results(bytes([0x80]), y_bits=1, x_bits=1, channels=1, value_bits=8)
    frames, lost = decode_results(bytes([FLAG_EOF | FLAG_LOST, 0, 1]), y_bits=1, x_bits=1,
                                  channels=1, value_bits=8)
    assert lost and len(frames) == 1 and frames[0][0].shape == (0, 2)  # the partial record waits
