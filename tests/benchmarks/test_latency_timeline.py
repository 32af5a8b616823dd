"""benchmarks/latency_timeline.py: bad inputs are refused in one line before any simulation, and
a layer's output stream is found by the names hw.compose gives its instances."""

import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def timeline():
    return load_benchmark("latency_timeline")


@pytest.mark.parametrize("args, says", [
    ([], "is not a `codesign build` directory"),
    (["--frame", "-1"], "--frame must be 0 or more"),
    (["--out", "{file}/sub/t.csv"], "cannot write"),
])
def test_bad_inputs_are_refused_before_the_simulation(timeline, tmp_path, capsys, monkeypatch,
                                                      args, says):
    build = tmp_path / "build"
    build.mkdir()
    if "is not" not in says:
        (build / "manifest.json").write_text("{}")
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(timeline, "timeline", lambda *a, **k: pytest.fail("simulated"))
    args = [a.replace("{file}", str(tmp_path / "file")) for a in args]
    assert timeline.main(["--build", str(build), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and says in err[0]


def test_a_layer_s_stream_is_its_requantizer_s_output_else_its_block_s(timeline):
    text = ("module \\top (clk);\n"
            "  \\top.stem_conv  stem_conv (\n"
            "  \\top.stem_requant  stem_requant (\n"
            "  \\top.fc_conv  fc_conv (\n"
            "  \\top.stem_conv.x_conv  x_conv (\n")
    assert timeline.stage_probe(text, "stem") == ("stem_requant.o__valid",
                                                  "stem_requant.o__ready")
    assert timeline.stage_probe(text, "fc") == ("fc_conv.o__valid", "fc_conv.o__ready")
    assert timeline.stage_probe(text, "x") is None  # an instance inside a block is not a layer
    assert timeline.stage_probe(text, "pw") is None
