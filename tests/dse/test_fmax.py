"""The Fmax estimate (dse/fmax.py): block features as the calibration names them, a design's
estimate from its slowest block and the routing derate."""

import pytest

from common.errors import CodesignError
from contract.point import LayerChoice
from dse.fmax import block_delay_ns, block_features, design_fmax_mhz, layer_blocks
from dse.workload import LayerWork

MODEL = {"base": {"conv1x1": 8.0, "dwconv3x3": 9.0, "conv3x3": 9.5, "requant": 6.0},
         "per_level": {"conv1x1": 1.5, "dwconv3x3": 1.0, "conv3x3": 1.2, "requant": 3.0},
         "mult": {"int8": 4.0, "dybit4": 2.0}, "routing": 0.25}


def test_features_count_the_adder_tree_and_the_requant_split():
    assert block_features("conv1x1", "int8", 1)["levels"] == 1  # product + accumulator
    assert block_features("conv1x1", "int8", 8)["levels"] == 4
    assert block_features("dwconv3x3", "int8", 4, 3)["levels"] == 4  # 9 taps + accumulator
    assert block_features("conv3x3", "int8", 2, 3)["levels"] == 5  # 18 products
    assert block_features("requant", "int8", 4, acc_bits=19)["levels"] == 0
    assert block_features("requant", "int8", 4, acc_bits=20)["levels"] == 1
    assert block_features("width", "int8", 4)["format"] == "none"


def test_design_fmax_is_the_slowest_block_derated():
    pw = LayerWork(name="pw", op="conv", in_shape=(32, 8, 8), out_shape=(32, 8, 8),
                   acc_bits={"int8": 18})
    dw = LayerWork(name="dw", op="conv", in_shape=(32, 8, 8), out_shape=(32, 8, 8), kernel=3,
                   groups=32, acc_bits={"int8": 18})
    assert [b["kind"] for b in layer_blocks(dw, LayerChoice("int8", 2, 2))] == \
        ["dwconv3x3", "requant"]
    choices = [LayerChoice("int8", 8, 2), LayerChoice("int8", 1, 1)]
    worst = max(block_delay_ns(f, MODEL) for x, c in zip([pw, dw], choices, strict=True)
                for f in layer_blocks(x, c))
    assert worst == pytest.approx(8.0 + 1.5 * 4 + 4.0)  # the 8-lane 1x1
    assert design_fmax_mhz([pw, dw], choices, MODEL) == pytest.approx(1000 / (worst * 1.25))
    # fewer lanes: a shallower tree, a faster clock
    assert design_fmax_mhz([pw, dw], [LayerChoice("int8", 2, 2)] * 2, MODEL) > \
        design_fmax_mhz([pw, dw], choices, MODEL)


def test_dse_labels_its_clock_an_estimate_per_family(tmp_path):
    """An ECP5 DSE writes the nextpnr-fitted model's Fmax estimate and the time at it beside the
    cycles; a Xilinx DSE writes its own family's model, fitted to the timing estimate of
    synth_xilinx netlists (no placer), and says so in the model's provenance."""
    from dse.api import explore
    from dse.fmax import fmax_model, model_file

    assert fmax_model() is not None and "nextpnr" in fmax_model()["provenance"]
    df = explore("synthetic8", "LFE5U-85F", out=tmp_path / "ecp5", points=2, check=0)
    assert (df["fmax_est_mhz"] > 0).all()
    # (the Fmax column is rounded to 0.1 MHz)
    at = df["latency_cycles"] / df["fmax_est_mhz"]
    assert (abs(df["latency_us_at_fmax_est"] / at - 1) < 0.005).all()
    for part, fam in (("XCZU3EG", "xcup"), ("XC7Z020", "xc7")):
        assert model_file(fam).name == f"fmax_model_{fam}.json"
        model = fmax_model(family=fam)
        assert model["family"] == fam and "estimate" in model["provenance"]
        x = explore("synthetic8", part, out=tmp_path / part, points=2, check=0)
        assert (x["fmax_est_mhz"] > 0).all()
        assert list(x["fmax_est_mhz"]) != list(df["fmax_est_mhz"])


