"""benchmarks/standard_networks.py: a run that the DSE made other than by default (cycles at
the assumed clock, the fewest multipliers) says so in its directory and its report row, so a
merge finds its run again (loaded from its path: benchmarks/ is not a package)."""

import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def standard_networks():
    return load_benchmark("standard_networks")


def test_run_tag_names_what_the_dse_did(standard_networks):
    tag = standard_networks.run_tag
    assert tag() == "" and tag("estimate", "resources") == ""
    assert tag("assumed") == "-cycles"
    assert tag(least="multipliers") == "-fewest"
    assert tag("assumed", "multipliers") == "-cycles-fewest"
    assert tag("assumed", "multipliers", "int8") == "-int8-cycles-fewest"
    assert tag(formats="int8,int4") == "-int8-int4"


def test_report_rows_say_how_their_dse_ran(standard_networks, tmp_path):
    ok = {"result": "ok", "mismatches": 0, "frames": 5, "ii_pred": 100, "ii_sim": 100,
          "latency_pred": 300, "latency_sim": 310, "dsp": 1, "lut": 10, "bram18": 0}
    rows = [{"network": "a", "device": "XC7Z020", **ok},
            {"network": "b", "device": "XC7Z020", "dse_clock": "assumed", **ok},
            {"network": "c", "device": "XC7Z020", "dse_clock": "assumed",
             "dse_least": "multipliers", **ok},
            {"network": "d", "device": "XC7Z020", "dse_clock": "assumed", "formats": "int8",
             **ok}]
    standard_networks.write_report(rows, tmp_path, frames=5, stall=0.3)
    md = (tmp_path / "standard_networks.md").read_text()
    assert "| a | XC7Z020 | ok" in md
    assert "| b (cycles) | XC7Z020 | ok" in md
    assert "| c (cycles, fewest multipliers) | XC7Z020 | ok" in md
    assert "| d (int8, cycles) | XC7Z020 | ok" in md


def test_merge_keeps_the_reports_paragraphs(standard_networks, tmp_path):
    """``--merge`` rewrites the table from the CSVs and keeps the paragraphs the report held
    between its method paragraph and its table."""
    ok = {"result": "ok", "mismatches": 0, "frames": 5, "ii_pred": 100, "ii_sim": 100,
          "latency_pred": 300, "latency_sim": 310, "dsp": 1, "lut": 10, "bram18": 0}
    standard_networks.write_report([{"network": "a", "device": "XC7Z020", **ok}], tmp_path,
                                   frames=5, stall=0.3, notes=["Rows of stop 1.", "Row a: ok."])
    md = tmp_path / "standard_networks.md"
    assert standard_networks.report_notes(md) == ["Rows of stop 1.", "Row a: ok."]
    (tmp_path / "more.csv").write_text("network,device,result\nb,XCZU3EG,exit 2\n")
    assert standard_networks.main(["--merge", str(tmp_path / "standard_networks.csv"),
                                   str(tmp_path / "more.csv"), "--out", str(tmp_path),
                                   "--runs", str(tmp_path / "runs")]) == 0
    text = md.read_text()
    assert "Rows of stop 1.\n\nRow a: ok.\n\n| network |" in text
    assert "| a | XC7Z020 | ok" in text and "| b | XCZU3EG | exit 2 |" in text
    assert standard_networks.report_notes(tmp_path / "none.md") == []
