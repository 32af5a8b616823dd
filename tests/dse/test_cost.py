"""Cost model: cycles are the hw formulas, resources behave, candidates are legal."""

import math

import pytest

from dse.cost import (
    Cost,
    LayerChoice,
    candidates,
    converter_cost,
    cycles,
    for_family,
    layer_cost,
    memory_bram18,
    parallelism_options,
    resource_model,
    resources,
)
from dse.workload import LayerWork


def _pw(c_in=32, c_out=64, h=8, active=None):
    return LayerWork(name="pw", op="conv", in_shape=(c_in, h, h), out_shape=(c_out, h, h),
                     active_in=active if active is not None else -1.0,
                     active_out=active if active is not None else -1.0)


def _dw(c=32, h=8, stride=1):
    ho = -(-h // stride)
    return LayerWork(name="dw", op="conv", in_shape=(c, h, h), out_shape=(c, ho, ho), kernel=3,
                     stride=stride, groups=c)


@pytest.mark.parametrize("lanes, pe", [(1, 1), (4, 8), (32, 64), (8, 2)])
def test_conv1x1_cycles_documented_formula(lanes, pe):
    # the block's formula: frames back to back cost no turnaround (the eof beat takes no bank)
    layer = _pw(active=20.5)
    b = 32 // lanes
    want = math.ceil(20.5 * b * (64 // pe) + 1)
    assert cycles(layer, LayerChoice("int8", lanes, pe)) == want


def test_cycles_are_the_ops_stage_cycles():
    from models import ops

    for layer in (_pw(), _dw(), _dw(stride=2)):
        op = ops.of(layer)
        for ch in candidates(layer, ["int8"]):
            assert cycles(layer, ch) == math.ceil(op.stage_cycles(layer, ch, layer.stats()))
            assert cycles(layer, ch) == math.ceil(op.cycles(layer, ch, layer.stats()))


def _digits_tail():
    # the digits classifier's last pointwise layer (feeding the global pool) and classifier
    pw3 = LayerWork(name="pw3", op="conv", in_shape=(32, 4, 4), out_shape=(64, 4, 4),
                    stages=({"name": "gap", "op": "gap", "in_shape": (64, 4, 4),
                             "active_in": 16.0},))
    fc = LayerWork(name="fc", op="linear", in_shape=(64, 1, 1), out_shape=(10, 1, 1))
    return pw3, fc


def test_cycles_match_verilator_on_digits_stages():
    """Anchors measured with Verilator (the stage alone as benchmarks/dse_check.py builds it,
    digits, 6 test frames back to back): pw3 + global pool alone 513 and 257 cycles per frame
    (541 and 309 when the FIFO in front of the pool held 4 beats: the pool's division stalled
    pw3, and in the whole network every stage before it); the classifier alone 321 and 41."""
    pw3, fc = _digits_tail()
    assert cycles(fc, LayerChoice("dybit4", 2, 1)) == 321  # 320 MAC cycles + 1
    assert cycles(fc, LayerChoice("int8", 16, 1)) == 41
    for ch, measured in ((LayerChoice("dybit4", 4, 16), 513), (LayerChoice("int8", 8, 16), 257)):
        c = cycles(pw3, ch)
        assert abs(c / measured - 1) <= 0.02, (ch, c, measured)
        # the pool's input FIFO holds its division: no stall left on the producer
        assert c == cycles(_pw(32, 64, 4), ch)


def test_fill_is_the_stage_tail():
    from contract.constants import FIFO_LATENCY as EDGE_LATENCY
    from contract.constants import MAC_LATENCY, REQUANT_LATENCY, WINDOW_STAGES, mac_latency
    from models import ops

    pw3, fc = _digits_tail()
    ch = LayerChoice("int8", 8, 16)
    # last site's 4 x 4 MAC cycles + MAC and requantizer registers + FIFO, then the pool's divide
    assert layer_cost(_pw(32, 64, 4), ch).fill == (4 * 4 + mac_latency("int8", 8) + REQUANT_LATENCY
                                                   + EDGE_LATENCY)
    assert layer_cost(pw3, ch).fill > layer_cost(_pw(32, 64, 4), ch).fill + 60
    # a stride-1 3x3 layer drains its last two rows through the sparse line buffer's 5 stages
    dw = _dw(c=32, h=8)
    assert WINDOW_STAGES[False] == 5
    assert ops.of(dw).tail(dw, LayerChoice("int8", 8, 8), dw.stats()) == (
        2 * 8 * 4 + MAC_LATENCY + mac_latency("int8", 9) + REQUANT_LATENCY + 5)
    # at stride 2: the last input row (8 sites of 4 beats) and the last output row (4 sites),
    # then the same pipeline
    dw2 = _dw(c=32, h=8, stride=2)
    assert ops.of(dw2).tail(dw2, LayerChoice("int8", 8, 8), dw2.stats()) == (
        8 * 4 + 4 * 4 + MAC_LATENCY + mac_latency("int8", 9) + REQUANT_LATENCY + 5)


def test_depthwise_and_divisibility_rules():
    with pytest.raises(ValueError, match="pe dividing lanes"):
        cycles(_dw(), LayerChoice("int8", 2, 4))
    with pytest.raises(ValueError, match="no dsp2"):
        cycles(_dw(), LayerChoice("int8", 4, 2, "dsp2"))
    # fewer pe than lanes: each window beat takes lanes / pe cycles
    assert cycles(_dw(), LayerChoice("int8", 4, 2)) > cycles(_dw(), LayerChoice("int8", 4, 4))
    with pytest.raises(ValueError, match="does not divide"):
        cycles(_pw(), LayerChoice("int8", 3, 1))
    for layer in (_pw(c_in=24, c_out=40), _dw(c=48)):
        for ch in candidates(layer, ["int8", "dybit4"]):
            assert layer.c_in % ch.lanes == 0 and layer.c_out % ch.pe == 0
            if layer.kind == "dwconv3x3":
                assert ch.lanes % ch.pe == 0 and ch.datapath != "dsp2"


def test_parallelism_options():
    assert parallelism_options(16) == [1, 2, 4, 8, 16]
    opts = parallelism_options(96, max_par=64, count=6)
    assert opts[0] == 1 and len(opts) <= 6 and all(96 % d == 0 and d <= 64 for d in opts)
    assert parallelism_options(7) == [1, 7]


def test_more_parallelism_is_faster_and_costs_more():
    layer = _pw()
    slow, fast = LayerChoice("int8", 1, 1), LayerChoice("int8", 8, 8)
    a, b = layer_cost(layer, slow), layer_cost(layer, fast)
    assert b.cycles < a.cycles
    assert b.dsp > a.dsp and b.lut > a.lut


def test_dybit_trades_dsp_for_lut():
    layer = _pw()
    i8 = resources(layer, LayerChoice("int8", 8, 8))
    d4 = resources(layer, LayerChoice("dybit4", 8, 8))
    assert d4["dsp"] < i8["dsp"]  # shift-add MACs need no multiplier


def test_memory_bram18_aspect_ratios():
    assert memory_bram18(36, 512) == 1
    assert memory_bram18(72, 512) == 2
    assert memory_bram18(8, 2048) == 1  # 2K x 9
    assert memory_bram18(1, 16385) == 2
    assert memory_bram18(0, 10) == 0


#: ROMs read through a register, synthesised alone (``synth_xilinx -family xcup``, the
#: memory of ``benchmarks/memory_map.py``'s ``memory_component``, 2026-11-28): (width, depth)
#: -> the RAMB18E2 Yosys used. 576 x 256 / 576 x 128: the weight ROMs measured earlier (16
#: RAMB18E2 / LUTs, ``models.ops._price.memory``).
XCUP_ROMS = {(32, 512): 1, (16, 1024): 1, (32, 480): 1, (32, 448): 1, (32, 384): 1,
             (64, 384): 2, (64, 256): 0, (48, 320): 0, (12, 512): 0, (8, 512): 0, (4, 1024): 0,
             (2, 2048): 0, (576, 256): 16, (576, 128): 0}


@pytest.mark.parametrize(("width", "depth"), sorted(XCUP_ROMS))
def test_the_ultrascale_rom_rule_maps_each_probe_as_yosys_did(width, depth):
    """A ROM goes to block RAM where Yosys' memory_libmap finds it cheaper than logic (a bit in
    LUTs costs 1/64 of a LUT6, a RAMB18E2 129 + 14): 32 x 384 (12,288 bits) is one RAMB18E2 and
    64 x 256 (16,384 bits, two blocks half full) stays in LUTs. The rule before (LUTs up to 16 Kb
    or below 256 words) put 5 of these 14 in LUTs that Yosys puts in block RAM."""
    from dse.cost import resource_model
    from models.ops import _price

    lut, bram = _price.memory(resource_model(), width, depth, rom=True)
    assert bram == XCUP_ROMS[width, depth]
    assert (lut == 0) == (bram > 0)


def test_converter_cost():
    assert converter_cost(4, 4) == {"lut": 0, "ff": 0}
    c = converter_cost(2, 8)
    assert c["lut"] > 0 and c["ff"] > 0
    assert converter_cost(2, 16)["lut"] >= c["lut"]


def test_records_round_trip():
    ch = LayerChoice("dybit4", 2, 4)
    assert LayerChoice.from_dict(ch.to_dict()) == ch
    cost = layer_cost(_pw(), ch)
    assert Cost.from_dict(cost.to_dict()) == cost
    with pytest.raises(ValueError, match="unknown weight format"):
        LayerChoice("int3", 1, 1)


def test_network_stage_resources_match_yosys_digits():
    """Anchors from Yosys on the digits int8 build (per-module stat): the residual skip FIFO of
    1104 x 25 bits maps to 3 RAMB18E2, a requantizer whose accumulator fits 27 bits takes one
    DSP48E2 per lane, the residual add two per lane."""
    pw2 = LayerWork(name="pw2", op="conv", in_shape=(32, 8, 8), out_shape=(32, 8, 8),
                    stages=({"name": "add1", "op": "add", "in_shape": (32, 8, 8),
                             "active_in": 64.0, "skip_sites": 69},))
    r = resources(pw2, LayerChoice("int8", 32, 2))
    assert r["bram18"] == memory_bram18(25, 1104) == 3
    plain = resources(_pw(32, 32), LayerChoice("int8", 32, 2))
    assert plain["bram18"] == 0
    # 64 MACs + 2 requantizer lanes; the add's two multipliers per lane on top
    assert plain["dsp"] == 64 + 2
    assert r["dsp"] == 64 + 2 + 2 * 2
    # a 32-bit accumulator (dybit8 weights over a wide fan-in) needs two DSPs per lane
    wide = _pw(1024, 8)
    assert resources(wide, LayerChoice("dybit8", 1, 4))["dsp"] == 2 * 4


def test_3x3_block_grows_with_the_map_as_yosys():
    """Block-grid anchors (Yosys ``synth_xilinx -family xcup``, LUT sites incl. LUTRAM): a
    depthwise 3x3 int8 block, 32 channels, 1 lane, takes 1,829 LUT / 1,192 FF on an 8x8 map and
    5,263 LUT / 1,527 FF on 34x34 (line buffer 4x deeper, with its address and read-mux logic;
    the generator of 2026-11-25, dense line buffer with its output stages). The model's growth
    is within 10 % of that on LUT and 25 % on FF."""
    small = resources(_dw(32, 8), LayerChoice("int8", 1, 1))
    large = resources(_dw(32, 34), LayerChoice("int8", 1, 1))
    assert abs((large["lut"] - small["lut"]) - (5263 - 1829)) <= 0.10 * (5263 - 1829)
    assert abs((large["ff"] - small["ff"]) - (1527 - 1192)) <= 0.25 * (1527 - 1192)


def test_dsp48e1_prices_the_requantizer_at_25_bits():
    """A layer whose accumulator needs 26 or 27 bits: one DSP48E2 per requant lane, two DSP48E1
    (what Yosys maps: synth_xilinx -family xc7 vs xcup of hw.requant)."""
    from contract.point import LayerChoice
    from dse.cost import for_dsp_cell, layer_cost, resource_model
    from dse.workload import LayerWork
    from models import ops

    # 3x3, 64 inputs, int8: fan-in 576 -> a 26-bit accumulator
    layer = LayerWork(name="c", op="conv", in_shape=(64, 8, 8), out_shape=(8, 8, 8), kernel=3)
    assert 25 < ops.of(layer).acc_bits(layer, "int8") <= 27
    choice = LayerChoice("int8", 4, 8)
    e2 = layer_cost(layer, choice, model=resource_model())
    e1 = layer_cost(layer, choice, model=for_dsp_cell(resource_model(), "DSP48E1"))
    assert e1.dsp - e2.dsp == pytest.approx(8 * resource_model().requant["dsp"])
    assert for_dsp_cell(resource_model(), "DSP48E2") is resource_model()


def test_ecp5_parts_are_priced_with_their_own_fit():
    """A Lattice part takes the synth_ecp5 fit: a line buffer deeper than 128 words is an EBR per
    bank (Yosys' mapping on ECP5), LUTRAM on UltraScale+; the requantizer's multiply takes two
    MULT18X18D beyond a 19-bit accumulator (synth_ecp5 of hw.requant at 17-26 bits)."""
    from contract.point import LayerChoice
    from dse.cost import for_budget, layer_cost, resource_model
    from dse.devices import budget
    from dse.workload import LayerWork

    ecp5 = for_budget(budget("LFE5U-85F"))
    assert "synth_ecp5" in ecp5.provenance and ecp5.memory["lutram_cells"] == [[16, 4, 6]]
    assert for_budget(budget("XCZU3EG")) is resource_model()
    # 34 wide, 32 channels, one lane: 9 x 32 = 288 words per bank
    deep = LayerWork(name="d", op="conv", in_shape=(32, 34, 34), out_shape=(32, 34, 34),
                     kernel=3, groups=32)
    choice = LayerChoice("int8", 1, 1)
    assert layer_cost(deep, choice, model=ecp5).bram18 == 32  # measured: 32 DP16KD
    assert layer_cost(deep, choice, model=resource_model()).bram18 == 0
    # 8 wide: 2 x 32 = 64 words per bank stay in TRELLIS_DPR16X4 cells
    shallow = LayerWork(name="s", op="conv", in_shape=(32, 8, 8), out_shape=(32, 8, 8),
                        kernel=3, groups=32)
    assert layer_cost(shallow, choice, model=ecp5).bram18 == 0
    assert ecp5.requant["dsp_acc_bits"] == 19
    # the workload's measured accumulator width decides, not the fan-in bound (20 bits here)
    narrow = LayerWork(name="s", op="conv", in_shape=(32, 8, 8), out_shape=(32, 8, 8),
                       kernel=3, groups=32, acc_bits={"int8": 17})
    assert layer_cost(shallow, choice, model=ecp5).dsp - \
        layer_cost(narrow, choice, model=ecp5).dsp == ecp5.requant["dsp"]


def test_a_hidden_linear_layer_is_priced_with_its_requantizer_and_input_buffer():
    """LeNet-5's fc1 and fc2 (linear layers whose outputs feed another layer) have a requantizer
    the classifier does not; the 1x1 unit's input buffer (two sites of C_in / lanes words) is
    the linear layer's as much as the 1x1 conv's. Before, both were missed: the ECP5 model
    priced the LeNet-5 build (runs of stop 44) 123 MULT18X18D and 20 DP16KD where synth_ecp5
    used 133 and 22 (fc1's requantizer 8 + fc2's 2; fc1's 2 x 50 x 64-bit buffer in 2 EBRs)."""
    from contract.point import LayerChoice
    from dse.cost import for_budget, layer_cost
    from dse.devices import budget
    from dse.workload import LayerWork
    from models import ops

    ecp5 = for_budget(budget("LFE5U-85F"))
    head = LayerWork(name="fc", op="linear", in_shape=(400, 1, 1), out_shape=(120, 1, 1))
    hidden = LayerWork(name="fc", op="linear", in_shape=(400, 1, 1), out_shape=(120, 1, 1),
                       requant=True)
    assert head.requant is False and not ops.of(head).requantized(head)
    assert ops.of(hidden).requantized(hidden)
    # the field round-trips, and the classifier's (the op's default) is left out of the file
    assert "requant" not in head.to_dict() and hidden.to_dict()["requant"] is True
    assert LayerWork.from_dict(hidden.to_dict()) == hidden
    with pytest.raises(ValueError, match="requant"):
        LayerWork(name="fc", op="linear", in_shape=(4, 1, 1), out_shape=(2, 1, 1), requant=1)
    choice = LayerChoice("int8", 8, 8)
    a, b = layer_cost(head, choice, model=ecp5), layer_cost(hidden, choice, model=ecp5)
    acc = ops.of(hidden).acc_bits(hidden, "int8")
    per = ecp5.requant["dsp"] * (2 if acc > ecp5.requant["dsp_acc_bits"] else 1)
    assert b.dsp - a.dsp == pytest.approx(8 * per) and b.lut > a.lut and b.ff > a.ff
    # 8 lanes x 8 bits x 2 x 50 words: 2 EBRs on ECP5 (as synth_ecp5 maps hw.conv1x1's buffer)
    from models.ops import _price

    assert (64, 100, False) in ops.of(head).block_memories(head, choice)
    assert _price.rule_choice(ecp5, 64, 100, rom=False) == "bram"
    assert _price.memory_bram18(64, 100) == 2
    assert a.bram18 == ops.of(head).weight_memory(head, choice, ecp5)[1] + 2 + sum(
        _price.memory_bram18(w, d) for w, d, rom in ops.of(head).block_memories(head, choice)[:-1]
        if _price.rule_choice(ecp5, w, d, rom=rom) == "bram")


def test_a_one_word_weight_rom_is_priced_with_constant_multipliers():
    """LeNet-5's first conv at 1 lane x 6 outputs a beat uses every weight every cycle: its
    weight ROM is one word, so each product is by a constant that Yosys folds (synth_xilinx:
    4,330 LUT for the block where the general shift-add MACs priced 16,135). Such a layer takes
    the ``"<key>@const"`` MAC entry; a layer that steps through its weights keeps the general
    one, and a model fitted without the entry prices both alike."""
    import dataclasses

    from contract.point import LayerChoice
    from dse.cost import resource_model
    from dse.workload import LayerWork
    from models import ops
    from models.ops._price import mac_price

    conv1 = LayerWork(name="conv1", op="conv", in_shape=(1, 32, 32), out_shape=(6, 32, 32),
                      kernel=5, dense=True)
    full, half = LayerChoice("dybit4", 1, 6), LayerChoice("dybit4", 1, 3)
    op = ops.of(conv1)
    assert op.constant_weights(conv1, full) and not op.constant_weights(conv1, half)
    model = resource_model()
    # the one-word ROM is no memory at all (its constants are in the multipliers)
    assert op.weight_memory(conv1, full, model) == (0, 0)
    assert op.weight_memory(conv1, half, model)[0] > 0
    assert "dybit4@const" in model.mac  # fitted from const_grid's probes
    assert mac_price(model, "dybit4", "shift-add", constant=True) == model.mac["dybit4@const"]
    assert mac_price(model, "dybit4", "shift-add") == model.mac["dybit4"]
    # the entry changes exactly the MAC term of the constant layer
    general = dataclasses.replace(model, mac={k: v for k, v in model.mac.items()
                                              if not k.endswith("@const")})
    macs = op.mac_count(conv1, full)
    d = op.price(conv1, full, general)["lut"] - op.price(conv1, full, model)["lut"]
    narrow = 1.0  # 8-bit activations: the coefficients' own width
    assert d == pytest.approx(macs * narrow * (model.mac["dybit4"]["lut"]
                                               - model.mac["dybit4@const"]["lut"]))
    assert d > 0
    assert op.price(conv1, half, general) == op.price(conv1, half, model)


def test_a_7_series_part_prices_its_own_lut_ram_cells():
    """DSP48E1 parts are 7-series: RAM32M (32 x 6) and RAM64M (64 x 3) in 4 LUTs each, priced
    by Yosys' rule at 8 a cell, where UltraScale+ has RAM32M16 and RAM64M8 (8 LUTs, 16). An
    8-bit x 192-word RAM is LUT RAM on both; 16 x 192 is block RAM on xc7 alone (synth_xilinx,
    tests/benchmarks/test_memory_map.py)."""
    from dse.cost import for_budget
    from dse.devices import budget
    from models.ops import _price

    xcup = resource_model()
    xc7 = for_budget(budget("XC7Z020"))
    assert for_budget(budget("XC7A100T")) == xc7 and xc7.dsp_cell == "DSP48E1"
    assert "xc7" in xc7.provenance and "xcup" in xcup.provenance
    assert [tuple(c) for c in _price.lutram_cells(xc7)] == [(32, 6, 4), (64, 3, 4)]
    assert _price.lutram_cells(xcup) == _price.XILINX_LUTRAM_CELLS
    assert _price.dual_port_memory(xc7, 8, 192) == (4 * 3 * 3, 0)    # 9 RAM64M
    assert _price.dual_port_memory(xcup, 16, 192)[1] == 0
    assert _price.dual_port_memory(xc7, 16, 192) == (0, 1)


def test_a_ram_marked_no_rw_check_goes_to_block_ram_sooner_on_ecp5():
    """synth_ecp5 maps a RAM whose reads never meet a write of the same word (``no_rw_check``:
    the FIFOs' storage, the dense line buffer's rows) to an EBR without the read-during-write
    logic, which moves its choice: 16 x 96 and 64 x 48 (and the other four of
    ``benchmarks/memory_map.py``'s 120 such RAMs that differ) go to block RAM where the same
    RAM unmarked stays in LUT RAM. The rule prices both as Yosys maps them; other families'
    rules (no ``block_extra_no_rw_check``) are unchanged."""
    from models.ops import _price

    ecp5 = for_family("ecp5")
    for width, depth, ebr in ((16, 96, 1), (64, 48, 2), (9, 128, 1)):
        assert _price.dual_port_memory(ecp5, width, depth)[1] == 0
        assert _price.dual_port_memory(ecp5, width, depth, no_rw_check=True) == (0, ebr)
    # far from the boundary the mark changes nothing
    assert _price.dual_port_memory(ecp5, 8, 16, no_rw_check=True) == \
        _price.dual_port_memory(ecp5, 8, 16)
    xcup = for_family("xcup")
    for width, depth in ((16, 96), (32, 512), (8, 384)):
        assert _price.dual_port_memory(xcup, width, depth, no_rw_check=True) == \
            _price.dual_port_memory(xcup, width, depth)