def test_dense_window_blocks_have_their_own_kind_and_fall_back_without_it():
    """A dense network's window block (dense line buffer) is ``<kind>_dense``; a model fitted
    without that kind prices it as the sparse kind, a model with it by its own terms."""
    dw = LayerWork(name="dw", op="conv", in_shape=(32, 8, 8), out_shape=(32, 8, 8), kernel=3,
                   groups=32, acc_bits={"int8": 18}, dense=True)
    feats = layer_blocks(dw, LayerChoice("int8", 1, 1))[0]
    assert feats["kind"] == "dwconv3x3_dense"
    assert block_features("conv1x1", "int8", 1, dense=True)["kind"] == "conv1x1"
    sparse = dict(feats, kind="dwconv3x3")
    assert block_delay_ns(feats, MODEL) == block_delay_ns(sparse, MODEL)
    own = {**MODEL, "base": {**MODEL["base"], "dwconv3x3_dense": 5.0},
           "per_level": {**MODEL["per_level"], "dwconv3x3_dense": 0.5}}
    assert block_delay_ns(feats, own) == pytest.approx(5.0 + 0.5 * feats["levels"] + 4.0)


def test_dse_minimises_time_at_each_designs_estimated_clock(tmp_path):
    """``--clock estimate`` (the default) counts a design's time at its own estimated Fmax: every
    candidate carries its delay (choices.csv), the front is numbered fastest first in that
    time, and its fastest point is at least as fast in time as the cycles front's
    (``--clock assumed``), which it may beat with a faster clock at more cycles."""
    import json

    import pandas as pd

    from dse.api import explore

    # (points enough that neither front is thinned: a thinned front keeps no such guarantee;
    # two formats keep the time front, whose points differ in LUTs too, small enough for that)
    kw = dict(points=24, check=0, formats=["int8", "int4"])
    t = explore("synthetic8", "LFE5U-85F", out=tmp_path / "t", **kw)
    a = explore("synthetic8", "LFE5U-85F", out=tmp_path / "a", clock="assumed", **kw)
    assert 2 <= len(a) < 24 and 2 <= len(t) < 24
    assert json.loads((tmp_path / "t" / "front.json").read_text())["clock"] == "estimate"
    assert json.loads((tmp_path / "a" / "front.json").read_text())["clock"] == "assumed"
    assert (pd.read_csv(tmp_path / "t" / "choices.csv")["delay_ns"] > 0).all()
    assert "delay_ns" not in pd.read_csv(tmp_path / "a" / "choices.csv")
    # fastest first in the program's own time (fps unrounded: fmax_est_mhz is to 0.1 MHz,
    # which can swap two points 0.01 % apart)
    fps = list(t["fps_at_fmax_est"])
    assert fps == sorted(fps, reverse=True)
    assert (t["ii_cycles"] / t["fmax_est_mhz"]).iloc[0] <= \
        (a["ii_cycles"] / a["fmax_est_mhz"]).iloc[0] * 1.001  # (Fmax rounded to 0.1 MHz)
    # every point of the cycles front is on the time front or beaten there in both time and
    # predicted accuracy (the time search includes the cycles one)
    for _, r in a.iterrows():
        us = r["ii_cycles"] / r["fmax_est_mhz"]
        assert ((t["ii_cycles"] / t["fmax_est_mhz"] <= us * 1.001)
                & (t["accuracy_pred"] >= r["accuracy_pred"] - 1e-9)).any()
    with pytest.raises(CodesignError, match="--clock"):
        explore("synthetic8", "LFE5U-85F", out=tmp_path / "x", clock="measured")


def test_a_datapath_other_than_the_formats_default_has_its_own_term():
    """Two products per DSP (``dsp2``) and LUT multipliers add their own delay, by datapath and
    format; the format's default datapath adds none, and a model fitted without the term prices
    every datapath alike."""
    pw = LayerWork(name="pw", op="conv", in_shape=(32, 8, 8), out_shape=(32, 8, 8),
                   acc_bits={"int8": 18, "int4": 14})
    assert block_features("conv1x1", "int8", 4, datapath="dsp2")["datapath"] == "dsp2:int8"
    assert block_features("conv1x1", "int8", 4, datapath="dsp")["datapath"] == ""
    assert block_features("requant", "none", 4, datapath="dsp2")["datapath"] == ""
    packed = layer_blocks(pw, LayerChoice("int8", 4, 4, datapath="dsp2"))
    plain = layer_blocks(pw, LayerChoice("int8", 4, 4))
    assert [b["datapath"] for b in packed] == ["dsp2:int8", ""]
    assert block_delay_ns(packed[0], MODEL) == block_delay_ns(plain[0], MODEL)
    own = {**MODEL, "datapath": {"dsp2:int8": 2.0}}
    assert block_delay_ns(packed[0], own) == pytest.approx(block_delay_ns(plain[0], own) + 2.0)
    assert block_delay_ns(plain[1], own) == block_delay_ns(plain[1], MODEL)


