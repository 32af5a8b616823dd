"""Full k x k convolution (k = 3, 5 or 7; groups = 1), stride 1 or 2, "same", on a token stream.

Written for 3x3 below; a ``kernel`` of 5 or 7 reads ``k*k``-tap windows from the line buffer and
multiplies ``pe x lanes x k*k`` products per cycle (tap ``k*ky + kx``).

A :class:`~hw.line_buffer.LineBuffer` turns the input tokens into window beats (one per output site
and input-channel beat ``b``, ``B = C_in / lanes`` per site). For each output site the compute side
runs ``G = C_out / pe`` output groups; each group takes ``B`` cycles, one per input beat, each cycle
``pe x lanes x 9`` products (:func:`hw.mac.product`, so DyBit layers use no DSP) summed into ``pe``
accumulators that start from the bias. After the ``B``-th beat the group leaves as one output beat
of ``pe`` int32 accumulators, so the output is a token stream with ``lanes = pe``. Group 0 consumes
the window beats as they arrive and keeps them in a ``B``-entry buffer that groups ``1 .. G-1``
re-read: registers for ``B`` under :data:`contract.constants.BEAT_BUFFER_RAM_BEATS`, else LUT RAM
(one memory per row step of a folded kernel).

Weights live in a memory initialised with their hardware codes (``WeightFormat.encode``): word
``g * 2^ceil(log2 B) + b`` holds the ``pe x lanes x 9`` codes of output channels ``g*pe ..`` and
input channels ``b*lanes ..`` (order ``p``, then lane, then tap ``3*ky+kx``, lowest first); biases
sit in a second memory, one word of ``pe`` biases per group.

Cycles per frame (back to back, never stalled): the compute side spends ``G`` cycles per window
beat, which stretches the line buffer's emitter, so :meth:`Conv3x3.cycles_per_frame` is
:func:`contract.cycles.window_cycles` with ``cycles_per_beat = G``::

    B * n_out + 3 + 2 * E          if G == 1 and n_out >= n_in   (E: expected empty rows)
    B * max(n_in, G * n_out) + 1   otherwise

(measured exact on dense maps and within a few cycles on sparse ones), and any frame lies within
``B * G * n_out + 1 <= cycles <= B * (n_in + G * n_out) + H_out + 4``
(:func:`contract.cycles.window_cycle_bounds`). A lone frame also waits for its first two input
rows and :data:`LATENCY`.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal, Value, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from contract.constants import BEAT_BUFFER_RAM_BEATS, MAC_LATENCY, mac_latency
from contract.cycles import window_cycles, window_output_size
from models.reference import ACC_BITS

from .datapath import check_datapath, mac_sums, stored_codes
from .dwconv import check_window_conv, window_generator
from .line_buffer import DEFAULT_SLOTS
from .mac import Pipeline
from .skid import skid_after
from .stream import TokenBlock, TokenShape
from .weight_rom import rom_slices, weight_rom

__all__ = ["Conv3x3", "LATENCY", "kh_kw"]


def kh_kw(kernel) -> tuple[int, int]:
    """``(kh, kw)`` of a kernel given as ``k`` or ``(kh, kw)``."""
    return (kernel, kernel) if isinstance(kernel, int) else tuple(int(v) for v in kernel)

#: Cycles of the issue and the accumulator; a block's :attr:`Conv3x3.latency` (from a group's
#: last MAC issue to its output beat's ``valid``) adds its operand registers, products and adder
#: tree (:func:`contract.constants.mac_latency`).
LATENCY = MAC_LATENCY



class Conv3x3(TokenBlock):
    """Full 3x3 convolution of a token stream, int32 accumulator output.

    Parameters
    ----------
    shape : TokenShape
        Input stream (``channels`` = C_in, ``lanes``; int8 data).
    c_out : int
        Output channels.
    pe : int
        Output channels computed in parallel (divides ``c_out``); output beats carry ``pe`` lanes.
    stride : int
        1 (submanifold) or 2 (docs/CONTRACT.md rule).
    fmt : str or WeightFormat
        Weight format.
    weight : array of int, shape ``[c_out, c_in, k, k]``
        Integer weight values, representable in ``fmt``.
    bias : array of int, shape ``[c_out]``
        Integer biases (int32).
    slots : int, optional
        Row slots of the line buffer (default :data:`hw.line_buffer.DEFAULT_SLOTS`).
    kernel : int or (int, int)
        ``k`` (3, the default, 5 or 7) or an odd ``(kh, kw)`` up to 11.
    datapath : str
        Multiplier datapath (:data:`contract.constants.DATAPATHS`; empty: the format's default,
        :func:`hw.datapath.mac_sums`).
    dense : bool
        Every input frame holds every site (a dense network): the window generator may rely on it.
    margin : int
        Dense maps at stride 1: the output sites closer than this to a border are not computed
        (the crop after a zero-padded conv, folded: :func:`models.ops.crop.folded_margin`).
    kfold : int
        Cycles per window beat and output group over which the kernel's rows are spread (1, the
        default: all ``kh`` rows at once; ``kh``: one row per cycle, ``pe x lanes x kw``
        multipliers). Parallelism comes in divisors of the channel counts (powers of two in most
        networks); folding the rows adds a step of ``kh`` in between (ResNet-8's 16-64-channel
        convs: an II of 24,576 cycles between 16,384 and 32,768).

    Attributes
    ----------
    i : In(stream.Signature(shape.layout()))
        Input tokens.
    o : Out(stream.Signature(o_shape.layout()))
        Output tokens at the output sites: ``c_out / pe`` beats of ``pe`` int32 accumulators.
    o_shape : TokenShape
        ``(H_out, W_out, c_out, pe, 32)``.
    """

    def __init__(self, *, shape, c_out, pe, stride, fmt, weight, bias, slots=None, kernel=3,
                 datapath="", dense=False, kfold=1, margin=0):
        if not isinstance(shape, TokenShape):
            raise TypeError(f"shape must be a TokenShape, not {shape!r}")
        if not isinstance(c_out, int) or c_out < 1:
            raise TypeError(f"c_out must be a positive integer, not {c_out!r}")
        if not isinstance(pe, int) or pe < 1 or c_out % pe:
            raise ValueError(f"pe must be a positive divisor of c_out={c_out}, not {pe!r}")
        if slots is None and kh_kw(kernel)[0] + 1 > DEFAULT_SLOTS:
            slots = 16  # a tall window (9 or 11 rows) needs more row slots than the default
        self.fmt, self.weight, self.bias, self.codes, self.slots = check_window_conv(
            shape=shape, stride=stride, fmt=fmt, weight=weight,
            weight_shape=(c_out, shape.channels, *kh_kw(kernel)), bias=bias, slots=slots,
            name="{}x{} conv".format(*kh_kw(kernel)))
        self.kernel = kh_kw(kernel)
        if not isinstance(kfold, int) or kfold < 1 or self.kernel[0] % kfold:
            raise ValueError(f"kfold must divide the kernel's {self.kernel[0]} rows, not "
                             f"{kfold!r}")
        self.kfold = kfold
        self.dense = bool(dense)
        self.margin = margin
        self.datapath = check_datapath(self.fmt.name, datapath, pe=pe)
        self.codes = stored_codes(self.fmt, self.datapath, self.weight)
        self.i_shape, self.c_out, self.pe, self.stride = shape, c_out, pe, stride
        ho, wo = window_output_size(shape.height, shape.width, stride)
        self.o_shape = TokenShape(height=ho, width=wo, channels=c_out, lanes=pe,
                                  data_width=ACC_BITS)
        self.latency = mac_latency(self.fmt.name,
                                   shape.lanes * self.kernel[0] // kfold * self.kernel[1],
                                   self.datapath)
        super().__init__(shape, self.o_shape)

    def cycles_per_frame(self, active_sites, output_sites=None):
        s = self.i_shape
        return window_cycles(height=s.height, width=s.width, channels=s.channels, lanes=s.lanes,
                             stride=self.stride, active_sites=active_sites,
                             output_sites=output_sites,
                             cycles_per_beat=self.c_out // self.pe * self.kfold,
                             margin=self.margin, burst=True)

    def elaborate(self, platform):
        m = Module()
        lanes, pe = self.i_shape.lanes, self.pe
        nb = self.i_shape.beats_per_site
        ng = self.c_out // pe
        abits = self.i_shape.data_width
        cb = self.fmt.bits
        bbits = (nb - 1).bit_length()
        kh, k = self.kernel  # k: the window's width (taps t = k * ky + kx)
        nf = self.kfold      # cycles per window beat and group: kernel rows kh / nf each
        fbits = (nf - 1).bit_length()
        rows = kh // nf
        taps = rows * k      # taps multiplied per cycle
        m.submodules.lb = lb = window_generator(shape=self.i_shape, stride=self.stride,
                                                slots=self.slots, dense=self.dense,
                                                kernel=self.kernel, margin=self.margin)
        wiring.connect(m, wiring.flipped(self.i), lb.i)
        # the line buffer's control sees a registered ready, not this unit's enable
        lbo = skid_after(m, lb.o, lb.out_layout, "lb_skid")

        wwords = [0] * (ng << (bbits + fbits))
        for g in range(ng):
            for b in range(nb):
                for r in range(nf):
                    word = 0
                    for p in range(pe):
                        for ln in range(lanes):
                            for t in range(taps):
                                code = int(self.codes[g * pe + p, b * lanes + ln,
                                                      r * rows + t // k, t % k])
                                word |= code << (((p * lanes + ln) * taps + t) * cb)
                    wwords[(((g << bbits) | b) << fbits) | r] = word
        bwords = []
        for g in range(ng):
            word = 0
            for p in range(pe):
                word |= (int(self.bias[g * pe + p]) & ((1 << ACC_BITS) - 1)) << (p * ACC_BITS)
            bwords.append(word)
        # one slice of the (shallow) weight ROM per (pe, lane) on a fabric datapath: the taps of
        # one accumulator's products from one lane (hw/weight_rom.py)
        w_rd = weight_rom(m, "wmem", width=pe * lanes * taps * cb, depth=ng << (bbits + fbits),
                          init=wwords, slices=rom_slices(self.datapath, pe * lanes))
        m.submodules.bmem = bmem = Memory(shape=unsigned(pe * ACC_BITS), depth=ng, init=bwords)
        b_rd = bmem.read_port()

        win = lbo.payload
        en = Signal()
        m.d.comb += en.eq(~self.o.valid | self.o.ready)
        g = Signal(range(max(ng, 2)))
        b = Signal(range(max(nb, 2)))
        site_y, site_x = Signal.like(win.y), Signal.like(win.x)
        tap_bits = len(win.taps.as_value())
        step = tap_bits // nf  # bits of one row step's kernel rows
        # The window beats of a site that later groups and row steps re-read: with few beats
        # (B < BEAT_BUFFER_RAM_BEATS) registers and a B:1 read mux; with more, one LUT RAM per
        # row step (B words of its rows, written together, read asynchronously at `b`): a B x
        # row-steps read mux of every tap bit and B x window flip-flops become LUT RAM cells
        # and an nf:1 mux (a 64-channel 3x3 conv at 8 lanes, kfold 3: 4,608 flip-flops and a
        # 24:1 mux of 192 bits). Same reads and writes: cycle for cycle the same block.
        beat_ram = nb >= BEAT_BUFFER_RAM_BEATS and (ng > 1 or nf > 1)
        if not beat_ram:
            buf = Array(Signal(tap_bits, name=f"buf{k}") for k in range(nb))

        # stage 0: issue (g, b, r); group 0 takes the live window beat in its first row step,
        # later groups and row steps the buffer
        if nf > 1:
            r = Signal(range(nf))
            last_r = r == nf - 1
            waddr = Cat(r, b[:bbits], g) if bbits else Cat(r, g)
        else:
            last_r = True
            waddr = (g << bbits) | b
        issue = Signal()
        # `live` (the unit takes the offered window beat: group 0, row step 0) is two registers
        # that follow (g, r), kept apart in synthesis: `live_i` for the issue, the handshake and
        # the site's coordinates, so the counters' update starts at a register, not at a compare
        # of `g` (`g` -> its own enable was the dense 3x3 unit's worst path alone on ECP5), and
        # `live_q` (below) for the net of hundreds of loads
        live_i = Signal(init=1, attrs={"keep": 1})
        m.d.comb += [
            issue.eq(en & (~live_i | lbo.valid)),
            lbo.ready.eq(en & live_i),
            w_rd.addr.eq(waddr), w_rd.en.eq(en),
            b_rd.en.eq(en),
        ]
        is_eof = live_i & win.eof
        last_b = b == nb - 1
        # `live_q` chooses between the window beat and the buffer for every tap bit and enables
        # the buffer: a net of hundreds of loads that the counters' own update no longer rides
        live_q = Signal(init=1, attrs={"keep": 1})
        with m.If(issue):
            with m.If(is_eof):
                pass
            if nf > 1:
                with m.Elif(~last_r):
                    m.d.sync += [r.eq(r + 1), live_q.eq(0), live_i.eq(0)]
            with m.Elif(last_b & (g == ng - 1)):
                m.d.sync += [b.eq(0), g.eq(0), live_q.eq(1), live_i.eq(1)]
            with m.Elif(last_b):
                m.d.sync += [b.eq(0), g.eq(g + 1), live_q.eq(0), live_i.eq(0)]
            with m.Else():
                m.d.sync += [b.eq(b + 1), live_q.eq(g == 0), live_i.eq(g == 0)]
            if nf > 1:
                with m.If(~is_eof & last_r):
                    m.d.sync += r.eq(0)
            with m.If(live_i & (b == 0)):
                m.d.sync += [site_y.eq(win.y), site_x.eq(win.x)]

        # The buffer's word of beat b takes the offered window beat on every cycle the unit waits
        # at (g = 0, b) (its first row step), issued or not: the cycle it is issued is the last one
        # there, so the word holds the issued beat (an end-of-frame beat's taps are never read).
        # The enable is then registers (`live_q` and a decode of `b`), not `en` and the beat's
        # `valid`: with those, `o.valid` into every buffer bit's enable was the worst path of
        # dense 3x3 placements on ECP5 (1.2 ns of logic, 6.5-10 ns of routing). The decode's own
        # net still reaches every bit (docs/IMPLEMENT.md, stop 41).
        if beat_ram:
            rows_rd = []
            for i in range(nf):
                mem = Memory(shape=unsigned(step), depth=nb, init=[],
                             attrs={"ram_style": "distributed"})
                m.submodules[f"beats{i}"] = mem
                wr, rd = mem.write_port(), mem.read_port(domain="comb")
                m.d.comb += [
                    wr.addr.eq(b), wr.en.eq(live_q),
                    wr.data.eq(win.taps.as_value()[i * step:(i + 1) * step]),
                    rd.addr.eq(b),
                ]
                rows_rd.append(rd.data)
        elif ng > 1 or nf > 1:
            with m.If(live_q):
                m.d.sync += buf[b].eq(win.taps)

        # stage 1: taps (of the row step's kernel rows) registered, weight and bias words arriving
        v1, first1, last1, eof1 = Signal(), Signal(), Signal(), Signal()
        if nf > 1:
            first, last = (b == 0) & (r == 0), (last_b & last_r) | is_eof
        else:
            first, last = b == 0, last_b | is_eof
        if beat_ram:
            # a live beat is always the first row step (r = 0): its first rows
            held = Array(rows_rd)[r] if nf > 1 else rows_rd[0]
            src = Mux(live_q, win.taps.as_value()[:step], held)
        else:
            src = Mux(live_q, win.taps.as_value(), buf[b])
            if nf > 1:
                src = Array(src[i * step:(i + 1) * step] for i in range(nf))[r]
        taps1 = Signal(len(src), name="taps1") if nf > 1 else Signal.like(win.taps)
        y1, x1 = Signal.like(win.y), Signal.like(win.x)
        with m.If(en):
            m.d.sync += [
                v1.eq(issue), first1.eq(first), last1.eq(last), eof1.eq(is_eof),
                taps1.eq(src),
                y1.eq(Mux(live_i & (b == 0), win.y, site_y)),
                x1.eq(Mux(live_i & (b == 0), win.x, site_x)),
            ]

        # then the operand registers, the products and the adder tree: `depth` more stages, with
        # the bias memory read `depth` stages late so that its word arrives with the sums
        pipe = Pipeline(m, en)
        depth = self.latency - LATENCY
        codes, acts = pipe.data(w_rd.data, name="codes"), pipe.data(taps1, name="acts")
        aw = len(Value.cast(taps1)) // (taps * lanes)   # bits of one tap lane

        def code(p, j):  # j = ln * taps + t
            k = p * lanes * taps + j
            return codes[k * cb:(k + 1) * cb]

        def act(p, j):
            ln, t = divmod(j, taps)
            lo = (t * lanes + ln) * aw
            return acts[lo:lo + abits].as_signed()
        sums = mac_sums(pipe, self.fmt, self.datapath, pe=pe, n=lanes * taps, code=code, act=act)
        m.d.comb += b_rd.addr.eq(pipe.delay(g, depth, name="bias_g"))
        vd, firstd, lastd, eofd = (pipe.delay(s_, depth) for s_ in (v1, first1, last1, eof1))
        yd, xd = pipe.delay(y1, depth), pipe.delay(x1, depth)

        # the accumulators, which are the output register
        op = self.o.payload
        with m.If(en & vd):
            for p in range(pe):
                bias = b_rd.data[p * ACC_BITS:(p + 1) * ACC_BITS].as_signed()
                base = Mux(firstd, bias, op.data[p])
                m.d.sync += op.data[p].eq(Mux(eofd, 0, base + sums[p]))
        with m.If(en):
            m.d.sync += self.o.valid.eq(vd & lastd)
            with m.If(vd & lastd):
                m.d.sync += [op.y.eq(yd), op.x.eq(xd), op.eof.eq(eofd)]
        return m
