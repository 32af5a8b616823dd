"""benchmarks/fit_fmax.py: block configurations, the harness every block is timed in, and the
model fit (loaded from its path: benchmarks/ is not a package)."""

import json

import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def fit_fmax():
    return load_benchmark("fit_fmax")


def test_configs_cover_every_block_kind_and_format(fit_fmax):
    cfgs = fit_fmax.configs()
    kinds = {c["block"] for c in cfgs}
    assert kinds == {"conv1x1", "dwconv3x3", "conv3x3", "requant", "width", "flatten",
                     "maxpool", "avgpool", "gap", "crop", "add", "concat", "act", "gmp", "upsample",
                     "maxpoolk"}
    # the pass-through stages: no multiply; a delay that grows with the lanes their control
    # reaches (levels of a tree over the lanes)
    stage = [(c, fit_fmax.features(c)) for c in cfgs
             if c["block"] in ("flatten", "maxpool", "gap", "add")]
    assert {f["levels"] for _, f in stage} == {1, 4, 5}
    assert all(f["format"] == "none" and f["levels"] == c["lanes"].bit_length()
               for c, f in stage)
    assert {c["format"] for c in cfgs if c["block"] == "conv1x1"} == \
        {"int8", "int4", "dybit4", "dybit8"}
    assert {c.get("acc_bits") for c in cfgs if c["block"] == "requant"} >= {18, 24}
    # the requantizers as a build for the family sizes them: 19 bits per MULT18X18D
    assert {c["dsp_acc_bits"] for c in cfgs if c["block"] == "requant"} == {19}
    assert {c["dsp_acc_bits"] for c in fit_fmax.configs("xcup") if c["block"] == "requant"} == \
        {27}


def test_harness_synthesises_on_ecp5_with_one_pin_each_way(fit_fmax, tmp_path):
    """The harness around a width converter (a netlist on which this Yosys' ABC9 exits without a
    word): synth_ecp5 completes, with the LUT mapper it used on record, and only the harness'
    three ports reach the top."""
    from amaranth.back import verilog

    from hw.synth import synthesize_verilog

    cfg = {"block": "width", "format": "int8", "c_in": 16, "c_out": 16, "lanes": 4, "pe": 16,
           "h": 8, "w": 8}
    text = verilog.convert(fit_fmax.harness(fit_fmax._component(cfg)), name="top", emit_src=False)
    assert "input sin" in text and "output sout" in text and "input rdy" in text
    res = synthesize_verilog(text, top="top", workdir=tmp_path, family="ecp5", netlist=True)
    assert res["ff"] > 0 and res["lut"] > 0 and (tmp_path / "top.json").is_file()
    assert res.get("lut_mapper", "abc9").startswith(("abc9", "abc -lut 4"))

@pytest.mark.parametrize("block", ["add", "concat", "crop", "gap"])
def test_harness_takes_every_pass_through_stage(fit_fmax, block):
    """The joins take both input streams from the one shift register (each stream's valid and
    ready in the fold, so synthesis keeps both), the others their one: the top still has only
    the harness' pins."""
    import re

    from amaranth.back import verilog

    cfg = {"block": block, "format": "int8", "c_in": 16, "c_out": 16, "lanes": 8, "pe": 8,
           "h": 8, "w": 8}
    dut = fit_fmax._component(cfg)
    ins = ("a", "b") if block in ("add", "concat") else ("i",)
    assert all(hasattr(dut, n) for n in ins)
    text = verilog.convert(fit_fmax.harness(dut), name="top", emit_src=False)
    top = text[text.index("module top"):]
    top = top[:top.index("endmodule")]
    ports = set(re.findall(r"^\s*(?:input|output)\s+(?:\[[^\]]*\]\s*)?\\?(\S+?)\s*;", top, re.M))
    assert ports == {"clk", "rst", "sin", "rdy", "sout"}
    widths = sum(len(getattr(dut, n).payload.as_value()) + 1 for n in ins)
    assert re.search(rf"reg \[{widths - 1}:0\] sh\b", top)


