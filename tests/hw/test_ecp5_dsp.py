"""The MULT18X18D register rewrite (hw.ecp5_dsp) on real ``synth_ecp5`` netlists, and its proof
with the real Yosys: a correct rewrite is proved, a wrong one is not."""

import copy
import json

import pytest
from amaranth import Module, Signal, signed
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from common.errors import CodesignError
from hw.ecp5_dsp import absorb_registers, verify_absorption
from hw.synth import synthesize_verilog


class _Mac(wiring.Component):
    """Operand registers -> multiplier -> product register, all enabled by ``en``; ``ra`` is also
    read by the fabric (a sum beside the product), ``rb`` only by the multiplier."""

    def __init__(self, reset_less: bool, b_reset_less: bool | None = None):
        self.reset_less = reset_less
        self.b_reset_less = reset_less if b_reset_less is None else b_reset_less
        super().__init__({"a": In(signed(12)), "b": In(signed(10)), "en": In(1),
                          "p": Out(signed(22)), "s": Out(signed(13))})

    def elaborate(self, platform):
        m = Module()
        rl = self.reset_less
        ra = Signal(signed(12), reset_less=rl)
        rb = Signal(signed(10), reset_less=self.b_reset_less)
        rp = Signal(signed(22), reset_less=rl)
        rs = Signal(signed(13))
        with m.If(self.en):
            m.d.sync += [ra.eq(self.a), rb.eq(self.b), rp.eq(ra * rb)]
        m.d.sync += rs.eq(ra + 1)
        m.d.comb += [self.p.eq(rp), self.s.eq(rs)]
        return m


def _netlist(tmp_path, reset_less: bool, b_reset_less: bool | None = None) -> dict:
    d = tmp_path / f"rl{reset_less}_{b_reset_less}"
    text = verilog.convert(_Mac(reset_less, b_reset_less), name="top", emit_src=False)
    cells = synthesize_verilog(text, top="top", workdir=d, family="ecp5", netlist=True)
    assert cells["dsp"] == 1
    return json.loads((d / "top.json").read_text())


def _top(netlist):
    return next(m for m in netlist["modules"].values() if m.get("attributes", {}).get("top"))


@pytest.fixture(scope="module")
def gold(tmp_path_factory):
    return _netlist(tmp_path_factory.mktemp("mac"), reset_less=True)


def test_registers_move_into_the_dsp_and_the_rewrite_is_proved(gold, tmp_path):
    gate = copy.deepcopy(gold)
    moved = absorb_registers(gate)
    assert {k: moved[k] for k in ("dsp", "output", "inputa", "inputb")} == \
        {"dsp": 1, "output": 1, "inputa": 1, "inputb": 1}
    cells = _top(gate)["cells"]
    dsp = next(c for c in cells.values() if c["type"] == "MULT18X18D")
    assert all(dsp["parameters"][f"REG_{g}_CLK"] == "CLK0" for g in ("INPUTA", "INPUTB", "OUTPUT"))
    # the product's 22 registers and rb's 10 go; ra's 12 stay (the fabric reads them too)
    ffs = lambda n: sum(c["type"] == "TRELLIS_FF" for c in _top(n)["cells"].values())  # noqa: E731
    assert ffs(gold) - ffs(gate) == moved["removed_ffs"] == 22 + 10
    proof = verify_absorption(gold, gate, moved["region"], tmp_path)
    assert proof["proved"] and proof["dsps"] == 1 and proof["registers"] == 12 + 10 + 22
    assert "SUCCESS" in (tmp_path / "dsp_check" / "yosys.log").read_text()


def _rewired(gold, change):
    gate = copy.deepcopy(gold)
    moved = absorb_registers(gate)
    dsp = next(c for c in _top(gate)["cells"].values() if c["type"] == "MULT18X18D")
    change(dsp)
    return gate, moved["region"]


def _swap_product_bits(dsp):
    c = dsp["connections"]
    c["P3"], c["P4"] = c["P4"], c["P3"]


def _other_enable(dsp):
    dsp["connections"]["CE1"] = ["1"]
    dsp["parameters"]["REG_INPUTB_CE"] = "CE1"


