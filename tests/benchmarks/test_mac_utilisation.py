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
    run = _run_dir(tmp_path / "run", present)
    out = tmp_path / "out"
    assert mac_utilisation.main([str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {run} is not a simulated")
    missing = "build/sim_summary.json" if present else "build/qgraph.json"
    assert f"(no {missing})" in err[0]
    assert not out.exists()


def _run_dir(run, files=("build/qgraph.json", "point.json", "build/sim_summary.json",
                          "dse/workload.json", "dse/choices.csv", "dse/budget.json")):
    """A directory with ``files`` (empty JSON) under ``run``; by default every file a flow run
    must have."""
    for f in files:
        (run / f).parent.mkdir(parents=True, exist_ok=True)
        (run / f).write_text(json.dumps({}))
    return run


def _row(run, layer, util):
    return {"run": run, "layer": layer, "kernel": "3x3", "groups": 1, "format": "int8",
            "datapath": "dsp", "lanes": 1, "pe": 1, "kfold": 1, "macs": 900, "multipliers": 9,
            "ideal": 100, "utilisation": util, "least_multipliers": 9, "ceiling": util,
            "ii_measured": 100}


def test_keep_merges_an_earlier_csv_and_replaces_the_runs_given_again(mac_utilisation, tmp_path,
                                                                      monkeypatch):
    import pandas as pd

    runs = {name: _run_dir(tmp_path / name) for name in ("b", "c")}
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


@pytest.mark.parametrize("content, why", [(None, "cannot be read as a CSV"),
                                           ("", "cannot be read as a CSV"),
                                           ("layer,utilisation\nx,0.5\n", "has no 'run' column")])
def test_keep_of_a_bad_csv_is_refused_in_one_line(mac_utilisation, tmp_path, capsys, content,
                                                  why):
    run = _run_dir(tmp_path / "run")
    keep = tmp_path / "old.csv"
    if content is not None:
        keep.write_text(content)
    out = tmp_path / "out"
    assert mac_utilisation.main([str(run), "--out", str(out), "--keep", str(keep)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --keep {keep}") and why in err[0]
    assert not out.exists()


def test_the_ceiling_keeps_the_designs_estimated_clock(mac_utilisation):
    """A timed DSE keeps more multipliers when the design with fewer of them at the same II has
    a slower block (a 5x5 conv of 6 to 12 channels on XC7Z020: 900 multipliers summing 75
    products an accumulator at 13.0 ns, where 600 summing 150 need 14.8 ns): the fewest
    multipliers at the II count only designs at or under the design's period."""
    from contract.point import LayerChoice
    from dse import fmax
    from dse.cost import candidates, layer_cost
    from dse.workload import LayerWork

    layer = LayerWork(name="conv2", op="conv", in_shape=(6, 14, 14), out_shape=(12, 10, 10),
                      kernel=5, dense=True, active_in=196, active_out=100)
    model = fmax.fmax_model(family="zynq7")
    chosen = LayerChoice("int4", 3, 12, "lut")
    period = fmax.choice_delay_ns(layer, chosen, model)
    ii = layer_cost(layer, chosen).cycles
    free = mac_utilisation._least_multipliers(layer, "int4", ii, 1, 25)
    held = mac_utilisation._least_multipliers(layer, "int4", ii, 1, 25, clock=(model, period))
    assert free < held <= 3 * 12 * 25
    # the held count is a design as fast as the chosen one; the free count's are all slower
    by_count = {}
    for ch in candidates(layer, ["int4"], count=1 << 30):
        if layer_cost(layer, ch).cycles <= ii:
            m = mac_utilisation._multipliers(1, ch.lanes, ch.pe, ch.kfold, 25)
            by_count.setdefault(m, []).append(fmax.choice_delay_ns(layer, ch, model))
    assert min(by_count[held]) <= period + 1e-9
    assert min(by_count[free]) > period


def test_the_design_clock_is_read_only_from_a_run_that_counted_time(mac_utilisation, tmp_path):
    """A run's DSE counted time when its choices.csv has ``delay_ns``: the period is its slowest
    chosen layer's estimated delay in its family's model; a run at an assumed clock has none."""
    from contract.point import LayerChoice
    from dse import fmax
    from dse.workload import LayerWork

    wide = LayerWork(name="a", op="conv", in_shape=(6, 14, 14), out_shape=(16, 14, 14),
                     kernel=5, dense=True)
    narrow = LayerWork(name="b", op="conv", in_shape=(16, 14, 14), out_shape=(16, 14, 14),
                       dense=True)
    choice = {"a": {"format": "int4", "lanes": 6, "pe": 2, "datapath": "lut"},
              "b": {"format": "int8", "lanes": 1, "pe": 1}}
    run = tmp_path / "run"
    (run / "dse").mkdir(parents=True)
    (run / "dse" / "budget.json").write_text(json.dumps({"family": "zynq7"}))
    (run / "dse" / "choices.csv").write_text("layer,format,cycles\n")
    work = {"a": wide, "b": narrow}
    assert mac_utilisation._design_clock(run, work, choice) is None
    (run / "dse" / "choices.csv").write_text("layer,format,cycles,delay_ns\n")
    model, period = mac_utilisation._design_clock(run, work, choice)
    assert model == fmax.fmax_model(family="zynq7")
    delays = [fmax.choice_delay_ns(work[k], LayerChoice(c["format"], c["lanes"], c["pe"],
                                                        c.get("datapath", "")), model)
              for k, c in choice.items()]
    assert period == max(delays) and delays[0] != delays[1]
