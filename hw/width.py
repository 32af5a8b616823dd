"""Lane-width converter between token streams of ``a`` and ``b`` lanes, and beat packing helpers.

A site's ``channels`` values arrive in beats of ``a`` lanes and leave in beats of ``b`` lanes
(any ``a`` and ``b`` dividing ``channels``), in channel order. A buffer of ``a + b`` values takes
an input beat whenever it has room after this cycle's output; a beat that starts a new site waits
until the buffer has drained the previous site, so an output beat never mixes two sites.
``eof`` passes through once the buffer is empty. Throughput: the narrower side moves one beat per
cycle without a gap, also across site boundaries (the last output beat of a site frees the buffer
in the cycle the next site's first beat enters), so a site takes ``max(C/a, C/b)`` cycles; the
first output beat leaves one cycle after the input beat that completes it (:data:`LATENCY`).

:func:`frame_beats` and :func:`beats_frames` are the software view of the same packing (a frame's
coordinates and features as stream payloads, and back), used by tests and by co-simulation.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal

from contract.constants import WIDTH_LATENCY
from contract.cycles import width_cycles as cycles_per_frame

from .stream import TokenBlock, TokenShape

__all__ = ["WidthConverter", "LATENCY", "cycles_per_frame", "frame_beats", "beats_frames"]


#: Cycles from the input beat that completes an output beat to that beat's ``valid`` (a != b).
LATENCY = WIDTH_LATENCY



class WidthConverter(TokenBlock):
    """Convert a token stream from ``shape.lanes`` lanes to ``lanes_out`` lanes.

    Parameters
    ----------
    shape : TokenShape
        Input stream.
    lanes_out : int
        Output lanes; must divide ``shape.channels``.

    Attributes
    ----------
    i : In(stream.Signature(shape.layout()))
    o : Out(stream.Signature(o_shape.layout()))
    """

    def __init__(self, *, shape, lanes_out):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        if not isinstance(lanes_out, int) or lanes_out < 1 or shape.channels % lanes_out:
            raise ValueError(
                f"lanes_out must be a positive divisor of {shape.channels} channels, "
                f"not {lanes_out!r}"
            )
        self.i_shape = shape
        self.o_shape = TokenShape(height=shape.height, width=shape.width, channels=shape.channels,
                                  lanes=lanes_out, data_width=shape.data_width,
                                  signed=shape.signed)
        super().__init__(shape, self.o_shape)

    def elaborate(self, platform):
        m = Module()
        a, b = self.i_shape.lanes, self.o_shape.lanes
        i, o = self.i, self.o
        if a == b:
            m.d.comb += [
                o.valid.eq(i.valid), o.payload.eq(i.payload), i.ready.eq(o.ready),
            ]
            return m

        n = a + b
        elem = self.i_layout["data"].shape.elem_shape
        buf = [Signal(elem, name=f"buf{j}") for j in range(n)]
        count = Signal(range(n + 1))
        in_beats = self.i_shape.beats_per_site
        in_beat = Signal(range(max(in_beats, 2)))
        cy = Signal.like(o.payload.y)
        cx = Signal.like(o.payload.x)

        # Timing: o.ready (a combinational ready from the next block) and i.valid are the late
        # signals. Everything that depends on the buffer's fill is decoded from registers for both
        # cases of this cycle's output (``count`` and ``count - b``), and the handshakes only
        # choose between the two, so neither a subtractor nor a compare sits behind o.ready.
        out_data = Signal()              # count >= b, kept as a register
        out_fire = Signal()
        m.d.comb += out_fire.eq(out_data & o.ready)
        pass_eof = Signal()
        m.d.comb += pass_eof.eq((count == 0) & i.valid & i.payload.eof)

        m.d.comb += [
            o.payload.y.eq(Mux(pass_eof, i.payload.y, cy)),
            o.payload.x.eq(Mux(pass_eof, i.payload.x, cx)),
            o.payload.eof.eq(pass_eof),
            o.valid.eq(out_data | pass_eof),
        ]
        for j in range(b):
            m.d.comb += o.payload.data[j].eq(buf[j])

        # room with no output beat this cycle (after = count) and with one (after = count - b)
        room_hold, room_out = Signal(), Signal()
        m.d.comb += [
            room_hold.eq((count <= n - a) & ((in_beat != 0) | (count == 0))),
            room_out.eq((count <= n - a + b) & ((in_beat != 0) | (count == b))),
        ]
        room = Mux(out_fire, room_out, room_hold)
        in_fire = Signal()
        m.d.comb += in_fire.eq(i.valid & ~i.payload.eof & room)
        m.d.comb += i.ready.eq(Mux(i.payload.eof, (count == 0) & o.ready, room))

        with m.If(out_fire):
            for j in range(n):
                m.d.sync += buf[j].eq(buf[j + b] if j + b < n else 0)
        with m.If(in_fire):
            for j in range(n):
                for k in range(min(a, j + 1)):
                    # input lane k lands in buf[j] when after == j - k
                    at = j - k
                    hit = Mux(out_fire, count == at + b, count == at) if at + b <= n \
                        else (~out_fire & (count == at))
                    with m.If(hit):
                        m.d.sync += buf[j].eq(i.payload.data[k])
            with m.If(in_beat == 0):
                m.d.sync += [cy.eq(i.payload.y), cx.eq(i.payload.x)]
            m.d.sync += in_beat.eq(Mux(in_beat == in_beats - 1, 0, in_beat + 1))
        # count' = count - out_fire * b + in_fire * a, each sum formed from the register alone
        def sums(d):
            nxt = Signal(range(n + 1), name=f"count_{'m' if d < 0 else 'p'}{abs(d)}")
            m.d.comb += nxt.eq(count + d)
            return nxt
        c_out, c_in, c_both = sums(-b), sums(a), sums(a - b)
        with m.Switch(Cat(in_fire, out_fire)):
            with m.Case(0b01):
                m.d.sync += [count.eq(c_in), out_data.eq(c_in >= b)]
            with m.Case(0b10):
                m.d.sync += [count.eq(c_out), out_data.eq(c_out >= b)]
            with m.Case(0b11):
                m.d.sync += [count.eq(c_both), out_data.eq(c_both >= b)]
        return m


def frame_beats(coords, feats, lanes: int) -> list[dict]:
    """Stream payloads of one frame: ``C/lanes`` beats per site in order, then the eof beat.

    ``coords`` is ``[(y, x), ...]`` and ``feats`` ``[[c0, c1, ...], ...]`` (lists or tensors).
    """
    out = []
    for (y, x), f in zip(_rows(coords), _rows(feats), strict=True):
        if len(f) % lanes:
            raise ValueError(f"lanes {lanes} does not divide {len(f)} channels")
        for s in range(0, len(f), lanes):
            out.append({"y": int(y), "x": int(x), "data": [int(v) for v in f[s:s + lanes]],
                        "eof": 0})
    out.append({"y": 0, "x": 0, "data": [0] * lanes, "eof": 1})
    return out


def beats_frames(beats, channels: int) -> list[tuple[list, list]]:
    """Inverse of :func:`frame_beats` over several frames: ``[(coords, feats), ...]``.

    Raises ValueError if a site's beats disagree on coordinates or a frame ends mid-site.
    """
    frames, coords, feats, cur = [], [], [], []
    for p in beats:
        if p["eof"]:
            if cur:
                raise ValueError(f"frame ended after {len(cur)} of {channels} channels of a site")
            frames.append((coords, feats))
            coords, feats = [], []
            continue
        if cur and (p["y"], p["x"]) != coords[-1]:
            raise ValueError(f"site ({p['y']}, {p['x']}) started before {coords[-1]} finished")
        if not cur:
            coords.append((p["y"], p["x"]))
        cur.extend(p["data"])
        if len(cur) >= channels:
            if len(cur) > channels:
                raise ValueError(f"site {coords[-1]} has more than {channels} channels")
            feats.append(cur)
            cur = []
    return frames


def _rows(t):
    return t.tolist() if hasattr(t, "tolist") else list(t)
