"""The FPGA part table and budgets."""

import pytest

from common.errors import CodesignError
from dse.devices import budget, device, devices


@pytest.mark.parametrize("name, dsp, lut, ff, bram36", [
    ("XCZU3EG", 360, 70560, 141120, 216),
    ("XCZU9EG", 2520, 274080, 548160, 912),
    ("XC7Z020", 220, 53200, 106400, 140),
    ("XC7A100T", 240, 63400, 126800, 135),   # Arty A7-100T (DS180)
])
def test_datasheet_numbers(name, dsp, lut, ff, bram36):
    d = device(name)
    assert (d.dsp, d.lut, d.ff, d.bram36, d.bram18) == (dsp, lut, ff, bram36, 2 * bram36)


def test_aliases_and_case():
    assert device("zcu102").name == "XCZU9EG"
    assert device("arty-a7-100").name == "XC7A100T" and device("xc7a100t").dsp_cell == "DSP48E1"
    assert device("ZU3EG").name == "XCZU3EG"
    assert device("xc7z020").name == "XC7Z020"
    assert device("XCZU7EV").uram == 96


def test_unknown_device_lists_valid_ones():
    with pytest.raises(CodesignError) as exc:
        device("XC9999")
    msg = str(exc.value)
    assert "unknown device 'XC9999'" in msg and "\n" not in msg
    for name in devices():
        assert name in msg


def test_budget_floors_under_util():
    b = budget("XC7Z020", 0.8)
    assert (b.dsp, b.lut, b.ff, b.bram18) == (176, 42560, 85120, 224)
    assert budget("XC7Z020", 0.7).dsp == 154  # 0.7 * 220 is 153.999... in binary
    assert budget("XCZU9EG", 1.0).bram18 == 1824


@pytest.mark.parametrize("util", [0, -0.5, 1.5])
def test_bad_util(util):
    with pytest.raises(CodesignError, match="util"):
        budget("XCZU3EG", util)