@pytest.mark.parametrize("change", [
    _swap_product_bits,                                                  # wrong wiring
    lambda dsp: dsp["parameters"].update({"REG_OUTPUT_CLK": "NONE"}),     # a cycle lost
    lambda dsp: dsp["parameters"].update({"REG_INPUTA_CLK": "NONE"}),     # a cycle lost
    _other_enable,                                                        # wrong enable
], ids=["swapped-bits", "no-output-register", "no-input-register", "wrong-enable"])
def test_a_wrong_rewrite_is_not_proved(gold, tmp_path, change):
    gate, region = _rewired(gold, change)
    with pytest.raises(CodesignError, match="not proved equal") as e:
        verify_absorption(gold, gate, region, tmp_path)
    assert "\n" not in str(e.value) and "--no-dsp-registers" in str(e.value)


def test_registers_with_a_reset_stay_in_the_fabric(tmp_path):
    """A fabric register's reset wins over its enable; the DSP's need not: such registers stay."""
    gold = _netlist(tmp_path, reset_less=False)
    gate = copy.deepcopy(gold)
    moved = absorb_registers(gate)
    assert (moved["output"], moved["inputa"], moved["inputb"], moved["removed_ffs"]) == \
        (0, 0, 0, 0)
    assert gate == gold
    assert verify_absorption(gold, gate, moved["region"], tmp_path)["dsps"] == 0


def test_a_conv_units_multipliers_take_all_their_registers(tmp_path):
    """A generated MAC unit (hw.conv1x1, int8, 2 lanes x 2 PEs): every MULT18X18D takes its
    operand and product registers, and the rewrite of the whole block is proved."""
    import random

    from hw.conv1x1 import Conv1x1
    from hw.stream import TokenShape

    rng = random.Random(0)
    shape = TokenShape(height=4, width=4, channels=8, lanes=2)
    dut = Conv1x1(shape=shape, c_out=4, pe=2, fmt="int8",
                  weight=[[rng.randrange(-128, 128) for _ in range(8)] for _ in range(4)],
                  bias=[rng.randrange(-1000, 1000) for _ in range(4)])
    text = verilog.convert(dut, name="top", emit_src=False)
    cells = synthesize_verilog(text, top="top", workdir=tmp_path, family="ecp5", netlist=True)
    gold = json.loads((tmp_path / "top.json").read_text())
    gate = copy.deepcopy(gold)
    moved = absorb_registers(gate)
    n = cells["dsp"]
    assert n > 0 and (moved["dsp"], moved["output"], moved["inputa"], moved["inputb"]) == \
        (n, n, n, n)
    assert verify_absorption(gold, gate, moved["region"], tmp_path)["proved"]


def test_one_operand_alone_is_not_registered(tmp_path):
    """B's register has a reset, so B stays in the fabric; A then does too (nextpnr would time a
    DSP with one registered operand as if neither were), and the product register still moves."""
    gold = _netlist(tmp_path, reset_less=True, b_reset_less=False)
    gate = copy.deepcopy(gold)
    moved = absorb_registers(gate)
    assert (moved["output"], moved["inputa"], moved["inputb"], moved["removed_ffs"]) == \
        (1, 0, 0, 22)
    dsp = next(c for c in _top(gate)["cells"].values() if c["type"] == "MULT18X18D")
    assert "REG_INPUTA_CLK" not in dsp["parameters"] and "REG_INPUTB_CLK" not in dsp["parameters"]
    assert verify_absorption(gold, gate, moved["region"], tmp_path)["proved"]


def test_an_operand_on_another_clock_keeps_both_in_the_fabric(gold):
    """The DSP's registers share its one clock: B's registers moved to another clock net stay in
    the fabric, and then so does A (both operands or neither); the product register still
    moves."""
    gold = copy.deepcopy(gold)
    mod = _top(gold)
    dsp = next(c for c in mod["cells"].values() if c["type"] == "MULT18X18D")
    b_bits = {b for p, (b,) in dsp["connections"].items() if p[0] == "B" and p[1:].isdigit()}
    other = max(b for n in mod["netnames"].values() for b in n["bits"] if isinstance(b, int)) + 1
    mod["ports"]["clk2"] = {"direction": "input", "bits": [other]}
    mod["netnames"]["clk2"] = {"hide_name": 0, "bits": [other], "attributes": {}}
    rb = [c for c in mod["cells"].values()
          if c["type"] == "TRELLIS_FF" and c["connections"]["Q"][0] in b_bits]
    assert len(rb) == 10
    for c in rb:
        c["connections"]["CLK"] = [other]
    gate = copy.deepcopy(gold)
    moved = absorb_registers(gate)
    assert (moved["output"], moved["inputa"], moved["inputb"], moved["removed_ffs"]) == \
        (1, 0, 0, 22)
