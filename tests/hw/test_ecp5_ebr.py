"""The DP16KD output-register rewrite (hw.ecp5_ebr) on real ``synth_ecp5`` netlists, and its
proof with the real Yosys: a correct rewrite is proved, a wrong one is not."""

import copy
import json

import pytest

from common.errors import CodesignError
from hw.ecp5_ebr import absorb_output_registers, verify_absorption
from hw.fifo import StreamFIFO
from hw.stream import TokenShape
from hw.synth import synthesize


def _top(netlist):
    return next(m for m in netlist["modules"].values() if m.get("attributes", {}).get("top"))


def _fifo(d, lanes):
    """A stream FIFO in one DP16KD: its read register (with an enable) after the RAM's read;
    one lane a 15-bit word, two a 23-bit one (the RAM 36 bits wide)."""
    shape = TokenShape(height=8, width=8, channels=lanes, lanes=lanes)
    cells = synthesize(StreamFIFO(layout=shape.layout(), depth=512), name="fifo", workdir=d,
                       family="ecp5", netlist=True)
    assert cells["bram18"] == 1
    return json.loads((d / "fifo.json").read_text())


@pytest.fixture(scope="module")
def gold(tmp_path_factory):
    return _fifo(tmp_path_factory.mktemp("fifo"), lanes=1)


def _rams(netlist):
    return [c for c in _top(netlist)["cells"].values() if c["type"] == "DP16KD"]


def test_the_read_register_moves_into_the_ram_and_the_rewrite_is_proved(gold, tmp_path):
    gate = copy.deepcopy(gold)
    moved = absorb_output_registers(gate)
    assert moved["ebr"] == 1 and moved["ports"] == 1
    ram, = _rams(gate)
    regmodes = {ram["parameters"][f"REGMODE_{p}"] for p in "AB"}
    assert regmodes == {"OUTREG", "NOREG"}
    port = "A" if ram["parameters"]["REGMODE_A"] == "OUTREG" else "B"
    assert ram["connections"][f"OCE{port}"] != ["1"]  # the read register's enable
    ffs = lambda n: sum(c["type"] == "TRELLIS_FF" for c in _top(n)["cells"].values())  # noqa: E731
    assert ffs(gold) - ffs(gate) == moved["removed_ffs"] > 0
    proof = verify_absorption(gold, gate, moved["region"], tmp_path)
    assert proof["proved"] and proof["rams"] == 1 and proof["registers"] == moved["removed_ffs"]
    assert "SUCCESS" in (tmp_path / "ebr_check" / "yosys.log").read_text()


@pytest.mark.parametrize("change", ["enable", "no_register"])
def test_a_wrong_rewrite_is_not_proved(gold, tmp_path, change):
    gate = copy.deepcopy(gold)
    moved = absorb_output_registers(gate)
    ram, = _rams(gate)
    port = "A" if ram["parameters"]["REGMODE_A"] == "OUTREG" else "B"
    if change == "enable":
        ram["connections"][f"OCE{port}"] = ["1"]  # the register loads every cycle
    else:
        ram["parameters"][f"REGMODE_{port}"] = "NOREG"  # the register dropped: a cycle early
    with pytest.raises(CodesignError, match="not proved equal") as e:
        verify_absorption(gold, gate, moved["region"], tmp_path)
    assert "\n" not in str(e.value) and "--no-ebr-registers" in str(e.value)


def test_a_register_with_logic_before_it_stays(gold):
    """A read bit that goes anywhere but one register's data input keeps the port as it is."""
    gate = copy.deepcopy(gold)
    cells = _top(gate)["cells"]
    ram, = _rams(gate)
    # a second reader of one read bit that goes into a register: a LUT beside the register
    into_ffs = {c["connections"]["DI"][0] for c in cells.values() if c["type"] == "TRELLIS_FF"}
    bit = next(b for p in "AB" for i in range(18)
               if (b := ram["connections"].get(f"DO{p}{i}", [None])[0]) in into_ffs)
    cells["extra_lut"] = {"type": "LUT4", "parameters": {"INIT": "0000000000000010"},
                          "port_directions": {"A": "input", "B": "input", "C": "input",
                                              "D": "input", "Z": "output"},
                          "connections": {"A": [bit], "B": ["0"], "C": ["0"], "D": ["0"],
                                          "Z": [10 ** 7]}}
    moved = absorb_output_registers(gate)
    assert moved["ports"] == 0 and moved["removed_ffs"] == 0


def test_a_ram_36_bits_wide_stays(tmp_path):
    """A 36-bit read leaves on both ports' outputs; the rewrite leaves such a RAM alone."""
    gate = _fifo(tmp_path, lanes=2)
    ram, = _rams(gate)
    assert int(str(ram["parameters"]["DATA_WIDTH_B"]).strip(), 2) == 36
    moved = absorb_output_registers(gate)
    assert moved["ebr"] == 1 and moved["ports"] == 0 and moved["removed_ffs"] == 0
