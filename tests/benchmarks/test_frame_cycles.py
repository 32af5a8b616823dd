"""benchmarks/frame_cycles.py: bad inputs are refused in one line before any simulation; the
summary's sums, ratios and per-bottleneck split."""

import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def frame_cycles():
    return load_benchmark("frame_cycles")


def test_a_directory_that_is_not_a_build_is_refused(frame_cycles, tmp_path, capsys):
    out = tmp_path / "out"
    assert frame_cycles.main([str(tmp_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path} is not a `codesign build`")
    assert not out.exists()


@pytest.mark.parametrize("args, says", [(["--frames", "0"], "--frames must be at least 1"),
                                        (["--out", "{file}/sub"], "cannot write to --out")])
def test_bad_options_are_refused_before_the_simulation(frame_cycles, tmp_path, capsys, args,
                                                       says, monkeypatch):
    build = tmp_path / "build"
    build.mkdir()
    (build / "manifest.json").write_text("{}")
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(frame_cycles, "measure", lambda *a, **k: pytest.fail("simulated"))
    args = [a.replace("{file}", str(tmp_path / "file")) for a in args]
    assert frame_cycles.main([str(build), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]


def test_summary_sums_and_splits_by_bottleneck(frame_cycles):
    rows = [{"measured": 110, "predicted": 100, "bottleneck": "stem"},
            {"measured": 300, "predicted": 300, "bottleneck": "dw"},
            {"measured": 99, "predicted": 100, "bottleneck": "dw"}]
    s = frame_cycles.summary(rows)
    assert (s["frames"], s["measured"], s["predicted"]) == (3, 509, 500)
    assert s["ratio"] == pytest.approx(509 / 500)
    assert (s["ratio_min"], s["ratio_max"]) == (pytest.approx(0.99), pytest.approx(1.1))
    assert s["by_bottleneck"] == {"stem": {"frames": 1, "ratio": pytest.approx(1.1)},
                                  "dw": {"frames": 2, "ratio": pytest.approx(399 / 400)}}
