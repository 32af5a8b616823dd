"""The weight ROM in slices (hw.weight_rom): the same reads as one memory's synchronous port, and
synthesis keeps every slice's address register (so no code bit is shared across slices)."""

import random

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from contract.constants import ROM_SLICE_MAX_DEPTH
from hw.synth import synthesize
from hw.weight_rom import rom_slices, weight_rom


class _Rom(wiring.Component):
    def __init__(self, *, width, depth, init, slices, out_reg=False):
        self.args = dict(width=width, depth=depth, init=init, slices=slices)
        self.out_reg = out_reg
        super().__init__({"addr": In(range(max(depth, 2))), "en": In(1), "data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        rd = weight_rom(m, "wmem", **self.args)
        m.d.comb += [rd.addr.eq(self.addr), rd.en.eq(self.en)]
        # out_reg: the block's code register after the read, as the MAC units have (pipe.data)
        if self.out_reg:
            m.d.sync += self.data.eq(rd.data)
        else:
            m.d.comb += self.data.eq(rd.data)
        self.sliced = not hasattr(rd, "transparent_for")
        return m


def _reads(dut, steps, seed):
    """``data`` after each cycle of random (addr, en), and the word a sync read port gives."""
    rng = random.Random(seed)
    init, depth = dut.args["init"], dut.args["depth"]
    got, want = [], []

    async def bench(ctx):
        last = None
        for _ in range(steps):
            a, e = rng.randrange(depth), rng.random() < 0.6
            ctx.set(dut.addr, a)
            ctx.set(dut.en, e)
            await ctx.tick()
            if e:
                last = a
            if last is not None:
                got.append(ctx.get(dut.data))
                want.append(init[last])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, want


@pytest.mark.parametrize("depth,slices", [(2, 2), (8, 4), (ROM_SLICE_MAX_DEPTH, 3),
                                          (ROM_SLICE_MAX_DEPTH + 1, 3), (8, 1)])
def test_sliced_rom_reads_as_a_synchronous_port(depth, slices):
    rng = random.Random(depth * 10 + slices)
    width = 12 * slices
    init = [rng.getrandbits(width) for _ in range(depth)]
    dut = _Rom(width=width, depth=depth, init=init, slices=slices)
    got, want = _reads(dut, 300, seed=depth)
    assert len(got) > 200 and got == want
    # sliced exactly when there is more than one slice and the ROM is shallow
    assert dut.sliced == (slices > 1 and depth <= ROM_SLICE_MAX_DEPTH)


def test_weight_rom_refuses_slices_that_do_not_divide_the_word():
    m = Module()
    with pytest.raises(ValueError, match="divisor of the word's 12 bits"):
        weight_rom(m, "w", width=12, depth=4, init=[0] * 4, slices=5)
    m._MustUse__silence = True


@pytest.mark.slow  # two synth_ecp5 runs of a few seconds each (Yosys compiled on first use)
def test_synthesis_keeps_each_slices_address_and_codes_apart(tmp_path):
    # Four slices with the same contents: without the kept address copies Yosys merges them
    # into one set of ROM LUTs and code registers (what LeNet-5's conv2 showed, 1,200 -> 253)
    depth, slices, step = 8, 4, 16
    rng = random.Random(1)
    one = [rng.getrandbits(step) for _ in range(depth)]
    init = [sum(w << (k * step) for k in range(slices)) for w in one]
    sliced = synthesize(_Rom(width=slices * step, depth=depth, init=init, slices=slices,
                             out_reg=True), name="rom_sliced", workdir=tmp_path / "s",
                        family="ecp5")
    whole = synthesize(_Rom(width=slices * step, depth=depth, init=init, slices=1, out_reg=True),
                       name="rom_whole", workdir=tmp_path / "w", family="ecp5")
    # a code bit equal in every word is a constant (no register), two bits of a slice with the
    # same values over the words are one; one ROM holds one slice's worth (the four equal
    # slices merged) in its read and code registers; sliced, every slice keeps its 3 address
    # bits and its own code bits
    functions = {tuple((w >> bit) & 1 for w in one) for bit in range(step)}
    varying = len(functions - {(0,) * depth, (1,) * depth})
    assert whole["ff"] <= 2 * varying + 3, whole
    assert sliced["ff"] == slices * (3 + varying), sliced


def test_only_fabric_datapaths_slice_their_rom():
    # a DSP datapath's operand registers move into its MULT18X18Ds (one copy each), and sliced
    # ROMs cost it those registers (tests/hw/test_ecp5_dsp.py fails with them)
    assert [rom_slices(d, 6) for d in ("lut", "shift-add", "dsp", "dsp2")] == [6, 6, 1, 1]
