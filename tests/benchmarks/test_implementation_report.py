"""benchmarks/implementation_report.py: ``--append`` adds builds to a report whose earlier builds
are gone, keeping their rows and its note; a flow's build takes its DSE's II (loaded from its
path: benchmarks/ is not a package)."""

import json
from pathlib import Path

import pandas as pd
import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def report():
    return load_benchmark("implementation_report")


def _build(d: Path, *, fmax: float, ii_dense: int, preds: bool) -> Path:
    d.mkdir(parents=True)
    layer = {"name": "l0", "format": "int8", "lanes": 1, "pe": 1}
    if preds:
        layer.update(pred_lut=100, pred_dsp=2, pred_bram18=1)
    (d / "manifest.json").write_text(json.dumps(
        {"model": "toy", "ii_dense": ii_dense, "point": {"layers": [layer]}}))
    used = {r: {"used": n, "available": 1000} for r, n in
            (("lut", 120), ("ff", 80), ("dsp", 2), ("bram18", 1))}
    (d / "implementation.json").write_text(json.dumps({
        "device": "LFE5U-85F", "fmax_mhz": fmax, "clock_mhz": 100.0, "utilisation": used,
        "worst_paths": [{"from": "a", "to": "b", "logic_ns": 1.0, "routing_ns": 2.0}],
        "synth_cells": {"lut_total": 118}, "bitstream": {"bytes": 1234},
        "wall": {"synth_s": 1.5, "pnr_s": 2.5}, "router": "router2", "seed": 1}))
    return d


def test_append_keeps_earlier_rows_and_the_note(report, tmp_path):
    out = tmp_path / "reports"
    a = _build(tmp_path / "a", fmax=90.0, ii_dense=100, preds=False)
    assert report.main([f"first={a}", "--out", str(out), "--note", "What these builds are."]) == 0
    import shutil

    shutil.rmtree(a)  # the earlier build is gone
    run = tmp_path / "run"
    b = _build(run / "build", fmax=50.0, ii_dense=900, preds=True)
    (run / "point.json").write_text(json.dumps({"dse": {"ii_cycles": 600}}))
    assert report.main([f"second={b}", "--out", str(out), "--append"]) == 0
    df = pd.read_csv(out / "implementation.csv")
    assert list(df["design"]) == ["first", "second"]
    first, second = df.iloc[0], df.iloc[1]
    assert first["fmax_mhz"] == 90.0 and first["ii_cycles"] == 100
    # the flow's DSE II (at the measured activity), not the dense one
    assert second["ii_cycles"] == 600 and second["us_per_frame"] == 12.0
    md = (out / "implementation.md").read_text()
    assert "What these builds are." in md
    assert "| first | int8 | 100 | 90.0 |" in md and "| second | int8 | 600 | 50.0 |" in md
    # a build appended again replaces its own row
    impl = json.loads((b / "implementation.json").read_text())
    (b / "implementation.json").write_text(json.dumps(dict(impl, fmax_mhz=60.0)))
    assert report.main([f"second={b}", "--out", str(out), "--append"]) == 0
    df = pd.read_csv(out / "implementation.csv")
    assert list(df["design"]) == ["first", "second"] and df.iloc[1]["fmax_mhz"] == 60.0


def test_a_build_that_is_not_implemented_is_refused_before_writing(report, tmp_path, capsys):
    out = tmp_path / "reports"
    d = tmp_path / "b"
    d.mkdir()
    (d / "manifest.json").write_text("{}")
    assert report.main([f"x={d}", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "(no implementation.json)" in err[0]
    assert not out.exists()
    assert report.main([f"x={d}", "--out", str(out), "--append"]) == 2
