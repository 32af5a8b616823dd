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
