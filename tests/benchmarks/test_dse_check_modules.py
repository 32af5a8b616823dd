"""benchmarks/dse_check.py --modules: the price against Yosys module by module, on a real
`codesign build --synth` of a small network for a 7-series part."""

import json

import pytest
from helpers import load_benchmark, synth_small_build


@pytest.mark.slow
def test_every_module_of_a_synthesised_build_is_attributed_once(tmp_path):
    out = synth_small_build(tmp_path, "XC7Z020")
    rows = load_benchmark("dse_check").module_rows(out)
    got = json.loads((out / "resources.json").read_text())
    # the modules' cells add up to the whole netlist's, each counted once
    for r, key in (("lut", "lut_total"), ("ff", "ff"), ("dsp", "dsp"), ("bram18", "bram18")):
        assert sum(row[f"{r}_yosys"] for row in rows) == got[key], r
    blocks = [row for row in rows if row["part"] == "block"]
    assert blocks and all(row["modules"] >= 1 for row in blocks)
    # a conv's block, its requantizer and skid buffer (the classifier head has no requantizer)
    assert sum(row["modules"] == 3 for row in blocks) == len(blocks) - 1
    assert all(row["lut_priced"] > 0 for row in blocks)
    assert rows[-1]["part"] == "unattributed"
