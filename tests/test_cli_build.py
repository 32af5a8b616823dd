import json

import pytest
from test_point import tiny_qgraph  # tests/hw is on pytest's pythonpath

from codesign.cli import main
from cosim.manifest import load_manifest


@pytest.fixture
def qgraph_file(tmp_path):
    path = tmp_path / "tiny.json"
    tiny_qgraph(0).save(path)
    return path


def test_build_default_point_writes_verilog_and_manifest(qgraph_file, tmp_path, capsys):
    out = tmp_path / "build"
    assert main(["build", "--model", str(qgraph_file), "--point", "default", "--out",
                 str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["top"] == "tiny_top"
    m = json.loads((out / "manifest.json").read_text())
    assert m["top"] == "tiny_top" and m["verilog"] == "verilog/tiny_top.v"
    text = (out / m["verilog"]).read_text()
    assert "module tiny_top" in text and "i__payload" in text and "o__valid" in text
    inp, outp = m["ports"]["input"], m["ports"]["output"]
    assert (inp["channels"], inp["height"], inp["width"]) == (2, 6, 5)
    assert [f["name"] for f in inp["fields"]] == ["y", "x", "data", "eof"]
    assert inp["payload_width"] == 3 + 3 + inp["lanes"] * 8 + 1
    assert outp["channels"] == 3 and outp["fields"][2]["width"] == 32
    assert [layer["name"] for layer in m["layers"]] == ["stem", "pw1", "dw", "pw2", "fc"]
    assert m["skip_fifos"] and m["skip_fifos"][0]["to"] == "add"
    stages = {s["name"]: s["cycles"] for s in m["stages_dense"]}
    assert set(stages) == {"stem", "pw1", "dw", "pw2", "add", "gap", "fc"}
    assert m["ii_dense"] == max(stages.values()) > 0
    assert not (out / "resources.json").exists()
    # cosim reads it back
    man = load_manifest(out)
    assert man.input.lanes == inp["lanes"] and man.output.channels == 3


def test_build_with_point_file(qgraph_file, tmp_path):
    from hw.point import DesignPoint
    from models.qgraph import QGraph

    p = DesignPoint.default(QGraph.load(qgraph_file), model="tiny").to_dict()
    p["layers"][1].update(lanes=1, pe=2, pred_cycles=99)
    (tmp_path / "p.json").write_text(json.dumps(p))
    out = tmp_path / "b"
    assert main(["build", "--model", str(qgraph_file), "--point", str(tmp_path / "p.json"),
                 "--out", str(out)]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["layers"][1] == {"name": "pw1", "op": "conv", "kind": "conv1x1", "format": "int8",
                              "lanes": 1, "pe": 2, "pred_cycles": 99}


def test_build_bad_point_is_one_line_error(qgraph_file, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": "tiny", "layers": [
        {"name": "stem", "format": "int8", "lanes": 3, "pe": 4}]}))
    code = main(["build", "--model", str(qgraph_file), "--point", str(bad), "--out",
                 str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("error: ")
    assert "stem" in err
    assert main(["build", "--model", str(tmp_path / "nope.json"), "--out",
                 str(tmp_path / "o")]) == 2


@pytest.mark.slow
def test_build_synth_writes_resources(qgraph_file, tmp_path):
    out = tmp_path / "s"
    assert main(["build", "--model", str(qgraph_file), "--out", str(out), "--synth"]) == 0
    res = json.loads((out / "resources.json").read_text())
    assert res["top"] == "tiny_top"
    assert res["dsp"] > 0 and res["lut"] > 0 and res["ff"] > 0
