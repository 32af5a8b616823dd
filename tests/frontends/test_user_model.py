"""A user's own PyTorch file through the command line: import, DSE, build and co-simulation, and
one-line errors for bad model and data inputs."""

import json
import re
import textwrap

import numpy as np
import pytest

from codesign.cli import main

MODEL = textwrap.dedent("""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.pool = nn.MaxPool2d(2)
            self.c2 = nn.Conv2d(4, 8, 1)
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            x = self.pool(torch.relu(self.bn(self.c1(x))))
            x = torch.relu(self.c2(x))
            return self.fc(x.mean((2, 3)))

    def build():
        torch.manual_seed(0)
        return Net().eval()

    def not_a_module():
        return 3

    def broken():
        raise RuntimeError("no weights")

    class BatchView(Net):
        def forward(self, x):
            x = self.pool(torch.relu(self.bn(self.c1(x))))
            return self.fc(torch.relu(self.c2(x)).view(-1, 8))  # mixes the batch into features

    def batch_view():
        return BatchView().eval()

    class TraceTime(Net):
        # Python state torch.fx fixes at trace time: traced with a ReLU the later calls skip
        # (the graph would be built without a word)
        calls = 0

        def forward(self, x):
            type(self).calls += 1
            x = self.pool(torch.relu(self.bn(self.c1(x))))
            y = self.c2(x)
            x = torch.relu(y) if type(self).calls == 1 else y   # traced with the ReLU
            return self.fc(x.mean((2, 3)))

    def trace_time():
        torch.manual_seed(0)
        return TraceTime().eval()

    def image_mlp():
        # an MLP over the 1-channel image: the flatten is the first stage, at the input's lanes
        torch.manual_seed(1)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 3)).eval()

    class Acts(nn.Module):
        # the activations of MobileNetV3, YOLO and EfficientNet heads, and a sigmoid output
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 8, 3, padding=1)
            self.bn = nn.BatchNorm2d(8)
            self.act = nn.Hardswish(inplace=True)
            self.c2 = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.c3 = nn.Conv2d(8, 16, 1)
            self.fc = nn.Linear(16, 3)

        def forward(self, x):
            x = self.act(self.bn(self.c1(x)))
            x = torch.nn.functional.max_pool2d(
                torch.nn.functional.leaky_relu(self.c2(x), 0.1), 2)
            x = torch.nn.functional.silu(self.c3(x))
            return torch.sigmoid(self.fc(torch.amax(x, (2, 3))))   # a global max pool

    def acts():
        torch.manual_seed(2)
        return Acts().eval()

    class Decoder(nn.Module):
        # a U-Net-style step: down, up by 2 (nearest), concatenated with the skip
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 8, 3, padding=1)
            self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1)
            self.mid = nn.Conv2d(16, 16, 3, padding=1)
            self.up = nn.Upsample(scale_factor=2)
            self.c2 = nn.Conv2d(24, 8, 3, padding=1)
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            skip = torch.relu(self.c1(x))
            y = torch.relu(self.mid(torch.relu(self.down(skip))))
            y = torch.relu(self.c2(torch.cat([skip, self.up(y)], 1)))
            return self.fc(y.mean((2, 3)))

    def decoder():
        torch.manual_seed(3)
        return Decoder().eval()
""")


@pytest.fixture
def user_files(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))
    (tmp_path / "net.py").write_text(MODEL)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", x=rng.random((16, 1, 8, 8), dtype=np.float32),
             y=rng.integers(0, 3, 16))
    return tmp_path


