"""A build carries its own QGraph: `codesign sim` works on a QGraph-file build with the user's
frames (--inputs), a point whose formats the file does not hold is one line, and a modified
qgraph.json is caught."""

import json

import numpy as np
import pytest
from helpers import tiny_qgraph

from codesign.cli import main


@pytest.fixture
def built(tmp_path):
    g = tiny_qgraph(0)
    g.save(tmp_path / "tiny.json")
    out = tmp_path / "build"
    assert main(["build", "--model", str(tmp_path / "tiny.json"), "--out", str(out)]) == 0
    return tmp_path, out, g


def test_build_holds_its_qgraph(built):
    _, out, g = built
    m = json.loads((out / "manifest.json").read_text())
    assert m["qgraph"] == "qgraph.json"
    from models.qgraph import QGraph

    assert QGraph.load(out / "qgraph.json").fingerprint() == g.fingerprint() == m["qgraph_sha256"]


@pytest.mark.rtl
def test_sim_on_a_qgraph_build_with_user_frames(built, capsys):
    from cosim.runner import simulator_missing

    if simulator_missing("verilator"):
        pytest.skip("verilator missing")
    d, out, g = built
    c, h, w = g.input.in_shape
    rng = np.random.default_rng(1)
    x = rng.integers(-127, 128, size=(5, c, h, w))
    active = rng.random((5, h, w)) < 0.5
    np.savez(d / "frames.npz", x=x, active=active)
    assert main(["sim", "--build", str(out), "--inputs", str(d / "frames.npz"), "--frames",
                 "5", "--stall", "0.3"]) == 0
    s = json.loads((out / "sim_summary.json").read_text())
    assert s["mismatches"] == 0 and s["frames"] == 5
    capsys.readouterr()


def test_sim_without_data_or_with_bad_inputs_is_one_line(built, capsys):
    d, out, g = built
    assert main(["sim", "--build", str(out), "--frames", "2"]) == 2
    assert "give your frames with --inputs" in capsys.readouterr().err
    np.savez(d / "wrong.npz", x=np.zeros((2, 3, 4, 4), dtype=np.int64))
    assert main(["sim", "--build", str(out), "--inputs", str(d / "wrong.npz")]) == 2
    assert "the network takes [N, 2, 6, 5]" in capsys.readouterr().err
    np.savez(d / "float.npz", x=np.zeros((2, 2, 6, 5), dtype=np.float32))
    assert main(["sim", "--build", str(out), "--inputs", str(d / "float.npz")]) == 2
    assert "give integer inputs" in capsys.readouterr().err
    np.savez(d / "range.npz", x=np.full((2, 2, 6, 5), 300))
    assert main(["sim", "--build", str(out), "--inputs", str(d / "range.npz")]) == 2
    assert "must lie in" in capsys.readouterr().err


def test_point_formats_the_qgraph_file_lacks_are_one_line(built, capsys):
    d, _, g = built
    from contract.point import DesignPoint

    p = DesignPoint.default(g, model="tiny").to_dict()
    p["layers"][2]["format"] = "dybit4"
    del p["layers"][2]["datapath"]  # the format's own datapath
    (d / "p.json").write_text(json.dumps(p))
    assert main(["build", "--model", str(d / "tiny.json"), "--point", str(d / "p.json"),
                 "--out", str(d / "b2")]) == 2
    err = capsys.readouterr().err
    assert "layer dw: the point asks for dybit4 weights but" in err and "\n" not in err.strip()
    assert not (d / "b2").exists()


def test_modified_qgraph_json_is_caught(built, capsys):
    _, out, _ = built
    data = json.loads((out / "qgraph.json").read_text())
    data["nodes"][1]["S"] += 1
    (out / "qgraph.json").write_text(json.dumps(data))
    np.savez(out.parent / "f.npz", x=np.zeros((1, 2, 6, 5), dtype=np.int64))
    assert main(["sim", "--build", str(out), "--inputs", str(out.parent / "f.npz")]) == 2
    assert "modified after `codesign build`" in capsys.readouterr().err