def test_fit_recovers_a_planted_model_and_reports_held_out_error(fit_fmax):
    """Samples made from known coefficients: the fit gives them back and a held-out error of 0."""
    from dse.fmax import block_delay_ns

    truth = {"base": {"conv1x1": 8.0, "dwconv3x3": 9.0, "requant": 6.0},
             "per_level": {"conv1x1": 1.5, "dwconv3x3": 1.2, "requant": 3.0},
             "mult": {"int8": 4.0, "dybit4": 2.5}}
    samples = []
    # every third is held out (index 2, 5, 8, 11); the rest identify every coefficient
    for block, fmt, lanes, acc in [("conv1x1", "int8", 1, 32), ("conv1x1", "int8", 4, 32),
                                   ("conv1x1", "dybit4", 8, 32), ("conv1x1", "dybit4", 2, 32),
                                   ("dwconv3x3", "int8", 1, 32), ("dwconv3x3", "dybit4", 2, 32),
                                   ("dwconv3x3", "int8", 4, 32), ("requant", "int8", 1, 18),
                                   ("requant", "int8", 4, 24), ("requant", "int8", 2, 24),
                                   ("conv1x1", "int8", 16, 32), ("requant", "int8", 1, 24)]:
        cfg = {"block": block, "format": fmt, "c_in": 16, "c_out": 16, "lanes": lanes,
               "pe": 1, "h": 8, "w": 8, "acc_bits": acc}
        d = block_delay_ns(fit_fmax.features(cfg), truth)
        samples.append({"config": cfg, "delay_ns": d, "fmax_mhz": 1000.0 / d})
    model = fit_fmax.fit(samples)
    assert model["heldout"]["samples"] == 4
    assert model["heldout"]["max_abs_rel_error"] < 1e-3
    assert model["per_level"]["conv1x1"] == pytest.approx(1.5, abs=1e-3)


def test_xilinx_sample_is_the_timing_estimate_and_is_cached(fit_fmax, tmp_path):
    """--family xcup: a block's sample is hw/timing.py's estimate of its synth_xilinx netlist
    (worst path named), and a second call with the same Verilog reads it back."""
    cfg = {"block": "requant", "format": "int8", "c_in": 32, "c_out": 32, "lanes": 1, "pe": 1,
           "h": 8, "w": 8}
    s = fit_fmax.estimate_sample(cfg, tmp_path, family="xcup")
    assert s["fmax_mhz"] > 50 and s["delay_ns"] == pytest.approx(1000 / s["fmax_mhz"], rel=1e-2)
    assert s["worst_path"]["cells"].endswith(("FDRE.D", "FDRE.CE", "FDRE.R")) or \
        "DSP48" in s["worst_path"]["cells"]
    assert s["cells"]["dsp"] >= 1 and not s.get("cached")
    again = fit_fmax.estimate_sample(cfg, tmp_path, family="xcup")
    assert again["cached"] and again["fmax_mhz"] == s["fmax_mhz"]