def test_a_fuller_part_routes_slower_where_the_model_has_the_share_term():
    from dse.fmax import period_mhz, routing_factor

    shared = dict(MODEL, routing=0.3, routing_per_lut_share=1.0, routing_ref_share=0.4)
    assert routing_factor(shared, 0.4) == pytest.approx(1.3)
    assert routing_factor(shared, 0.7) == pytest.approx(1.6)
    assert routing_factor(shared, 0.1) == pytest.approx(1.0)
    assert routing_factor(shared) == pytest.approx(1.3)  # share unknown: at the reference
    assert routing_factor(MODEL, 0.9) == pytest.approx(1.25)  # no share term: as before
    assert period_mhz(10.0, shared, lut_share=0.7) == pytest.approx(1000 / 16)


def test_the_additive_derate_adds_wire_time_not_a_share_of_the_logic():
    """The ECP5 model's form: a network's period is its slowest block's delay plus nanoseconds
    of routing that grow with the LUT share, the same for a deep block as for a shallow one; the
    DSE's linear form (``lut_routing``) gives the same period."""
    from dse.fmax import lut_routing, period_ns, routing_factor, routing_ns

    add = {k: v for k, v in MODEL.items() if k != "routing"}
    add.update(routing_ns=4.0, routing_ns_per_lut_share=10.0, routing_ref_share=0.4)
    assert routing_factor(add, 0.7) == 1.0
    assert routing_ns(add, 0.4) == pytest.approx(4.0)
    assert routing_ns(add, 0.7) == pytest.approx(7.0)
    assert routing_ns(add) == pytest.approx(4.0)  # share unknown: at the reference
    assert routing_ns(add, 0.0) == 0.0  # never below the block alone
    assert period_ns(8.0, add, lut_share=0.7) - period_ns(6.0, add, lut_share=0.7) == \
        pytest.approx(2.0)
    assert design_fmax_mhz(*_deep_and_shallow(), add, lut_share=0.7) == pytest.approx(
        1000 / (max(_deep_and_shallow_delays(add)) + 7.0))
    a, b, c, d = lut_routing(add, 10_000)
    for share in (0.1, 0.4, 0.9):
        lut = share * 10_000
        assert 8.0 * (a + b * lut) + c + d * lut == pytest.approx(
            period_ns(8.0, add, lut_share=share))
    a, b, c, d = lut_routing(dict(MODEL, routing=0.3, routing_per_lut_share=1.0,
                                  routing_ref_share=0.4), 10_000)
    assert (c, d) == (0.0, 0.0) and 8.0 * (a + b * 7_000) == pytest.approx(8.0 * 1.6)


def _deep_and_shallow():
    pw = LayerWork(name="pw", op="conv", in_shape=(32, 8, 8), out_shape=(32, 8, 8),
                   acc_bits={"int8": 18})
    dw = LayerWork(name="dw", op="conv", in_shape=(32, 8, 8), out_shape=(32, 8, 8), kernel=3,
                   groups=32, acc_bits={"int8": 18})
    return [pw, dw], [LayerChoice("int8", 8, 2), LayerChoice("int8", 1, 1)]


def _deep_and_shallow_delays(model):
    layers, choices = _deep_and_shallow()
    return [block_delay_ns(f, model) for lw, ch in zip(layers, choices, strict=True)
            for f in layer_blocks(lw, ch)]


