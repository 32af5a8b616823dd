"""hw.mac: every weight code x every int8 activation, against WeightFormat.decode(code) * act."""

import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from hw.mac import adder_tree, product, product_width, sum_width
from models.quant.formats import WEIGHT_FORMATS, weight_format


def _exhaustive(fmt_name):
    fmt = weight_format(fmt_name)
    m = Module()
    act = Signal(signed(8))
    codes = [Signal(unsigned(fmt.bits), name=f"code{c}", init=c) for c in range(1 << fmt.bits)]
    outs = []
    for c in codes:
        o = Signal(signed(product_width(fmt, 8)))
        m.d.comb += o.eq(product(fmt, c, act))
        outs.append(o)
    expect = [int(fmt.decode(c)) for c in range(1 << fmt.bits)]
    mismatches = []

    async def tb(ctx):
        for a in range(-128, 128):
            ctx.set(act, a)
            for c, o in enumerate(outs):
                got = ctx.get(o)
                if got != expect[c] * a:
                    mismatches.append((c, a, got, expect[c] * a))

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    return mismatches


@pytest.mark.parametrize("fmt", list(WEIGHT_FORMATS))
def test_product_exhaustive(fmt):
    assert _exhaustive(fmt) == []


@pytest.mark.parametrize("fmt", list(WEIGHT_FORMATS))
def test_product_width_is_tight_enough(fmt):
    f = weight_format(fmt)
    w = product_width(f, 8)
    vals = [int(f.decode(c)) * a for c in range(1 << f.bits) for a in (-128, 127)]
    assert all(-(1 << (w - 1)) <= v < (1 << (w - 1)) for v in vals)
    # one bit fewer would not hold every product
    assert not all(-(1 << (w - 2)) <= v < (1 << (w - 2)) for v in vals)


def test_dybit_product_has_no_multiplier():
    from amaranth.back import rtlil

    for name in ("dybit4", "dybit8"):
        m = Module()
        code = Signal(8 if name == "dybit8" else 4)
        act = Signal(signed(8))
        o = Signal(signed(product_width(name, 8)))
        m.d.comb += o.eq(product(name, code, act))
        text = rtlil.convert(m, ports=[code, act, o])
        assert "$mul" not in text
    m = Module()
    code, act, o = Signal(8), Signal(signed(8)), Signal(signed(16))
    m.d.comb += o.eq(product("int8", code, act))
    assert "$mul" in rtlil.convert(m, ports=[code, act, o])


def test_adder_tree():
    m = Module()
    ins = [Signal(signed(5), name=f"i{k}") for k in range(7)]
    o = Signal(signed(sum_width(5, 7)))
    m.d.comb += o.eq(adder_tree(ins))
    vals = [-16, 15, -16, -16, 7, -16, -16]

    async def tb(ctx):
        for i, v in zip(ins, vals, strict=True):
            ctx.set(i, v)
        assert ctx.get(o) == sum(vals)

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()


def test_bad_format():
    with pytest.raises(ValueError, match="unknown weight format"):
        product("int3", Signal(3), Signal(signed(8)))