def test_writing_the_dse_model_needs_networks_and_is_refused_before_any_run(fit_fmax, tmp_path,
                                                                            capsys):
    from dse.fmax import model_file

    before = model_file("ecp5").read_bytes()
    work = tmp_path / "work"
    assert fit_fmax.main(["--workdir", str(work)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs its routing derate" in err[0] and "--network" in err[0]
    assert fit_fmax.main(["--workdir", str(work), "--network", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a build directory" in err[0]
    assert fit_fmax.main(["--workdir", str(work), "--no-write", "--seeds", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seeds 0" in err[0]
    assert fit_fmax.main(["--workdir", str(work), "--no-write", "--kinds", "conv9x9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--kinds conv9x9" in err[0] and "conv3x3_dense" in err[0]
    assert fit_fmax.main(["--workdir", str(work), "--kinds", "maxpool",
                          "--out", str(tmp_path / "none.json"), "--network", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a build directory" in err[0]
    (tmp_path / "empty.json").write_text("{}")
    assert fit_fmax.main(["--workdir", str(work), "--kinds", "maxpool", "--no-write",
                          "--out", str(tmp_path / "empty.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no fitted block model" in err[0]
    # a model without the format terms the kind's blocks need: refused before any placement
    bare = json.loads(model_file("ecp5").read_text())
    bare["mult"].pop("int4")
    (tmp_path / "bare.json").write_text(json.dumps(bare))
    assert fit_fmax.main(["--workdir", str(work), "--kinds", "conv3x3_dense", "--no-write",
                          "--out", str(tmp_path / "bare.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no term for int4" in err[0]
    # nothing ran, nothing was written
    assert not work.exists() and model_file("ecp5").read_bytes() == before


@pytest.mark.slow
def test_seeds_keep_the_fastest_placement_and_cache_apart(fit_fmax, tmp_path):
    """--seeds 2: a block is placed with nextpnr seeds 1 and 2, the fastest kept and both on
    record; its cache is apart from the one-seed sample's, and a second call reads it back."""
    cfg = {"block": "requant", "format": "int8", "c_in": 32, "c_out": 32, "lanes": 1, "pe": 1,
           "h": 8, "w": 8, "dsp_acc_bits": 19}
    one = fit_fmax.implement_sample(cfg, tmp_path)
    two = fit_fmax.implement_sample(cfg, tmp_path, seeds=2)
    assert len(two["seeds_fmax"]) == 2 and two["fmax_mhz"] == max(two["seeds_fmax"])
    assert one["seeds_fmax"] == [one["fmax_mhz"]] and two["digest"] != one["digest"]
    assert two["seeds_fmax"][0] == one["fmax_mhz"]  # seed 1 is the same placement
    again = fit_fmax.implement_sample(cfg, tmp_path, seeds=2)
    assert again["cached"] and again["fmax_mhz"] == two["fmax_mhz"]


def test_networks_are_recorded_with_their_blocks_and_reused(fit_fmax, tmp_path):
    """fit_routing keeps each network's blocks and generator in the model, and
    recorded_networks gives them back from the written file: a later refit computes the same
    derate from the record as from the build directories (which do not outlive a session)."""
    import json

    model = {"base": {"conv1x1": 8.0, "requant": 6.0}, "per_level": {"conv1x1": 1.0,
                                                                    "requant": 0.5},
             "mult": {"int8": 1.0}}
    blocks = [{"kind": "conv1x1", "format": "int8", "levels": 3},
              {"kind": "requant", "format": "none", "levels": 1}]
    nets = [{"design": "a", "fmax_mhz": 80.0, "blocks": blocks, "generator_sha256": "g1"}]
    held = [{"design": "b", "fmax_mhz": 70.0, "blocks": blocks[:1], "generator_sha256": "g2"}]
    fitted = fit_fmax.fit_routing(model, nets, held)
    # one network: its measured period less its slowest block's delay (12 ns) is the derate
    assert fitted["routing_ns"] == pytest.approx(1000 / 80 - 12, abs=1e-4)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(fitted))
    back = fit_fmax.recorded_networks(path)
    assert [(n["design"], n["heldout"], n["generator_sha256"]) for n in back] == \
        [("a", False, "g1"), ("b", True, "g2")]
    again = fit_fmax.fit_routing(model, [n for n in back if not n["heldout"]],
                                 [n for n in back if n["heldout"]])
    assert again["routing_ns"] == fitted["routing_ns"] and again["networks"] == fitted["networks"]


def test_reuse_networks_without_blocks_on_record_is_refused_before_any_run(fit_fmax, tmp_path,
                                                                           capsys):
    """A model file whose networks were recorded without their blocks (fitted before they
    were) cannot give the derate its samples: one line, exit 2, nothing run or written."""
    import json

    old = tmp_path / "old.json"
    old.write_text(json.dumps({"networks": [{"design": "mid_small", "fmax_mhz": 102.75,
                                             "pred_mhz": 98.5, "heldout": False}]}))
    before = old.read_bytes()
    work = tmp_path / "work"
    assert fit_fmax.main(["--workdir", str(work), "--reuse-networks", "--out", str(old)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "records no blocks for mid_small" in err[0]
    assert fit_fmax.main(["--workdir", str(work), "--reuse-networks",
                          "--out", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    # blocks on record, but every network held out: nothing to fit the derate on
    held = tmp_path / "held.json"
    held.write_text(json.dumps({"networks": [{"design": "b", "fmax_mhz": 70.0, "heldout": True,
                                              "blocks": [{"kind": "conv1x1"}]}]}))
    assert fit_fmax.main(["--workdir", str(work), "--reuse-networks", "--out", str(held)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "every network on record is held out" in err[0]
    assert not work.exists() and old.read_bytes() == before


def test_the_routing_factor_grows_with_the_lut_share_when_the_networks_spread(fit_fmax):
    """Networks at 12 % and 70 % of the LUTs: the factor is a line in the share through their
    ratios (each network's measured period over its slowest block); networks at one share get
    the mean ratio, as before."""
    from dse.fmax import routing_factor

    model = {"base": {"conv1x1": 10.0}, "per_level": {"conv1x1": 0.0}, "mult": {}}
    blocks = [{"kind": "conv1x1", "format": "int8", "levels": 1}]
    nets = [{"design": "small", "fmax_mhz": 90.0, "blocks": blocks, "lut_share": 0.12},
            {"design": "full", "fmax_mhz": 60.0, "blocks": blocks, "lut_share": 0.70}]
    held = [{"design": "mid", "fmax_mhz": 75.0, "blocks": blocks, "lut_share": 0.40}]
    fitted = fit_fmax.fit_routing(model, nets, held, additive=False)
    r_small, r_full = 100 / 90, 100 / 60
    slope = (r_full - r_small) / (0.70 - 0.12)
    assert fitted["routing_per_lut_share"] == pytest.approx(slope, abs=1e-4)
    assert fitted["routing_ref_share"] == pytest.approx(0.41)
    for n, r in zip(fitted["networks"][:2], (r_small, r_full), strict=True):
        assert n["pred_mhz"] == pytest.approx(100 / r, abs=0.1)  # two points: on the line
    mid = fitted["networks"][2]
    assert mid["heldout"] and mid["pred_mhz"] == pytest.approx(
        100 / routing_factor(fitted, 0.40), abs=0.1)
    # shares too close together: the mean ratio, no share term
    close = [dict(n, lut_share=0.12 + 0.1 * i) for i, n in enumerate(nets)]
    flat = fit_fmax.fit_routing(model, close, additive=False)
    assert "routing_per_lut_share" not in flat
    assert flat["routing"] == pytest.approx((r_small + r_full) / 2 - 1, abs=1e-4)


def test_the_additive_derate_is_a_line_of_nanoseconds_in_the_share(fit_fmax):
    """The ECP5 form: each network's measured period less its slowest block's delay, as a line
    in the LUT share; a network whose slowest block is deeper gets the same nanoseconds, not a
    larger share of them; each fitted network's prediction with itself left out is recorded."""
    from dse.fmax import period_ns

    model = {"base": {"conv1x1": 10.0, "conv3x3": 14.0}, "per_level": {"conv1x1": 0.0,
             "conv3x3": 0.0}, "mult": {}}
    b1 = [{"kind": "conv1x1", "format": "int8", "levels": 1}]
    b3 = [*b1, {"kind": "conv3x3", "format": "int8", "levels": 4}]
    # excess over the slowest block: 1 ns at 10 %, 4 ns at 40 %, 7 ns at 70 %
    nets = [{"design": "a", "fmax_mhz": 1000 / 11, "blocks": b1, "lut_share": 0.10},
            {"design": "b", "fmax_mhz": 1000 / 14, "blocks": b1, "lut_share": 0.40},
            {"design": "c", "fmax_mhz": 1000 / 17, "blocks": b1, "lut_share": 0.70}]
    held = [{"design": "deep", "fmax_mhz": 1000 / 20, "blocks": b3, "lut_share": 0.55}]
    fitted = fit_fmax.fit_routing(model, nets, held)
    assert "routing" not in fitted
    assert fitted["routing_ns_per_lut_share"] == pytest.approx(10.0, abs=1e-3)
    assert fitted["routing_ref_share"] == pytest.approx(0.4)
    assert fitted["routing_ns"] == pytest.approx(4.0, abs=1e-3)
    deep = fitted["networks"][3]
    assert deep["heldout"] and deep["pred_mhz"] == pytest.approx(1000 / (14.0 + 5.5), abs=0.1)
    assert period_ns(14.0, fitted, lut_share=0.55) == pytest.approx(19.5, abs=1e-3)
    # left out, each of the three is predicted from the line through the other two: exact here
    for n in fitted["networks"][:3]:
        assert n["loo_pred_mhz"] == pytest.approx(n["fmax_mhz"], abs=0.1)
    assert "loo_pred_mhz" not in deep
    # a factor fitted to the same networks charges the deep block's logic for the wire
    factor = fit_fmax.fit_routing(model, nets, held, additive=False)
    assert factor["networks"][3]["pred_mhz"] < deep["pred_mhz"] - 5


def test_routing_only_refits_the_recorded_networks_without_placing(fit_fmax, tmp_path,
                                                                   capsys):
    """--routing-only --reuse-networks --heldout-design: the recorded networks refitted with the
    one named held out, the block coefficients kept, nothing placed; bad names are one line."""
    import json

    model = {"base": {"conv1x1": 10.0}, "per_level": {"conv1x1": 0.0}, "mult": {},
             "heldout": {"samples": 0, "mean_abs_rel_error": 0.0, "max_abs_rel_error": 0.0},
             "samples": [], "provenance": "test"}
    blocks = [{"kind": "conv1x1", "format": "int8", "levels": 1}]
    nets = [{"design": d, "fmax_mhz": f, "blocks": blocks, "lut_share": u}
            for d, f, u in (("small", 90.0, 0.12), ("mid", 75.0, 0.40), ("full", 60.0, 0.70))]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(fit_fmax.fit_routing(model, nets)))
    argv = ["--routing-only", "--reuse-networks", "--out", str(path), "--no-write"]
    assert fit_fmax.main([*argv, "--heldout-design", "mid"]) == 0
    out = capsys.readouterr().out
    assert "mid: 75.0 MHz measured" in out and "(held out, LUT share 0.4)" in out
    assert fit_fmax.main([*argv, "--heldout-design", "none"]) == 0
    assert "held out" not in capsys.readouterr().out
    assert fit_fmax.main([*argv, "--heldout-design", "nosuch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--heldout-design nosuch: no such network on record" in err[0]
    assert fit_fmax.main(["--routing-only", "--out", str(path), "--no-write"]) == 2
    assert "--routing-only refits the routing factor on networks" in capsys.readouterr().err


def test_refit_kinds_replaces_one_stage_kinds_terms_and_keeps_the_rest(fit_fmax):
    """A refit of the pools alone gives the pools' terms a whole fit gives (their columns are
    their own) and leaves every other coefficient and sample as it was; a kind with a format
    term is refitted with the format's term held, and refused where the model has none."""
    def sample(block, lanes, fmax, fmt="int8"):
        cfg = {"block": block, "format": fmt, "c_in": 16, "c_out": 16, "lanes": lanes,
               "pe": lanes, "h": 8, "w": 8}
        return {"config": cfg, "fmax_mhz": fmax, "delay_ns": 1000.0 / fmax}

    old = [sample("conv1x1", 1, 150.0), sample("conv1x1", 4, 120.0), sample("conv1x1", 8, 110.0),
           sample("flatten", 1, 200.0), sample("flatten", 8, 180.0),
           sample("maxpool", 1, 90.0), sample("maxpool", 8, 100.0), sample("maxpool", 16, 80.0)]
    model = fit_fmax.fit(old)
    new = [sample("maxpool", 1, 135.0), sample("maxpool", 8, 100.0), sample("maxpool", 16, 90.0)]
    whole = fit_fmax.fit(old[:5] + new)
    got = fit_fmax.refit_kinds(model, new, ["maxpool"])
    assert got["base"]["maxpool"] == pytest.approx(whole["base"]["maxpool"], abs=1e-3)
    assert got["base"]["maxpool"] != pytest.approx(model["base"]["maxpool"], abs=1e-2)
    for k in ("conv1x1", "flatten"):
        assert got["base"][k] == model["base"][k] and got["per_level"][k] == model["per_level"][k]
    assert got["mult"] == model["mult"]
    pools = [r for r in got["samples"] if r["config"].startswith("blockmaxpool_")]
    assert sorted(r["fmax_mhz"] for r in pools) == [90.0, 100.0, 135.0]
    assert [r for r in got["samples"] if not r["config"].startswith("blockmaxpool_")] == \
        [r for r in model["samples"] if not r["config"].startswith("blockmaxpool_")]
    # the held-out pool (the third, 16 lanes) predicted from the other two: the line through
    # their delays at their lanes' levels (1 lane: 1, 8 lanes: 4), at 16 lanes' 5
    held = [r for r in pools if r["heldout"]]
    assert len(held) == 1
    assert held[0]["pred_mhz"] == pytest.approx(
        1000.0 / (1000 / 135 + (1000 / 100 - 1000 / 135) * 4 / 3), abs=0.1)
    # a kind with a format term: its own terms refitted, the format's held
    conv = fit_fmax.refit_kinds(model, [sample("conv1x1", 1, 140.0), sample("conv1x1", 4, 125.0),
                                        sample("conv1x1", 8, 100.0)], ["conv1x1"])
    assert conv["mult"] == model["mult"] and conv["base"]["maxpool"] == model["base"]["maxpool"]
    assert conv["base"]["conv1x1"] + model["mult"]["int8"] + conv["per_level"]["conv1x1"] == \
        pytest.approx(1000 / 140.0, abs=0.3)
    with pytest.raises(ValueError, match="no term for int4"):
        fit_fmax.refit_kinds(model, [sample("conv1x1", 2, 130.0, "int4")], ["conv1x1"])
    with pytest.raises(ValueError, match="no new sample of avgpool"):
        fit_fmax.refit_kinds(model, new, ["maxpool", "avgpool"])
    # the width converter's only column is its own too: refitted alone as a whole fit does it
    wold = [sample("width", 1, 210.0), sample("width", 2, 180.0), sample("width", 4, 175.0)]
    wnew = [sample("width", 1, 230.0), sample("width", 2, 200.0), sample("width", 4, 190.0)]
    wmodel = fit_fmax.fit(old + wold)
    wgot = fit_fmax.refit_kinds(wmodel, wnew, ["width"])
    assert wgot["base"]["width"] == pytest.approx(fit_fmax.fit(old + wnew)["base"]["width"],
                                                  abs=1e-3)
    assert wgot["base"]["maxpool"] == wmodel["base"]["maxpool"]


def test_a_folded_window_fits_a_window_term_that_unfolded_ones_cannot(fit_fmax):
    """Unfolded, a window block's products and its window's bits grow together: no window term
    (``per_kbit``) is fitted. With kernels folded over their rows the window's bits and the
    adder tree part, and a refit of the dense window kind fits the term from them; the samples
    of the other kinds and the format terms are kept, and dse.fmax prices the term."""
    from dse.fmax import block_delay_ns

    def sample(lanes, fmax, kernel=3, kfold=1):
        cfg = {"block": "conv3x3", "format": "int8", "dense": True, "c_in": lanes,
               "c_out": 16, "lanes": lanes, "pe": 2, "h": 8, "w": 8, "stride": 1,
               **({"kernel": kernel, "kfold": kfold} if kfold > 1 else {})}
        return {"config": cfg, "fmax_mhz": fmax, "delay_ns": 1000.0 / fmax}

    plain = [sample(1, 130.0), sample(2, 120.0), sample(8, 100.0),
             {"config": {"block": "conv1x1", "format": "int8", "c_in": 16, "c_out": 16,
                         "lanes": 4, "pe": 4, "h": 8, "w": 8},
              "fmax_mhz": 125.0, "delay_ns": 8.0}]
    assert fit_fmax.kbit_kinds(plain) == []
    model = fit_fmax.fit(plain)
    assert "per_kbit" not in model
    # a 5x5 window of 4 lanes folded five times: 20 products (as the 2-lane 3x3's 18: the same
    # levels), 800 bits; 8 lanes: 40 products, 1,600 bits
    folded = [sample(1, 130.0), sample(2, 120.0), sample(8, 100.0),
              sample(4, 85.0, 5, 5), sample(8, 66.0, 5, 5), sample(3, 86.0, 7, 7)]
    assert fit_fmax.kbit_kinds(folded) == ["conv3x3_dense"]
    feats = fit_fmax.features(folded[3]["config"])
    assert feats["levels"] == fit_fmax.features(folded[1]["config"])["levels"] == 5
    assert feats["window_kbits"] == 0.8
    got = fit_fmax.refit_kinds(model, folded, ["conv3x3_dense"])
    assert got["per_kbit"]["conv3x3_dense"] > 1.0
    assert got["mult"] == model["mult"] and got["base"]["conv1x1"] == model["base"]["conv1x1"]
    assert sorted(r["fmax_mhz"] for r in got["samples"]) == [66.0, 85.0, 86.0, 100.0, 120.0,
                                                              125.0, 130.0]
    # the folded 5x5 is priced slower than the unfolded 2-lane 3x3 at the same levels
    assert block_delay_ns(feats, got) > block_delay_ns(
        fit_fmax.features(folded[1]["config"]), got) + 0.8
