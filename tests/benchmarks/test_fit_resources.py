"""benchmarks/fit_resources.py: the calibration script, loaded from its path (benchmarks/ is not a
package)."""

import json
from pathlib import Path

import pytest
from helpers import load_benchmark

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fit_resources.py"


@pytest.fixture(scope="module")
def fit_resources():
    return load_benchmark("fit_resources")


def test_command_line_help(fit_resources, capsys):
    with pytest.raises(SystemExit) as exc:
        fit_resources.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--network BUILD_DIR" in out and "--cached-only" in out


def test_writes_the_dse_resource_model(fit_resources):
    assert fit_resources._MODEL_FILE == SCRIPT.parents[1] / "dse" / "resource_model.json"
    assert fit_resources._MODEL_FILE.is_file()


def test_fit_sample_counts_line_buffer_lutram(fit_resources, tmp_path):
    """A cached grid sample's LUTRAM is recounted from its ``stat.json``: RAM64M8 / RAM32M16 cells
    (the line buffers) are 8 LUT sites each."""
    cfg = {"block": "dwconv3x3", "format": "int8", "c_in": 32, "c_out": 32, "lanes": 1, "pe": 1,
           "h": 8, "w": 8, "stride": 1}
    d = tmp_path / fit_resources._key(cfg)
    d.mkdir()
    (d / "sample.json").write_text(json.dumps({"config": cfg, "lut": 1238, "lutram_luts": 0,
                                               "srl": 0, "ff": 634, "dsp": 9, "bram18": 0}))
    (d / "stat.json").write_text(json.dumps({"design": {"num_cells_by_type": {
        "RAM64M8": 60, "RAM32M16": 4, "RAM32M": 1, "LUT6": 3}}}))
    assert fit_resources.synth_sample(cfg, tmp_path)["lutram_luts"] == 60 * 8 + 4 * 8 + 4


def test_ecp5_family_writes_its_own_model(fit_resources):
    assert fit_resources._FAMILY_FILE["ecp5"] == SCRIPT.parents[1] / "dse" / \
        "resource_model_ecp5.json"
    model = json.loads(fit_resources._FAMILY_FILE["ecp5"].read_text())
    assert "synth_ecp5" in model["provenance"] and model["fit"]["samples"]
    assert all(s["family"] == "ecp5" for s in model["fit"]["samples"])


def test_sweep_runs_the_same_on_one_and_two_dask_workers(fit_resources):
    """The calibration jobs on a real local Dask cluster: results in the order of the items,
    identical on 1 and 2 workers; a job that raises is reported, not fatal."""
    import math

    from _sweep import run_jobs

    items = [5, 10, 20, -1]
    one, _ = run_jobs(math.factorial, items, workers=1)
    two, _ = run_jobs(math.factorial, items, workers=2)
    assert one[:3] == two[:3] == [120, 3628800, math.factorial(20)]
    assert "ValueError" in one[3]["error"] and "ValueError" in two[3]["error"]


def test_a_committed_models_samples_seed_the_cache_only_where_the_verilog_is_unchanged(
        fit_resources, tmp_path):
    """A fresh checkout refits from the samples the committed model holds: a seeded sample
    whose digest is today's Verilog's is reused as it is; one of another family or without a
    digest is not seeded, and an existing cache entry is not overwritten."""
    from amaranth.back import verilog

    cfg = {"block": "width", "format": "int8", "c_in": 16, "c_out": 16, "lanes": 1, "pe": 2,
           "h": 8, "w": 8}
    text = verilog.convert(fit_resources._component(cfg), name="top", emit_src=False)
    digest = fit_resources._digest(text, "xcup")
    other = dict(cfg, pe=8)
    model = {"fit": {"samples": [
        {"config": cfg, "family": "xcup", "digest": digest, "lut": 77, "lutram_luts": 0,
         "srl": 0, "ff": 33, "dsp": 0, "bram18": 0},
        {"config": other, "family": "ecp5", "digest": digest, "lut": 1},
        {"config": dict(cfg, pe=4), "family": "xcup", "lut": 1}]}}
    assert fit_resources.seed_cache(tmp_path, model, "xcup") == 1
    assert not (tmp_path / fit_resources._key(other)).exists()
    s = fit_resources.synth_sample(cfg, tmp_path)
    assert s["cached"] and s["lut"] == 77 and s["ff"] == 33
    # a second seeding leaves what is there
    model["fit"]["samples"][0]["lut"] = 5
    assert fit_resources.seed_cache(tmp_path, model, "xcup") == 0
    assert fit_resources.synth_sample(cfg, tmp_path)["lut"] == 77


def test_the_kernel_grid_builds_5x5_and_7x7_windows(fit_resources):
    """The kernel probes are window convs of their kernel, priced as such (the fit's layer)."""
    cfgs = fit_resources.kernel_grid()
    assert {c["kernel"] for c in cfgs} == {5, 7}
    assert {c.get("datapath", "") for c in cfgs} >= {"", "dsp2", "lut"}
    for cfg in cfgs:
        comp = fit_resources._component(cfg)
        assert comp.kernel == (cfg["kernel"], cfg["kernel"])
        assert comp.kfold == cfg.get("kfold", 1)
        assert fit_resources._layer(cfg).kernel == cfg["kernel"]
    assert fit_resources.kernel_grid(quick=True) == []
