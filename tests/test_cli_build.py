import json

import pytest
from helpers import synth_small_build, tiny_qgraph

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
    from hw.build import qgraph_fingerprint
    from models.qgraph import QGraph

    assert m["qgraph_sha256"] == qgraph_fingerprint(QGraph.load(qgraph_file))
    assert qgraph_fingerprint(tiny_qgraph(1)) != m["qgraph_sha256"]
    # a checker reuses the build only for the same network, point and generator code
    from hw.build import build_is_current, generator_digest

    q = QGraph.load(qgraph_file)
    assert m["generator_sha256"] == generator_digest()
    assert build_is_current(out, q, m["point"])
    assert not build_is_current(out, tiny_qgraph(1), m["point"])
    assert not build_is_current(out, q, {**m["point"], "clock_mhz": -1})
    (out / "manifest.json").write_text(json.dumps({**m, "generator_sha256": "0" * 64}))
    assert not build_is_current(out, q, m["point"])
    assert not build_is_current(tmp_path / "nothing", q, m["point"])
    (out / "manifest.json").write_text(json.dumps(m))
    # cosim reads it back
    man = load_manifest(out)
    assert man.input.lanes == inp["lanes"] and man.output.channels == 3


def test_build_with_point_file(qgraph_file, tmp_path):
    from contract.point import DesignPoint
    from models.qgraph import QGraph

    p = DesignPoint.default(QGraph.load(qgraph_file), model="tiny").to_dict()
    p["layers"][1].update(lanes=1, pe=2, pred_cycles=99)
    (tmp_path / "p.json").write_text(json.dumps(p))
    out = tmp_path / "b"
    assert main(["build", "--model", str(qgraph_file), "--point", str(tmp_path / "p.json"),
                 "--out", str(out)]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["layers"][1] == {"name": "pw1", "op": "conv", "kind": "conv1x1", "format": "int8",
                              "lanes": 1, "pe": 2, "datapath": "dsp", "kfold": 1,
                              "pred_cycles": 99}


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
def test_build_synth_writes_resources(tmp_path):
    out = synth_small_build(tmp_path, "XC7Z020")
    res = json.loads((out / "resources.json").read_text())
    assert res["top"] == "small_top" and res["family"] == "xc7"
    assert res["dsp"] > 0 and res["lut"] > 0 and res["ff"] > 0
    assert set(res["cells"]) & {"DSP48E1"} and not set(res["cells"]) & {"DSP48E2"}
    # the clock estimate of the 7-series part: a named worst path, labelled as an estimate
    t = res["timing"]
    assert t["estimate"] and "no placement" in t["basis"] and t["unmodelled"] == {}
    assert 20 < t["fmax_mhz"] <= t["logic_only"]["fmax_mhz"] and t["endpoints"] > 0
    assert t["from"] and t["to"] and t["path"].count("->") == t["levels"] + 1


_TB = """`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 1;
  always #5 clk = ~clk;
  reg [{iw}-1:0] mem [0:{n}-1];
  wire i_ready, o_valid; wire [{ow}-1:0] o_payload;
  integer k = 0, cyc = 0;
  wire i_valid = (k < {n}) && !rst;
  wire [{iw}-1:0] i_payload = mem[k];
  {top} dut(.clk(clk), .rst(rst), .i__valid(i_valid), .i__ready(i_ready),
            .i__payload(i_payload), .o__valid(o_valid), .o__ready(1'b1),
            .o__payload(o_payload));
  initial begin
    $readmemh("in.hex", mem);
    repeat (3) @(posedge clk);
    rst <= 0;
  end
  always @(posedge clk) begin
    cyc <= cyc + 1;
    if (!rst && i_valid && i_ready) k <= k + 1;
    if (!rst && o_valid) $display("%h", o_payload);
    if (cyc > 20000) $finish;
  end
endmodule
"""


@pytest.mark.rtl
def test_built_verilog_runs_bit_exact_in_icarus(qgraph_file, tmp_path):
    """The emitted Verilog, not just the Amaranth model, computes the golden output (Icarus)."""
    import random
    import shutil
    import subprocess

    import torch

    from models.qgraph import QGraph

    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        pytest.skip("iverilog not installed")
    out = tmp_path / "b"
    assert main(["build", "--model", str(qgraph_file), "--out", str(out)]) == 0
    man = load_manifest(out)
    g = QGraph.load(qgraph_file)
    rng = random.Random(0)
    sites = sorted(rng.sample([(y, x) for y in range(6) for x in range(5)], 17))
    feats = [[rng.randint(-127, 127) for _ in range(2)] for _ in sites]
    beats = man.input.frame_beats(sites, feats) + man.input.frame_beats([], [])
    (tmp_path / "in.hex").write_text("".join(f"{w:x}\n" for w in beats))
    (tmp_path / "tb.v").write_text(_TB.format(iw=man.input.payload_width, n=len(beats),
                                              ow=man.output.payload_width, top=man.top))
    subprocess.run(["iverilog", "-g2012", "-o", "sim", "tb.v", str(man.verilog)],
                   cwd=tmp_path, check=True, capture_output=True)
    run = subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, check=True, capture_output=True,
                         text=True)
    got = [man.output.unpack(int(line, 16)) for line in run.stdout.split()]
    _, logits = g.run_frame(torch.tensor(sites), torch.tensor(feats))
    want_empty = g.output.bias.tolist()  # empty frame: zero pool, logits = bias
    assert [(b.y, b.x, list(b.data), b.eof) for b in got] == [
        (0, 0, logits[0].tolist(), 0), (0, 0, [0, 0, 0], 1),
        (0, 0, want_empty, 0), (0, 0, [0, 0, 0], 1),
    ]