def test_import_then_dse_build_and_rtl_sim(user_files, capsys):
    d = user_files
    ref, calib = f"{d}/net.py:build", str(d / "calib.npz")
    assert main(["dse", "--model", ref, "--calib", calib, "--device", "XC7Z020", "--points", "2",
                 "--out", str(d / "dse")]) == 0
    point = json.loads((d / "dse" / "point_0.json").read_text())
    assert [layer["name"] for layer in point["layers"]] == ["c1", "c2", "fc"]
    ckpts = list((d / "cache" / "imports").glob("*/model.pt"))
    assert len(ckpts) == 1
    metrics = json.loads((ckpts[0].parent / "metrics.json").read_text())
    assert metrics["labelled"] and metrics["inputs"] == 16 and metrics["test_n"] == 8
    # the checkpoint stands for the model in every later command
    out = d / "build"
    assert main(["build", "--model", str(ckpts[0]), "--point", str(d / "dse" / "point_0.json"),
                 "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == str(ckpts[0])
    assert [layer["format"] for layer in manifest["layers"]] == \
        [layer["format"] for layer in point["layers"]]
    capsys.readouterr()


@pytest.mark.rtl
def test_user_model_co_simulates_bit_exact(user_files, capsys):
    from cosim.runner import simulator_missing

    if simulator_missing("verilator"):
        pytest.skip("verilator missing")
    d = user_files
    out = d / "build"
    assert main(["build", "--model", f"{d}/net.py:build", "--calib", str(d / "calib.npz"),
                 "--out", str(out)]) == 0
    assert main(["sim", "--build", str(out), "--frames", "6", "--stall", "0.3"]) == 0
    summary = json.loads((out / "sim_summary.json").read_text())
    assert summary["mismatches"] == 0 and summary["frames"] >= 6
    capsys.readouterr()


@pytest.mark.rtl
def test_a_model_with_table_activations_explores_builds_and_co_simulates(user_files, capsys):
    """Hardswish, LeakyReLU after a depthwise conv, SiLU after a 1x1, a global max pool and a
    sigmoid output (dropped): through the CLI from the imported checkpoint (its QNet holds the
    activations' functions), bit-exact in Verilator under stalls 0.3 and 0.7, and at stall 0
    the simulated interval within 10 % of the DSE's II."""
    from cosim.runner import simulator_missing

    if simulator_missing("verilator"):
        pytest.skip("verilator missing")
    d = user_files
    ref, calib = f"{d}/net.py:acts", str(d / "calib.npz")
    assert main(["dse", "--model", ref, "--calib", calib, "--device", "XC7Z020", "--points", "1",
                 "--out", str(d / "dse")]) == 0
    point = json.loads((d / "dse" / "point_0.json").read_text())
    ckpt, = (d / "cache" / "imports").glob("*/model.pt")
    out = d / "build"
    assert main(["build", "--model", str(ckpt), "--point", str(d / "dse" / "point_0.json"),
                 "--out", str(out)]) == 0
    qgraph = json.loads((out / "qgraph.json").read_text())
    assert [n["op"] for n in qgraph["nodes"]].count("act") == 3
    assert [n["op"] for n in qgraph["nodes"]][-2:] == ["gmp", "linear"]
    for stall in ("0.3", "0.7"):
        assert main(["sim", "--build", str(out), "--frames", "6", "--stall", stall]) == 0
        summary = json.loads((out / "sim_summary.json").read_text())
        assert summary["mismatches"] == 0 and summary["frames"] >= 6
    assert main(["sim", "--build", str(out), "--frames", "4", "--stall", "0"]) == 0
    summary = json.loads((out / "sim_summary.json").read_text())
    assert summary["mismatches"] == 0
    ii = point["dse"]["ii_cycles"]
    assert abs(summary["interval_cycles"]["mean"] - ii) <= 0.1 * ii
    capsys.readouterr()


@pytest.mark.slow
def test_a_decoder_with_an_upsample_explores_builds_and_co_simulates(user_files, capsys):
    """Upsample by 2 and a concatenation with the skip (a U-Net step) through the CLI: bit-exact
    in Verilator at stall 0.7, and at stall 0 the simulated interval within 10 % of the II."""
    from cosim.runner import simulator_missing

    if simulator_missing("verilator"):
        pytest.skip("verilator missing")
    d = user_files
    ref, calib = f"{d}/net.py:decoder", str(d / "calib.npz")
    assert main(["dse", "--model", ref, "--calib", calib, "--device", "XC7Z020", "--points", "1",
                 "--out", str(d / "dse")]) == 0
    point = json.loads((d / "dse" / "point_0.json").read_text())
    out = d / "build"
    assert main(["build", "--model", ref, "--calib", calib, "--point",
                 str(d / "dse" / "point_0.json"), "--out", str(out)]) == 0
    for stall in ("0.7", "0"):
        assert main(["sim", "--build", str(out), "--frames", "4", "--stall", stall]) == 0
        summary = json.loads((out / "sim_summary.json").read_text())
        assert summary["mismatches"] == 0
    ii = point["dse"]["ii_cycles"]
    assert abs(summary["interval_cycles"]["mean"] - ii) <= 0.1 * ii
    capsys.readouterr()


@pytest.mark.parametrize("model,calib,match", [
    ("{d}/missing.py:build", "{d}/calib.npz", "missing.py does not exist"),
    ("{d}/net.py:nothere", "{d}/calib.npz", "has no callable 'nothere'"),
    ("{d}/net.py:not_a_module", "{d}/calib.npz", "returned int, not a torch.nn.Module"),
    ("{d}/net.py:broken", "{d}/calib.npz", r"broken\(\) failed: RuntimeError: no weights"),
    ("{d}/net.py:build", None, "give its calibration inputs with --calib"),
    ("{d}/net.py:build", "{d}/nothere.npz", "nothere.npz does not exist"),
    ("{d}/net.py:build", "{d}/bad.npz", "is unreadable"),
    ("{d}/net.py:build", "{d}/noxs.npz", "no array 'x'"),
    ("{d}/net.py:build", "{d}/flat.npy", r"fails on the calibration inputs of shape \[4, 64\]"),
    ("{d}/net.py:build", "{d}/flat3.npy", r"\[N, C, H, W\] \(maps\) or \[N, F\]"),
    ("digits", "{d}/calib.npz", "--calib is for a file.py:factory or .onnx model"),
    # labels that are not class indices of the model (its 3 outputs); they were taken, and
    # every accuracy figure computed against them (string labels: a TypeError traceback)
    ("{d}/net.py:build", "{d}/ystr.npz", "labels y must be class indices .* str"),
    ("{d}/net.py:build", "{d}/yneg.npz", r"labels y must be class indices .* \[-1, "),
    ("{d}/net.py:build", "{d}/yhalf.npz", r"labels y must be class indices .* \[0.5, "),
    ("{d}/net.py:build", "{d}/ybig.npz", r"label 3 is not a class of .*net.py:build, which has 3 "
                                         r"outputs \(labels are class indices 0..2\)"),
])
def test_bad_model_inputs_are_one_line_exit_2_nothing_written(user_files, capsys, model, calib,
                                                               match):
    d = user_files
    (d / "bad.npz").write_bytes(b"not a zip")
    np.savez(d / "noxs.npz", z=np.zeros(3))
    np.save(d / "flat.npy", np.zeros((4, 64), dtype=np.float32))
    np.save(d / "flat3.npy", np.zeros((4, 8, 8), dtype=np.float32))
    x = np.zeros((4, 1, 8, 8), dtype=np.float32)
    np.savez(d / "ystr.npz", x=x, y=np.array(["cat", "dog", "cat", "dog"]))
    np.savez(d / "yneg.npz", x=x, y=np.array([-1, 0, 1, 2]))
    np.savez(d / "yhalf.npz", x=x, y=np.array([0.5, 1.0, 1.0, 2.0]))
    np.savez(d / "ybig.npz", x=x, y=np.array([0, 1, 2, 3]))
    argv = ["dse", "--model", model.format(d=d), "--device", "XC7Z020", "--out", str(d / "o")]
    if calib:
        argv += ["--calib", calib.format(d=d)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert re.search(match, err), err
    assert not (d / "o").exists()


def test_module_failing_on_the_inputs_is_one_line(user_files, capsys):
    d = user_files
    np.savez(d / "wide.npz", x=np.zeros((4, 3, 8, 8), dtype=np.float32))
    assert main(["dse", "--model", f"{d}/net.py:build", "--calib", str(d / "wide.npz"),
                 "--device", "XC7Z020", "--out", str(d / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "fails on the calibration inputs of shape [4, 3, 8, 8]" in err and "\n" not in err


def test_a_view_that_mixes_the_batch_is_one_line(user_files, capsys):
    """x.view(-1, 8) of an 8 x 4 x 4 map runs in float on 16 inputs, giving 256 rows:
    refused by name (it failed later in the quantized graph's calibration, with a traceback)."""
    d = user_files
    assert main(["dse", "--model", f"{d}/net.py:batch_view", "--calib", str(d / "calib.npz"),
                 "--device", "XC7Z020", "--out", str(d / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "outputs 256 rows for 16 inputs: a view or reshape mixes the batch" in err, err
    assert "\n" not in err and not (d / "o").exists()


def test_a_traced_graph_that_is_not_the_module_is_one_line(user_files, capsys):
    """The import compares the traced graph with the module on the calibration inputs: a
    forward() whose Python state torch.fx fixed at trace time is refused, nothing written."""
    d = user_files
    assert main(["dse", "--model", f"{d}/net.py:trace_time", "--calib", str(d / "calib.npz"),
                 "--device", "XC7Z020", "--out", str(d / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "the traced graph does not compute the module (they differ by" in err, err
    assert "\n" not in err and not (d / "o").exists()
    assert not list((d / "cache").glob("imports/*/model.pt"))


@pytest.mark.rtl
def test_an_mlp_over_an_image_explores_builds_and_co_simulates(user_files, capsys):
    """Flatten of the 1-channel input, then linear layers: the DSE chose 2 lanes for the first
    linear layer, which its flatten stage (1 channel) cannot run at (a ValueError traceback);
    its candidates now keep to the lanes the flatten takes, and the design is bit-exact."""
    from cosim.runner import simulator_missing

    if simulator_missing("verilator"):
        pytest.skip("verilator missing")
    d = user_files
    ref, calib = f"{d}/net.py:image_mlp", str(d / "calib.npz")
    assert main(["dse", "--model", ref, "--calib", calib, "--device", "XC7Z020", "--points", "2",
                 "--out", str(d / "dse")]) == 0
    point = json.loads((d / "dse" / "point_0.json").read_text())
    assert point["layers"][0]["lanes"] == 1
    out = d / "build"
    assert main(["build", "--model", ref, "--calib", calib, "--point",
                 str(d / "dse" / "point_0.json"), "--out", str(out)]) == 0
    assert main(["sim", "--build", str(out), "--frames", "4", "--stall", "0.3"]) == 0
    summary = json.loads((out / "sim_summary.json").read_text())
    assert summary["mismatches"] == 0 and summary["frames"] >= 4
    capsys.readouterr()


def test_train_imports_a_user_model(user_files, capsys):
    d = user_files
    out = d / "imported"
    assert main(["train", "--model", f"{d}/net.py:build", "--calib", str(d / "calib.npz"),
                 "--out", str(out)]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["integer_format"] == "int8" and 0 <= metrics["integer_accuracy"] <= 1
    assert (out / "model.pt").is_file() and (out / "metrics.json").is_file()
    # the written checkpoint is a model like any other
    assert main(["build", "--model", str(out / "model.pt"), "--out", str(d / "b")]) == 0
    assert main(["train", "--model", f"{d}/net.py:build", "--calib", str(d / "calib.npz"),
                 "--format", "int4", "--out", str(d / "x")]) == 2
    assert "--format goes with --qat" in capsys.readouterr().err


def test_qat_fine_tunes_an_imported_model(tmp_path, capsys):
    """`codesign train --qat --format int4` on a user's model: quantization-aware fine-tuning on
    the calibration half raises the int4 test accuracy (the LeNet example: 0.69 -> 0.97 in 4
    epochs when this was written), and the checkpoint holds the fine-tuned weights."""
    from pathlib import Path

    ex = Path(__file__).resolve().parents[2] / "examples" / "digits_lenet.py"
    out = tmp_path / "qat"
    assert main(["train", "--model", f"{ex}:build", "--calib", f"{ex}:calib", "--format", "int4",
                 "--qat", "--qat-epochs", "3", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    q = metrics["qat"]
    assert q["format"] == "int4" and q["epochs"] == 3
    assert q["accuracy_after"] >= q["accuracy_before"] + 0.1, q
    from models import zoo

    b = zoo.load(str(out / "model.pt"))
    assert b.evaluate("int4", split="test")["accuracy"] == pytest.approx(q["accuracy_after"])
    assert main(["train", "--model", f"{ex}:build", "--calib", f"{ex}:calib", "--qat",
                 "--out", str(tmp_path / "y")]) == 2
    assert "--qat needs a quantized --format" in capsys.readouterr().err


def test_val_gives_the_held_out_sets(user_files, capsys):
    """`--val`: the DSE's held-out sets are the user's own rows (sens the first half, eval the
    second), not the halves of --calib; the import with --val is cached apart from the one
    without, and unlabelled --val rows are labelled by the float module."""
    import torch

    from models import zoo

    d = user_files
    rng = np.random.default_rng(1)
    val_x = rng.random((10, 1, 8, 8), dtype=np.float32)
    np.savez(d / "val.npz", x=val_x, y=rng.integers(0, 3, 10))
    ref, calib = f"{d}/net.py:build", str(d / "calib.npz")
    assert main(["dse", "--model", ref, "--calib", calib, "--val", str(d / "val.npz"),
                 "--device", "XC7Z020", "--points", "1", "--out", str(d / "dse")]) == 0
    pred = json.loads((d / "dse" / "predictor.json").read_text())
    assert pred["sens_samples"] == 5 and pred["eval_samples"] == 5  # not 8 / 8 from --calib
    b = zoo.load(ref, calib=calib, val=str(d / "val.npz"))
    xe, ye = b.spec.data("eval")
    assert torch.equal(xe, torch.from_numpy(val_x[5:]))
    assert torch.equal(ye, torch.as_tensor(np.load(d / "val.npz")["y"][5:]))
    assert b.spec.data("test")[0].shape[0] == 8  # the import's own test half is unchanged
    without = zoo.load(ref, calib=calib)
    assert without.checkpoint != b.checkpoint and without.spec.held_out == {"sens": "val",
                                                                             "eval": "test"}
    np.save(d / "val_x.npy", val_x)
    unl = zoo.load(ref, calib=calib, val=str(d / "val_x.npy"))
    with torch.no_grad():
        want = unl.spec.logits(unl.model, torch.from_numpy(val_x[:5]), mode="float").argmax(1)
    assert torch.equal(unl.spec.data("sens")[1], want)
    capsys.readouterr()


@pytest.mark.parametrize("model,val,match", [
    ("{d}/net.py:build", "{d}/nothere.npz",
     r"held-out data \(--val\) .*nothere.npz does not exist"),
    ("{d}/net.py:build", "{d}/wide.npz", r"held-out inputs \(--val\) have shape \[3, 8, 8\]"),
    ("{d}/net.py:build", "{d}/one.npz", r"at least 2 rows"),
    ("{d}/net.py:build", "{d}/bad.npz", r"held-out \(--val\) data .* is unreadable"),
    ("digits", "{d}/calib.npz", "--val is for a file.py:factory or .onnx model"),
    ("{d}/net.py:build", "{d}/ybig.npz", r"label 7 is not a class of .*ybig.npz"),
])
def test_bad_val_is_one_line_exit_2_nothing_written(user_files, capsys, model, val, match):
    d = user_files
    (d / "bad.npz").write_bytes(b"not a zip")
    np.savez(d / "wide.npz", x=np.zeros((4, 3, 8, 8), dtype=np.float32))
    np.savez(d / "one.npz", x=np.zeros((1, 1, 8, 8), dtype=np.float32))
    np.savez(d / "ybig.npz", x=np.zeros((4, 1, 8, 8), dtype=np.float32), y=np.array([0, 1, 7, 2]))
    argv = ["dse", "--model", model.format(d=d), "--val", val.format(d=d), "--device", "XC7Z020",
            "--out", str(d / "o")]
    if model != "digits":
        argv += ["--calib", str(d / "calib.npz")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert re.search(match, err), err
    assert not (d / "o").exists()
    assert not list((d / "cache").glob("imports/*/model.pt"))


def test_finetune_every_front_point(user_files, capsys):
    """`codesign dse --finetune N`: each front point fine-tuned in its own formats; the gain is the
    saved checkpoint's measured accuracy minus the point's, and `codesign build` takes it."""
    import pandas as pd
    import torch

    from models import zoo

    d = user_files
    ref, calib = f"{d}/net.py:build", str(d / "calib.npz")
    out = d / "dse"
    assert main(["dse", "--model", ref, "--calib", calib, "--device", "XC7Z020", "--points", "2",
                 "--formats", "int8,int4", "--finetune", "2", "--out", str(out)]) == 0
    df = pd.read_csv(out / "pareto.csv")
    orig = zoo.load(ref, calib=calib)
    for _, row in df.iterrows():
        k = int(row["point"])
        point = json.loads((out / f"point_{k}.json").read_text())
        formats = {layer["name"]: layer["format"] for layer in point["layers"]}
        tuned = zoo.load(str(out / "finetuned" / f"point_{k}" / "model.pt"))
        after = tuned.evaluate(formats, split="eval")["accuracy"]
        assert row["accuracy_finetuned"] == pytest.approx(after, abs=1e-12)
        assert row["finetune_gain"] == pytest.approx(after - row["accuracy_measured"], abs=1e-12)
        # the weights moved, and the saved model keeps the point's formats
        w0 = [p.detach().clone() for p in orig.model.parameters()]
        w1 = list(tuned.model.parameters())
        assert any(not torch.equal(a, b) for a, b in zip(w0, w1, strict=True))
        assert tuned.qnet_base.formats == formats
    k = int(df["point"].iloc[0])
    assert main(["build", "--model", str(out / "finetuned" / f"point_{k}"), "--point",
                 str(out / f"point_{k}.json"), "--out", str(d / "b")]) == 0
    assert (out / "pareto.png").is_file()
    capsys.readouterr()
    assert main(["dse", "--model", "synthetic6", "--device", "XC7Z020", "--finetune", "1",
                 "--out", str(d / "s")]) == 2
    assert "--finetune needs a trained model" in capsys.readouterr().err
    assert not (d / "s").exists()


@pytest.mark.rtl
def test_flow_builds_the_finetuned_weights(user_files, capsys):
    """`codesign flow --finetune N`: the chosen point's fine-tuned checkpoint is what is built and
    co-simulated (0 mismatches against its golden model), and the report states the gain."""
    from cosim.runner import simulator_missing

    if simulator_missing("verilator"):
        pytest.skip("verilator missing")
    d = user_files
    out = d / "run"
    assert main(["flow", "--model", f"{d}/net.py:build", "--calib", str(d / "calib.npz"),
                 "--device", "XC7Z020", "--points", "2", "--formats", "int8,int4",
                 "--finetune", "1", "--frames", "3", "--no-synth", "--out", str(out)]) == 0
    pick = json.loads((out / "pick.json").read_text())
    tuned = out / "dse" / "finetuned" / f"point_{pick['point']}" / "model.pt"
    manifest = json.loads((out / "build" / "manifest.json").read_text())
    assert manifest["model"] == str(tuned)
    sim = json.loads((out / "build" / "sim_summary.json").read_text())
    assert sim["mismatches"] == 0 and sim["frames"] >= 3
    acc = json.loads((out / "accuracy.json").read_text())
    ft = acc["finetune"]
    assert ft["epochs"] == 1 and acc["eval"]["chosen"] == ft["after"]
    assert ft["gain"] == pytest.approx(ft["after"] - ft["before"])
    assert "epoch(s) of QAT" in (out / "report.md").read_text()
    capsys.readouterr()
