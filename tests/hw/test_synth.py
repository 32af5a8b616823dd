import random

import pytest

from codesign.errors import CodesignError
from hw.conv1x1 import Conv1x1
from hw.stream import TokenShape
from hw.synth import summarize_cells, synthesize, synthesize_verilog
from models.quant.formats import weight_format


def test_summarize_cells_groups_xilinx_primitives():
    cells = {"LUT2": 3, "LUT6": 4, "FDRE": 10, "FDSE": 1, "DSP48E2": 2, "RAMB18E2": 1,
             "RAMB36E2": 2, "CARRY8": 5, "RAM32M": 2, "SRL16E": 1, "BUFG": 1}
    s = summarize_cells(cells)
    assert (s["lut"], s["ff"], s["dsp"], s["bram18"], s["carry"], s["lutram"], s["srl"]) == \
        (7, 11, 2, 5, 5, 2, 1)
    assert s["cells"]["BUFG"] == 1


@pytest.mark.slow  # the first yowasp call compiles Yosys (about 40 s)
def test_yosys_failure_is_a_clear_error(tmp_path):
    with pytest.raises(CodesignError, match="yosys failed on broken"):
        synthesize_verilog("module broken(input a; endmodule\n", top="broken", workdir=tmp_path)


def _conv(fmt):
    rng = random.Random(0)
    levels = [v for v in weight_format(fmt).levels.tolist() if v]
    w = [[rng.choice(levels) for _ in range(4)] for _ in range(2)]
    return Conv1x1(shape=TokenShape(height=4, width=4, channels=4, lanes=2), c_out=2, pe=2,
                   fmt=fmt, weight=w, bias=[1, -1])


@pytest.mark.slow
def test_int8_uses_dsp_and_dybit4_does_not(tmp_path):
    int8 = synthesize(_conv("int8"), name="pw_int8", workdir=tmp_path / "int8")
    dybit = synthesize(_conv("dybit4"), name="pw_dybit4", workdir=tmp_path / "dybit4")
    assert int8["dsp"] > 0
    assert dybit["dsp"] == 0
    assert dybit["lut"] > 0 and dybit["ff"] > 0


@pytest.mark.slow
def test_requant_narrow_accumulator_takes_one_dsp_per_lane(tmp_path):
    from hw.requant import Requantizer

    shape = TokenShape(height=4, width=4, channels=4, lanes=2, data_width=32)
    dsp = {}
    for bits in (24, 32):
        rq = Requantizer(shape=shape, M=[1000, 2000, 3000, 32767], S=20, lo=0, hi=127,
                         acc_bits=bits)
        dsp[bits] = synthesize(rq, name=f"rq{bits}", workdir=tmp_path / str(bits))["dsp"]
    assert dsp == {24: 2, 32: 4}
