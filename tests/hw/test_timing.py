"""The Xilinx clock estimate (hw/timing.py): arcs summed as the cell library gives them, on
hand-made netlists, and on real synth_xilinx netlists of a MAC with and without its product
register."""

import math

import pytest

from common.errors import CodesignError
from hw.timing import ROUTE_BASE_PS, ROUTE_FANOUT_PS, estimate_netlist

_IN, _OUT = "input", "output"


def _ff(d, q):
    return {"type": "FDRE", "parameters": {}, "connections": {"C": [2], "CE": ["1"], "R": ["0"],
                                                               "D": [d], "Q": [q]},
            "port_directions": {"C": _IN, "CE": _IN, "R": _IN, "D": _IN, "Q": _OUT}}


def _lut(k, ins, out):
    conns = {f"I{j}": [b] for j, b in enumerate(ins)} | {"O": [out]}
    return {"type": f"LUT{k}", "parameters": {}, "connections": conns,
            "port_directions": {p: (_OUT if p == "O" else _IN) for p in conns}}


def _net(cells, names=None):
    netnames = {n: {"bits": bits, "hide_name": 0} for n, bits in (names or {}).items()}
    return {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"},
                                "cells": cells, "netnames": netnames}}}


def test_register_lut_register_sums_clock_to_q_pin_delay_and_routing():
    """FF -> LUT6 on its slowest pin I0 -> FF: 303 + route + 642 + route + 0 (D setup), each net
    with one load; the slower of two paths is the one reported."""
    cells = {"r0": _ff(10, 11), "r1": _ff(12, 13), "slow": _lut(6, [11, 13, 13, 13, 13, 13], 14),
             "fast": _lut(1, [13], 15), "c0": _ff(14, 16), "c1": _ff(15, 17)}
    est = estimate_netlist(_net(cells, {"a": [11], "slow_q": [16], "fast_q": [17]}))
    # net 13 has 6 loads: LUT6 pins I1..I5 and the LUT1
    r13 = ROUTE_BASE_PS + ROUTE_FANOUT_PS * math.log2(6)
    worst = max(303 + ROUTE_BASE_PS + 642, 303 + r13 + 631) + ROUTE_BASE_PS
    assert est["delay_ns"] == pytest.approx(worst / 1000, abs=1e-3)
    assert est["fmax_mhz"] == pytest.approx(1e6 / worst, abs=0.1)
    assert est["to"] == "slow_q" and est["levels"] == 1 and est["path"] == "FDRE -> LUT6 -> FDRE.D"
    bound = estimate_netlist(_net(cells), route_base_ps=0, route_fanout_ps=0)
    assert bound["delay_ns"] == pytest.approx((303 + 642) / 1000)
    assert bound["route_ns"] == 0 and est["route_ns"] > 0 and est["endpoints"] == 2  # c0.D, c1.D


def test_carry_chain_is_routed_on_its_dedicated_wire():
    """Two CARRY4s chained CO3 -> CI: only the net into S0 is routed; CI -> CO3 is 114 ps."""
    def carry(ci, s0, co):
        conns = {"CI": [ci], "CYINIT": ["0"], "DI": ["0"] * 4, "S": [s0, "0", "0", "0"],
                 "CO": co, "O": [90 + co[0], 91 + co[0], 92 + co[0], 93 + co[0]]}
        dirs = {"CI": _IN, "CYINIT": _IN, "DI": _IN, "S": _IN, "CO": _OUT, "O": _OUT}
        return {"type": "CARRY4", "parameters": {}, "connections": conns, "port_directions": dirs}
    cells = {"r": _ff(10, 11), "c0": carry("0", 11, [20, 21, 22, 23]),
             "c1": carry(23, "0", [30, 31, 32, 33]), "e": _ff(33, 40)}
    est = estimate_netlist(_net(cells))
    want = 303 + ROUTE_BASE_PS + 508 + 114 + ROUTE_BASE_PS  # S0 -> CO3, CI -> CO3, into D
    assert est["delay_ns"] == pytest.approx(want / 1000)
    assert est["path"] == "FDRE -> CARRY4 -> CARRY4 -> FDRE.D"


def _dsp(regs: dict, a, p):
    params = {"USE_MULT": "MULTIPLY", **{r: int(regs.get(r, 0)) for r in
                                        ("AREG", "BREG", "CREG", "DREG", "ADREG", "MREG", "PREG")}}
    conns = {"A": [a], "B": ["0"], "CLK": [2], "P": [p]}
    return {"type": "DSP48E1", "parameters": params, "connections": conns,
            "port_directions": {"A": _IN, "B": _IN, "CLK": _IN, "P": _OUT}}


