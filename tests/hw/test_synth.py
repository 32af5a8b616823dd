import random

import pytest
from amaranth import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from common.errors import CodesignError
from hw.conv1x1 import Conv1x1
from hw.stream import TokenShape
from hw.synth import lutram_luts, summarize_cells, synthesis_flow, synthesize, synthesize_verilog
from models.quant.formats import weight_format


def test_summarize_cells_groups_xilinx_primitives():
    cells = {"LUT2": 3, "LUT6": 4, "FDRE": 10, "FDSE": 1, "DSP48E2": 2, "RAMB18E2": 1,
             "RAMB36E2": 2, "CARRY8": 5, "RAM32M": 2, "SRL16E": 1, "BUFG": 1}
    s = summarize_cells(cells)
    assert (s["lut"], s["ff"], s["dsp"], s["bram18"], s["carry"], s["lutram"], s["srl"]) == \
        (7, 11, 2, 5, 5, 2, 1)
    assert s["cells"]["BUFG"] == 1
    assert s["lutram_luts"] == 8 and s["lut_total"] == 7 + 8 + 1


def test_lutram_cells_count_as_luts_and_separately():
    # LUT sites per UG574: multi-port cells by table, RAM<d>X<w><S|D> by depth, width and ports.
    assert [lutram_luts(c) for c in ("RAM32M", "RAM64M", "RAM32M16", "RAM64M8", "RAM32X1D",
                                     "RAM64X1D", "RAM128X1D", "RAM256X1D", "RAM32X1S",
                                     "RAM128X1S", "RAM512X1S", "RAM16X8S", "RAM64X1S_1")] == \
        [4, 4, 8, 8, 2, 2, 4, 8, 1, 2, 8, 8, 1]
    assert lutram_luts("RAMB18E2") is None and lutram_luts("LUT6") is None
    s = summarize_cells({"LUT3": 2, "RAM32M16": 3, "RAM64M8": 1, "RAM32X1D": 2, "SRLC32E": 5,
                         "RAMB36E2": 1, "URAM288": 1})
    assert (s["lut"], s["lutram"], s["lutram_luts"], s["srl"], s["lut_total"]) == \
        (2, 6, 24 + 8 + 4, 5, 2 + 36 + 5)
    assert (s["bram18"], s["uram"]) == (2, 1)


class _AsyncReadRAM(wiring.Component):
    """A small memory with a combinational read port: Yosys maps it to distributed RAM."""

    def __init__(self, depth, width):
        self._depth, self._width = depth, width
        super().__init__({"wa": In(range(depth)), "wd": In(width), "we": In(1),
                          "ra": In(range(depth)), "rd": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=self._width, depth=self._depth, init=[])
        w, r = mem.write_port(), mem.read_port(domain="comb")
        m.d.comb += [w.addr.eq(self.wa), w.data.eq(self.wd), w.en.eq(self.we),
                     r.addr.eq(self.ra), self.rd.eq(r.data)]
        return m


@pytest.mark.slow  # a few seconds once Yosys is compiled; the first yowasp call takes about 40 s
def test_inferred_lutram_is_counted(tmp_path):
    res = synthesize(_AsyncReadRAM(32, 8), name="lutram32x8", workdir=tmp_path)
    assert res["lutram"] >= 1 and res["bram18"] == 0
    assert res["lutram_luts"] == sum(n * lutram_luts(c) for c, n in res["cells"].items()
                                     if lutram_luts(c) is not None)
    # 256 bits of storage; a LUT6 holds at most 64.
    assert res["lutram_luts"] >= 4
    assert res["lut_total"] == res["lut"] + res["lutram_luts"] + res["srl"]


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


def test_lut_mapper_is_checked_before_any_work(tmp_path):
    with pytest.raises(CodesignError, match="unknown LUT mapper 'abc10'; known: abc9, abc"):
        synthesize_verilog("module m; endmodule\n", top="m", workdir=tmp_path / "a",
                           family="ecp5", lut_mapper="abc10")
    with pytest.raises(CodesignError, match="for ECP5 only"):
        synthesize_verilog("module m; endmodule\n", top="m", workdir=tmp_path / "b",
                           family="xcup", lut_mapper="abc")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


_ADDER = ("module add(input clk, input [15:0] a, input [15:0] b, output reg [15:0] y);\n"
          "  always @(posedge clk) y <= (a ^ {b[7:0], b[15:8]}) + b;\nendmodule\n")


@pytest.mark.slow  # two Yosys runs
def test_ecp5_lut_mappers_map_the_same_design(tmp_path):
    """ABC9 by default, classic ABC on request; each recorded in the result and the script,
    and a cache key (:func:`synthesis_flow`) tells them apart."""
    abc = synthesize_verilog(_ADDER, top="add", workdir=tmp_path / "abc", family="ecp5",
                             lut_mapper="abc")
    abc9 = synthesize_verilog(_ADDER, top="add", workdir=tmp_path / "abc9", family="ecp5")
    assert abc["lut_mapper"] == "abc -lut 4" and abc9["lut_mapper"] == "abc9"
    assert synthesis_flow("ecp5") == synthesis_flow("ecp5", "abc9") == "synth_ecp5"
    assert synthesis_flow("ecp5", "abc") == "synth_ecp5 + abc -lut 4"
    assert synthesis_flow("xcup") == "synth_xilinx -family xcup -noiopad"
    assert "abc -lut 4 -dress" in (tmp_path / "abc" / "synth.ys").read_text()
    assert "abc -lut" not in (tmp_path / "abc9" / "synth.ys").read_text()
    for r in (abc, abc9):
        assert r["ff"] == 16 and r["lut"] > 0


def test_abc9_failure_names_the_error_and_the_module(tmp_path):
    from hw.synth import abc9_failure

    log = tmp_path / "yosys_abc9.log"
    log.write_text(
        "Extracted 10 AND gates and 0 wires from module `top.a' to a netlist network\n"
        "Extracted 16253 AND gates and 0 wires from module `top.stem_conv' to a netlist\n"
        "3.44.20.7. Executing ABC_OPS_REINTEGRATE pass\n"
        "ERROR: Assert `GetSize(conn.first) == GetSize(conn.second)' failed in rtlil.cc:3091.\n")
    assert abc9_failure(log) == ("Assert `GetSize(conn.first) == GetSize(conn.second)' failed "
                                 "in rtlil.cc:3091. while mapping top.stem_conv")
    log.write_text("yowasp: compiling\n")
    assert abc9_failure(log) == "exited without output"
    assert abc9_failure(tmp_path / "absent.log") == "exited without output"
    assert abc9_failure(None) == "exited without output"


def test_a_running_synthesis_says_so(tmp_path, monkeypatch):
    """`codesign build --synth` of a network runs Yosys for minutes: ``progress`` hears the
    elapsed time every HEARTBEAT_S seconds, then the timing estimate's start."""
    import hw.synth as synth

    monkeypatch.setattr(synth, "HEARTBEAT_S", 0.2)
    said = []
    res = synthesize_verilog(_ADDER, top="add", workdir=tmp_path, family="xc7", timing=True,
                             progress=said.append)
    assert res["lut"] > 0 and said, said
    beats = [s for s in said if s.startswith("yosys on add: running, 0 min ")]
    assert beats and len(beats) == len(said) - 1, said
    assert said[-1].startswith("synth_xilinx -family xc7") and "estimating" in said[-1]
