"""benchmarks/mac_utilisation.py: a directory that is not a simulated flow run is refused before
anything is written (loaded from its path: benchmarks/ is not a package)."""

import json

import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def mac_utilisation():
    return load_benchmark("mac_utilisation")


@pytest.mark.parametrize("present", [(), ("build/qgraph.json", "point.json")])
def test_a_run_without_its_simulation_is_refused_in_one_line(mac_utilisation, tmp_path, capsys,
                                                             present):
    run = tmp_path / "run"
    for f in present:
        (run / f).parent.mkdir(parents=True, exist_ok=True)
        (run / f).write_text(json.dumps({}))
    out = tmp_path / "out"
    assert mac_utilisation.main([str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {run} is not a simulated")
    missing = "build/sim_summary.json" if present else "build/qgraph.json"
    assert f"(no {missing})" in err[0]
    assert not out.exists()


def _row(run, layer, util):
    return {"run": run, "layer": layer, "kernel": "3x3", "groups": 1, "format": "int8",
            "datapath": "dsp", "lanes": 1, "pe": 1, "kfold": 1, "macs": 900, "multipliers": 9,
            "ideal": 100, "utilisation": util, "least_multipliers": 9, "ceiling": util,
            "ii_measured": 100}


def test_keep_merges_an_earlier_csv_and_replaces_the_runs_given_again(mac_utilisation, tmp_path,
                                                                      monkeypatch):
    import pandas as pd

    runs = {}
    for name in ("b", "c"):
        run = runs[name] = tmp_path / name
        for f in ("build/qgraph.json", "point.json", "build/sim_summary.json",
                  "dse/workload.json"):
            (run / f).parent.mkdir(parents=True, exist_ok=True)
            (run / f).write_text(json.dumps({}))
    fresh = {"b": [_row("b", "x", 0.5)], "c": [_row("c", "y", 0.25)]}
    monkeypatch.setattr(mac_utilisation, "layer_rows", lambda run: fresh[run.name])
    keep = tmp_path / "old.csv"
    pd.DataFrame([_row("a", "p", 1.0), _row("b", "q", 0.75)]).to_csv(keep, index=False)
    out = tmp_path / "out"
    assert mac_utilisation.main([str(runs["b"]), str(runs["c"]), "--out", str(out),
                                 "--keep", str(keep)]) == 0
    df = pd.read_csv(out / "mac_utilisation.csv")
    # run a kept, run b's old row replaced by its new one in b's place, run c appended
    assert list(zip(df["run"], df["layer"], df["utilisation"], strict=True)) == \
        [("a", "p", 1.0), ("b", "x", 0.5), ("c", "y", 0.25)]
    md = (out / "mac_utilisation.md").read_text()
    assert md.index("## a ") < md.index("## b ") < md.index("## c ")
    assert "| q |" not in md


def test_keep_of_a_missing_csv_is_refused_in_one_line(mac_utilisation, tmp_path, capsys):
    run = tmp_path / "run"
    for f in ("build/qgraph.json", "point.json", "build/sim_summary.json", "dse/workload.json"):
        (run / f).parent.mkdir(parents=True, exist_ok=True)
        (run / f).write_text(json.dumps({}))
    out = tmp_path / "out"
    assert mac_utilisation.main([str(run), "--out", str(out),
                                 "--keep", str(tmp_path / "none.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --keep") and "is not a file" in err[0]
    assert not out.exists()