def test_dsp_paths_follow_its_pipeline_registers():
    """Combinational DSP: A -> P 2823 ps between two fabric registers; with MREG the fabric path
    ends at the DSP (A into the M register 1416 ps) and P launches 1671 ps after the clock."""
    comb = estimate_netlist(_net({"r": _ff(10, 11), "d": _dsp({}, 11, 12), "e": _ff(12, 13)}))
    assert comb["delay_ns"] == pytest.approx((303 + 2 * ROUTE_BASE_PS + 2823) / 1000)
    mreg = estimate_netlist(_net({"r": _ff(10, 11), "d": _dsp({"MREG": 1}, 11, 12),
                                  "e": _ff(12, 13)}))
    assert mreg["delay_ns"] == pytest.approx(max(1671 + ROUTE_BASE_PS,
                                                 303 + ROUTE_BASE_PS + 1416) / 1000)
    assert mreg["path"] == "FDRE -> DSP48E1.A" and mreg["fmax_mhz"] > comb["fmax_mhz"]
    # everything inside the DSP: its own stages bound the clock
    inside = estimate_netlist(_net({"d": _dsp({"AREG": 1, "MREG": 1, "PREG": 1}, "0", 12)}))
    assert inside["path"] == "DSP48E1 (its own pipeline registers)"
    assert 0 < inside["delay_ns"] < comb["delay_ns"]


def test_unknown_cells_are_listed_and_a_hierarchical_netlist_is_refused():
    cells = {"r": _ff(10, 11), "x": {"type": "MYSTERY", "parameters": {},
                                     "connections": {"I": [11], "O": [12]},
                                     "port_directions": {"I": _IN, "O": _OUT}},
             "e": _ff(12, 13)}
    est = estimate_netlist(_net(cells))
    assert est["unmodelled"] == {"MYSTERY": 1} and est["fmax_mhz"] is None
    net = _net({"sub": {"type": "top.dut", "parameters": {}, "connections": {}}})
    net["modules"]["top.dut"] = {"attributes": {}, "cells": {}, "netnames": {}}
    with pytest.raises(CodesignError, match="not flat"):
        estimate_netlist(net)


def test_a_combinational_loop_ends():
    """Two LUTs feeding each other (never in a generated design): the walk stops, and the
    register path into the loop is still timed."""
    cells = {"r": _ff(10, 11), "a": _lut(2, [11, 13], 12), "b": _lut(1, [12], 13),
             "e": _ff(13, 14)}
    est = estimate_netlist(_net(cells))
    assert est["fmax_mhz"] is not None and est["levels"] >= 2


@pytest.mark.parametrize("family", ["xcup", pytest.param("xc7", marks=pytest.mark.slow)])
def test_real_netlist_product_register_shortens_the_worst_path(family, tmp_path):
    """A MAC synthesised by Yosys: without the product register the worst path runs through the
    multiplier into the accumulator's adder; registering the product makes it shorter."""
    from amaranth import Module, Signal, signed
    from amaranth.back import verilog
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from hw.synth import synthesize_verilog

    class Mac(wiring.Component):
        def __init__(self, pipe):
            self.pipe = pipe
            super().__init__({"a": In(signed(8)), "b": In(signed(8)), "acc": Out(signed(24))})

        def elaborate(self, platform):
            m = Module()
            a, b, p = Signal(signed(8)), Signal(signed(8)), Signal(signed(16))
            m.d.sync += [a.eq(self.a), b.eq(self.b), self.acc.eq(self.acc + p)]
            if self.pipe:
                m.d.sync += p.eq(a * b)
            else:
                m.d.comb += p.eq(a * b)
            return m

    est = {}
    for pipe in (False, True):
        text = verilog.convert(Mac(pipe), name="top", emit_src=False)
        res = synthesize_verilog(text, top="top", workdir=tmp_path / str(pipe), family=family,
                                 timing=True)
        est[pipe] = res["timing"]
        assert res["dsp"] == 1 and est[pipe]["unmodelled"] == {}
    assert est[True]["fmax_mhz"] > est[False]["fmax_mhz"] > 50
    assert "DSP48" in est[False]["path"]
    assert est[False]["logic_only"]["fmax_mhz"] >= est[False]["fmax_mhz"]


def test_carry8_is_two_carry4s_in_a_row():
    """A CARRY8 (UltraScale+; Yosys maps CARRY4 today, but a netlist may hold one): S0 -> CO7
    crosses both halves, the lower half's S0 -> CO3 then the upper's carry in -> CO3."""
    conns = {"CI": ["0"], "CI_TOP": ["0"], "DI": ["0"] * 8, "S": [11] + ["0"] * 7,
             "CO": list(range(20, 28)), "O": list(range(30, 38))}
    dirs = {"CI": _IN, "CI_TOP": _IN, "DI": _IN, "S": _IN, "CO": _OUT, "O": _OUT}
    cells = {"r": _ff(10, 11), "c": {"type": "CARRY8", "parameters": {"CARRY_TYPE": "SINGLE_CY8"},
                                     "connections": conns, "port_directions": dirs},
             "e": _ff(27, 40)}
    est = estimate_netlist(_net(cells), route_base_ps=0, route_fanout_ps=0)
    assert est["delay_ns"] == pytest.approx((303 + 508 + 114) / 1000)