def test_a_layers_products_are_counted_as_its_block_builds_them():
    """A layer's tree depth comes from the products its block sums into one accumulator a
    cycle: a non-square kernel's taps (11x5 = 55, not 11x11) times its lanes, a kernel folded
    over its rows (``kfold``) one row a cycle; a depthwise unit its own 9 taps at any lanes and
    fold."""
    stem = LayerWork(name="stem", op="conv", in_shape=(1, 49, 10), out_shape=(64, 25, 5),
                     kernel=11, kernel_w=5, stride=2, acc_bits={"int4": 16, "int8": 20},
                     dense=True)
    assert layer_blocks(stem, LayerChoice("int4", 1, 1))[0]["levels"] == 6      # 55 products
    conv = LayerWork(name="c", op="conv", in_shape=(8, 8, 8), out_shape=(16, 8, 8), kernel=3,
                     acc_bits={"int8": 20})
    assert layer_blocks(conv, LayerChoice("int8", 8, 2))[0]["levels"] == 7      # 72 products
    folded = LayerChoice("int8", 8, 2, kfold=3)
    assert layer_blocks(conv, folded)[0]["levels"] == 5                         # 24 products
    dw = LayerWork(name="dw", op="conv", in_shape=(32, 8, 8), out_shape=(32, 8, 8), kernel=3,
                   groups=32, acc_bits={"int8": 18})
    assert layer_blocks(dw, LayerChoice("int8", 8, 2))[0]["levels"] == 4        # 9 products
    # a depthwise fold keeps the unfolded depth: the grid's depthwise blocks all sum 9 taps, so
    # the model knows one depthwise delay (its line buffer's), not one per tree depth
    for kf in (3, 9):
        assert layer_blocks(dw, LayerChoice("int8", 8, 2, kfold=kf))[0]["levels"] == 4
    # a square kernel at kfold 1 keeps the features the calibration grid was fitted on
    assert layer_blocks(conv, LayerChoice("int8", 1, 2))[0] == block_features(
        "conv3x3", "int8", 1, 3, window_bits=72)
    # the window's bits: kh x kw x lanes activations of the layer's input, folded or not (a fold
    # shortens the tree, not the window); narrower activations, fewer bits
    assert layer_blocks(conv, folded)[0]["window_kbits"] == 0.576
    assert layer_blocks(conv, LayerChoice("int8", 8, 2))[0]["window_kbits"] == 0.576
    narrow = LayerWork(name="c", op="conv", in_shape=(8, 8, 8), out_shape=(16, 8, 8), kernel=3,
                       acc_bits={"int8": 20}, in_bits=4)
    assert layer_blocks(narrow, folded)[0]["window_kbits"] == 0.288
    # a model with a window term prices it; one without (or a 1x1 block, which has no window)
    # does not
    feats = layer_blocks(conv, folded)[0]
    own = {**MODEL, "per_kbit": {"conv3x3": 2.5}}
    assert block_delay_ns(feats, own) == pytest.approx(block_delay_ns(feats, MODEL) + 1.44)
    pw = LayerWork(name="p", op="conv", in_shape=(8, 8, 8), out_shape=(16, 8, 8), kernel=1)
    assert "window_kbits" not in layer_blocks(pw, LayerChoice("int8", 8, 2))[0]


def test_pass_through_stages_are_blocks_of_the_layer_before_them():
    """A layer's flatten / max-pool stage is timed as a block of that layer (LeNet-5's critical
    path ran through its flatten, which the model could not see); a hidden linear layer has a
    requantizer, the classifier none; a model fitted before the stages were timed prices them
    as no path, not as its slowest kind."""
    conv = LayerWork(name="c", op="conv", in_shape=(6, 14, 14), out_shape=(16, 10, 10), kernel=5,
                     stages=({"name": "p", "op": "maxpool", "in_shape": (16, 10, 10),
                              "out_shape": (16, 5, 5), "active_in": 100, "active_out": 25},
                             {"name": "f", "op": "flatten", "in_shape": (16, 5, 5),
                              "out_shape": (400, 1, 1), "active_in": 25, "active_out": 1}))
    blocks = layer_blocks(conv, LayerChoice("int8", 2, 4))
    assert [b["kind"] for b in blocks] == ["conv3x3", "requant", "maxpool", "flatten"]
    assert block_delay_ns(blocks[3], MODEL) == 0.0
    assert block_delay_ns(blocks[3], {**MODEL, "base": {**MODEL["base"], "flatten": 11.0}}) \
        == pytest.approx(11.0)
    head = LayerWork(name="fc", op="linear", in_shape=(400, 1, 1), out_shape=(120, 1, 1))
    hidden = LayerWork(name="fc", op="linear", in_shape=(400, 1, 1), out_shape=(120, 1, 1),
                       requant=True)
    assert [b["kind"] for b in layer_blocks(head, LayerChoice("int8", 8, 8))] == ["conv1x1"]
    assert [b["kind"] for b in layer_blocks(hidden, LayerChoice("int8", 8, 8))] == \
        ["conv1x1", "requant"]
