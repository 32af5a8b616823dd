"""QONNX front end with the real packages: Brevitas exports, qonnx cleans up and executes, the
importer keeps the model's quantizers, and the integer model agrees with qonnx's execution."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("qonnx")

from onnx import TensorProto, helper  # noqa: E402

from models.frontends import FrontendError  # noqa: E402
from models.frontends.qonnx_import import agreement, from_qonnx  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "brevitas_w4a4.onnx"
CALIB = ROOT / "examples" / "brevitas_w4a4_calib.npz"


def test_example_honours_its_quantizers_and_agrees_with_qonnx():
    """The committed Brevitas W4A4 model: 4-bit weights become int4 (8-bit ones int8), 4-bit
    unsigned activations the clamp [0, 15]; on 200 held-out digits the integer model's argmax
    equals qonnx's on >= 99.5 %, and each layer fed qonnx's own inputs gives the same integers
    on >= 99.99 % of its outputs."""
    net = from_qonnx(EXAMPLE, name="bw")
    assert net.fixed_formats
    assert net.formats == {"Conv_0": "int4", "Conv_1": "int4", "Gemm_0": "int4",
                           "Gemm_1": "int8"}
    assert net.nodes["Conv_0"].bounds() == (0, 15)
    assert net.nodes["Quant_0"].bounds() == (0, 127)
    x = np.load(CALIB)["x"][:200]
    a = agreement(EXAMPLE, net, x)
    assert a["n"] == 200 and a["argmax_agreement"] >= 0.995
    by = {row["node"]: row for row in a["layers"]}
    assert by["Quant_0"]["identical"] == 1.0
    for name in ("Conv_0", "Conv_1", "Gemm_0", "Gemm_1"):
        assert by[name]["isolated"] >= 0.9999, by[name]
    for name in ("MaxPool_0", "MaxPool_1", "Reshape_0"):
        assert by[name]["isolated"] == 1.0


def test_example_golden_is_the_integer_model():
    """The exported QGraph (flatten site-major, rounding offsets R) computes, bit for bit, what
    the imported network's integer mode computes."""
    net = from_qonnx(EXAMPLE, name="bw")
    x = torch.from_numpy(np.load(CALIB)["x"][:12]).double()
    g = net.to_qgraph(x[:1])
    assert g.node("Conv_0").R is not None and g.node("Reshape_0").op == "flatten"
    q = net.double().set_mode("int")
    xi = q.quantize_input(x)
    out = q(xi)
    coords = torch.nonzero(torch.ones(8, 8, dtype=torch.bool))
    for b in range(len(x)):
        assert torch.equal(g.run_frame(coords, xi[b].reshape(1, -1).t())[1][0], out[b].long())
    with pytest.raises(ValueError, match="keeps its own quantizers"):
        net.set_formats("int8")


def test_example_network_bit_exact_in_amaranth_sim():
    """The imported network's hardware (int4 MACs, 4-bit clamps, per-channel rounding offsets,
    flatten + dense head) equals the golden model in amaranth.sim under stalls."""
    from contract.point import DesignPoint
    from hw.compose import Network
    from hw.sim import run_stream

    net = from_qonnx(EXAMPLE, name="bw")
    x = torch.from_numpy(np.load(CALIB)["x"][:2]).double()
    g = net.to_qgraph(x[:1])
    xi = net.double().set_mode("int").quantize_input(x)
    coords = [(y, xx) for y in range(8) for xx in range(8)]
    frames = [(coords, xi[b].reshape(1, -1).t().tolist()) for b in range(2)]
    assert g.dense  # an image network: every frame holds every site
    # the same graph taken as sparse (its line buffers without the dense shortcut) also takes a
    # sparse frame, whose absent sites are zeros
    frames.append(([(0, 3), (5, 5)], [[100], [7]]))
    g = dataclasses.replace(g, dense=False)
    point = DesignPoint.default(g, model="bw", lanes=4, pe=4)
    out, _ = run_stream(Network(g, point), frames, idle=0.3, stall=0.3, seed=3,
                        max_cycles=200_000)
    want = []
    for c, f in frames:
        oc, of = g.run_frame(c, f)
        want.append(([tuple(v) for v in oc.tolist()], of.tolist()))
    assert out == want


# -- hand-built QONNX graphs: what is refused, in one line ----------------------------------------

def _quant(name, x, scale, bits, *, signed, narrow=False, zero=0.0):
    inits = [helper.make_tensor(f"{name}_s", TensorProto.FLOAT, np.shape(scale),
                                np.ravel(scale).tolist()),
             helper.make_tensor(f"{name}_z", TensorProto.FLOAT, [], [zero]),
             helper.make_tensor(f"{name}_b", TensorProto.FLOAT, [], [float(bits)])]
    node = helper.make_node("Quant", [x, f"{name}_s", f"{name}_z", f"{name}_b"], [f"{name}_o"],
                            name=name, domain="qonnx.custom_op.general", signed=int(signed),
                            narrow=int(narrow), rounding_mode="ROUND")
    return node, inits



def _export(m, x, path):
    """A Brevitas module exported to ``path`` after one training-mode pass over ``x`` (the
    activation quantizers' statistics), as a user exports a calibrated model."""
    from brevitas.export import export_qonnx

    m.train()
    m(x)
    m.eval()
    export_qonnx(m, x[:1], export_path=str(path))
    return path

def _model(path, *, act_bits=4, act_signed=False, extra=None, zero=0.0):
    """input [1, 2, 4, 4] -> Quant -> Conv 3x3 (4-bit weights) -> Relu -> Quant -> GAP ->
    Flatten -> Gemm (8-bit) [-> extra op]."""
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    # irregular scales, as trained quantizers have (decimal ones such as 0.05 and 0.1 make many
    # exact ties, which the fixed-point requantizer resolves differently: docs/FRONTENDS.md)
    n, i = _quant("qin", "x", 0.0473, 7, signed=False)
    nodes.append(n)
    inits += i
    inits.append(helper.make_tensor("w1", TensorProto.FLOAT, [4, 2, 3, 3],
                                    rng.normal(0, 0.3, 36 * 2).tolist()))
    n, i = _quant("qw1", "w1", 0.1129, 4, signed=True, narrow=True)
    nodes.append(n)
    inits += i
    nodes.append(helper.make_node("Conv", ["qin_o", "qw1_o"], ["c1"], name="conv1",
                                  kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("Relu", ["c1"], ["r1"], name="relu1"))
    n, i = _quant("qa1", "r1", 0.0917, act_bits, signed=act_signed, zero=zero)
    nodes.append(n)
    inits += i
    nodes.append(helper.make_node("GlobalAveragePool", ["qa1_o"], ["p"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["p"], ["f"], name="flat"))
    inits.append(helper.make_tensor("w2", TensorProto.FLOAT, [3, 4],
                                    rng.normal(0, 0.3, 12).tolist()))
    n, i = _quant("qw2", "w2", 0.02, 8, signed=True, narrow=True)
    nodes.append(n)
    inits += i
    out = "y"
    nodes.append(helper.make_node("Gemm", ["f", "qw2_o"], ["g" if extra else out], name="fc",
                                  transB=1))
    if extra:
        nodes.append(helper.make_node(extra, ["g"], [out], name="tail"))
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 3])], inits)
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid("qonnx.custom_op.general", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_hand_built_model_imports_and_agrees(tmp_path):
    path = _model(tmp_path / "ok.onnx")
    net = from_qonnx(path, name="t")
    # qonnx's cleanup names the nodes <op>_<k>
    assert net.formats == {"Conv_0": "int4", "Gemm_0": "int8"}
    assert net.nodes["Conv_0"].bounds() == (0, 15) and net.nodes["Conv_0"].relu
    x = np.random.default_rng(1).uniform(0, 1, (64, 2, 4, 4)).astype(np.float32)
    a = agreement(path, net, x)
    by = {row["node"]: row for row in a["layers"]}
    assert by["Conv_0"]["isolated"] >= 0.999
    assert a["argmax_agreement"] >= 0.9
    assert any("global average" in n for n in a["notes"])  # the rounded mean is said


@pytest.mark.parametrize("tail", ["Softmax", "LogSoftmax", "Sigmoid", "Tanh"])
def test_an_output_softmax_is_dropped_and_the_logits_compared(tmp_path, tail):
    """A (log-)softmax, or a sigmoid / tanh, after the classifier: the same network as without
    it (it was refused), and the agreement compares our logits with the tensor before it: the
    figures of the model without it, tensor for tensor."""
    plain_path = _model(tmp_path / "plain.onnx")
    plain = from_qonnx(plain_path, name="t")
    path = _model(tmp_path / "soft.onnx", extra=tail)
    net = from_qonnx(path, name="t")
    assert list(net.nodes) == list(plain.nodes) and net.formats == plain.formats
    assert net.onnx_names["Gemm_0"] == "Gemm_0_out0"  # the logits' tensor, not the softmax's
    x = np.random.default_rng(1).uniform(0, 1, (64, 2, 4, 4)).astype(np.float32)
    a, ref = agreement(path, net, x), agreement(plain_path, plain, x)
    strip = [{k: v for k, v in row.items() if k != "tensor"} for row in a["layers"]]
    assert strip == [{k: v for k, v in row.items() if k != "tensor"} for row in ref["layers"]]
    assert a["argmax_agreement"] == ref["argmax_agreement"] >= 0.9


def test_8bit_unsigned_activations_take_9bit_streams(tmp_path):
    """Brevitas' default QuantReLU (8-bit unsigned, [0, 255]) does not fit the 8-bit signed
    streams: the graph takes 9-bit ones, and its hardware equals the golden model."""
    from contract.point import DesignPoint
    from hw.compose import Network
    from hw.sim import run_stream

    path = _model(tmp_path / "u8.onnx", act_bits=8)
    net = from_qonnx(path, name="u8")
    assert net.nodes["Conv_0"].bounds() == (0, 255)
    x = np.random.default_rng(2).uniform(0, 6, (32, 2, 4, 4)).astype(np.float32)
    a = agreement(path, net, x)
    assert {r["node"]: r for r in a["layers"]}["Conv_0"]["isolated"] >= 0.999
    g = net.to_qgraph(torch.from_numpy(x[:1]).double())
    assert g.abits == 9
    xi = net.double().set_mode("int").quantize_input(torch.from_numpy(x[:3]).double())
    coords = [(y, xx) for y in range(4) for xx in range(4)]
    frames = [(coords, xi[b].reshape(2, -1).t().tolist()) for b in range(3)]
    out, _ = run_stream(Network(g, DesignPoint.default(g, model="u8", lanes=2, pe=2)), frames,
                        idle=0.3, stall=0.3, seed=1, max_cycles=50_000)
    for (c, f), got in zip(frames, out, strict=True):
        oc, of = g.run_frame(c, f)
        assert got == ([tuple(v) for v in oc.tolist()], of.tolist())
    assert int(g.node("Conv_0").hi) == 255
    # the 9th bit is used: some conv outputs lie above 127
    env = g.run_frame_all(*frames[0])
    assert int(env["Conv_0"][1].max()) > 127


@pytest.mark.parametrize("kw,match", [
    ({"extra": "Abs"}, "Abs_0: op Abs is not supported"),
    ({"zero": 1.0}, r"Quant_\d: Quant with a non-zero zero point"),
])
def test_unsupported_is_one_line(tmp_path, kw, match):
    path = _model(tmp_path / "bad.onnx", **kw)
    with pytest.raises(FrontendError, match=match) as e:
        from_qonnx(path)
    assert "\n" not in str(e.value) and "supported:" in str(e.value)


def test_corrupt_and_missing_files_are_one_line(tmp_path):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(FrontendError, match="is not a readable ONNX model") as e:
        from_qonnx(bad)
    assert "\n" not in str(e.value)
    with pytest.raises(FrontendError, match="does not exist"):
        from_qonnx(tmp_path / "nope.onnx")


def test_a_float_onnx_is_named_as_such(tmp_path):
    """A float ONNX (torch.onnx.export of an unquantized module: no Quant node) is refused as
    not QONNX, in one line, not by its first layer ("Conv on 'global_in' is not supported")."""
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU())
    path = tmp_path / "float.onnx"
    torch.onnx.export(m, torch.zeros(1, 1, 8, 8), str(path), opset_version=13)
    with pytest.raises(FrontendError, match="no Quant node: it is a float ONNX model") as e:
        from_qonnx(path)
    assert "\n" not in str(e.value)


def test_cli_refuses_bad_models_with_exit_2_and_writes_nothing(tmp_path):
    """Every bad QONNX input through the CLI: one line, exit code 2, no output directory."""
    bad = _model(tmp_path / "abs.onnx", extra="Abs")
    corrupt = tmp_path / "c.onnx"
    corrupt.write_bytes(b"not onnx")
    calib = tmp_path / "c.npz"
    np.savez(calib, x=np.zeros((4, 2, 4, 4), np.float32))
    wrong = tmp_path / "w.npz"
    np.savez(wrong, x=np.zeros((4, 3, 4, 4), np.float32))
    ok = _model(tmp_path / "ok.onnx")
    labels = tmp_path / "y.npz"   # the model has 3 outputs
    np.savez(labels, x=np.zeros((4, 2, 4, 4), np.float32), y=np.array([0, 1, 2, 3]))
    cases = [(bad, calib, "Abs_0: op Abs"), (corrupt, calib, "not a readable ONNX model"),
             (ok, labels, "calibration label 3 is not a class of ok.onnx, which has 3 outputs"),
             (tmp_path / "missing.onnx", calib, "does not exist"),
             (ok, wrong, "calibration inputs have shape [3, 4, 4] per row"),
             (ok, None, "give its inputs with --calib")]
    env = {"CODESIGN_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    for model, data, msg in cases:
        out = tmp_path / "out"
        cmd = [sys.executable, "-m", "codesign", "dse", "--model", str(model), "--device",
               "xc7z020", "--out", str(out)] + (["--calib", str(data)] if data else [])
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "Warning" not in ln
                 and "warn" not in ln]
        assert r.returncode == 2, (model, r.stderr[-500:])
        assert any(msg in ln for ln in lines), (msg, r.stderr[-500:])
        assert "Traceback" not in r.stderr
        assert not out.exists()


def test_brevitas_export_imports_and_agrees(tmp_path):
    """A Brevitas network (untrained: seeded weights, BatchNorm statistics set), exported by
    Brevitas' own QONNX exporter, then imported: the formats are the quantizers' and the integer
    model agrees with qonnx's execution of the file."""
    brevitas_nn = pytest.importorskip("brevitas.nn")
    from brevitas.quant import Int8WeightPerTensorFloat, Uint8ActPerTensorFloat
    from torch import nn

    class In7(Uint8ActPerTensorFloat):
        bit_width = 7

    class W4(Int8WeightPerTensorFloat):
        bit_width = 4
        scaling_per_output_channel = True

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = brevitas_nn.QuantIdentity(act_quant=In7, return_quant_tensor=True)
            self.conv = brevitas_nn.QuantConv2d(2, 8, 3, padding=1, bias=True, weight_quant=W4)
            self.bn = nn.BatchNorm2d(8)
            self.relu = brevitas_nn.QuantReLU(bit_width=3, return_quant_tensor=True)
            self.fc = brevitas_nn.QuantLinear(8 * 3 * 3, 5, bias=True, weight_bit_width=6)

        def forward(self, x):
            x = torch.nn.functional.max_pool2d(self.relu(self.bn(self.conv(self.inp(x)))), 2)
            return self.fc(torch.flatten(x, 1))

    torch.manual_seed(0)
    m = Net()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-0.2, 0.2)
        m.bn.running_var.uniform_(0.5, 2.0)
        m.bn.weight.uniform_(-1.5, 1.5)   # negative BatchNorm scales flip the weights' signs
    x = torch.rand(64, 2, 6, 6)
    path = _export(m, x, tmp_path / "brevitas.onnx")
    net = from_qonnx(path, name="bv")
    assert sorted(net.formats.values()) == ["int4", "int8"]   # 4-bit and 6-bit weights
    assert net.nodes["Conv_0"].bounds() == (0, 7)              # 3-bit unsigned activations
    a = agreement(path, net, x.numpy())
    by = {row["node"]: row for row in a["layers"]}
    assert by["Conv_0"]["isolated"] >= 0.999 and by["Gemm_0"]["isolated"] >= 0.999
    assert a["argmax_agreement"] >= 0.95


def test_brevitas_global_pool_exported_as_reduce_mean_imports(tmp_path):
    """torch's ONNX exporter (opset 18 and later) writes ``AdaptiveAvgPool2d(1)`` as a
    ``ReduceMean`` over axes [-1, -2] (an input, not an attribute): it was refused as an
    unsupported op; it is the global pool. A trailing softmax is dropped."""
    brevitas_nn = pytest.importorskip("brevitas.nn")
    import onnx as _onnx
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = brevitas_nn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.conv = brevitas_nn.QuantConv2d(1, 8, 3, padding=1, weight_bit_width=4,
                                                bias=False)
            self.bn = nn.BatchNorm2d(8)
            self.relu = brevitas_nn.QuantReLU(bit_width=4, return_quant_tensor=True)
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = brevitas_nn.QuantLinear(8, 5, bias=True, weight_bit_width=8)

        def forward(self, x):
            x = self.gap(self.relu(self.bn(self.conv(self.inp(x)))))
            return torch.softmax(self.fc(torch.flatten(x, 1)), 1)

    torch.manual_seed(0)
    m = Net()
    x = torch.rand(64, 1, 6, 6)
    path = _export(m, x, tmp_path / "gap.onnx")
    ops = [n.op_type for n in _onnx.load(str(path)).graph.node]
    assert "ReduceMean" in ops and "Softmax" in ops  # what this exporter writes
    net = from_qonnx(path, name="gap")
    assert [type(v).__name__ for v in net.nodes.values()] == [
        "QInput", "QConv2d", "QGlobalAvgPool", "QLinear"]
    a = agreement(path, net, x.numpy())
    by = {row["node"]: row for row in a["layers"]}
    assert by["Conv_0"]["isolated"] >= 0.999
    # the global mean is rounded onto the 4-bit grid, where qonnx keeps the float mean: the
    # logits differ, and the report says so (the argmax agreement is measured, not asserted)
    assert any("global average" in n for n in a["notes"])


@pytest.mark.parametrize("axes", [[2, 3], [3, 2], [-1, -2], [1], [1, 2], [2]])
def test_reduce_mean_over_h_w_is_the_global_pool_and_else_one_line(tmp_path, axes):
    """A ``ReduceMean`` with its axes as an attribute (opset 13): over H and W the same network
    as with ``GlobalAveragePool``; over any other axes refused by name."""
    path = _model(tmp_path / "ok.onnx")
    plain = from_qonnx(path, name="t")
    m = onnx.load(str(path))
    for n in m.graph.node:
        if n.op_type == "GlobalAveragePool":
            n.op_type = "ReduceMean"
            n.attribute.extend([helper.make_attribute("axes", axes),
                                helper.make_attribute("keepdims", 1)])
    onnx.save(m, str(tmp_path / "rm.onnx"))
    if sorted(a % 4 for a in axes) == [2, 3]:
        net = from_qonnx(tmp_path / "rm.onnx", name="t")
        assert [type(v).__name__ for v in net.nodes.values()] == \
            [type(v).__name__ for v in plain.nodes.values()]
        return
    with pytest.raises(FrontendError, match=r"ReduceMean over axes \[") as e:
        from_qonnx(tmp_path / "rm.onnx")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("pool", ["adaptive", "amax", "whole"])
def test_brevitas_global_max_pool_imports_and_is_exact(tmp_path, pool):
    """A Brevitas CNN whose head is a global max pool (``AdaptiveMaxPool2d(1)``, ``torch.amax``
    over H, W, a ``MaxPool2d`` over the whole map): ``GlobalMaxPool`` / ``ReduceMax`` /
    ``MaxPool`` in the file, the ``gmp`` op; a maximum of values on one grid is exact, so the
    integer model's pooled vector and logits equal qonnx's."""
    brevitas_nn = pytest.importorskip("brevitas.nn")
    import onnx as _onnx
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = brevitas_nn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.conv = brevitas_nn.QuantConv2d(1, 8, 3, padding=1, weight_bit_width=4,
                                                bias=False)
            self.bn = nn.BatchNorm2d(8)
            self.relu = brevitas_nn.QuantReLU(bit_width=4, return_quant_tensor=False)
            self.gmp = nn.AdaptiveMaxPool2d(1)
            self.fc = brevitas_nn.QuantLinear(8, 5, bias=True, weight_bit_width=8)

        def forward(self, x):
            x = self.relu(self.bn(self.conv(self.inp(x))))
            if pool == "adaptive":
                x = self.gmp(x)
            elif pool == "amax":
                x = torch.amax(x, (2, 3), keepdim=True)
            else:
                x = nn.functional.max_pool2d(x, 6)
            return self.fc(torch.flatten(x, 1))

    torch.manual_seed(0)
    m = Net()
    x = torch.rand(64, 1, 6, 6)
    path = _export(m, x, tmp_path / "gmp.onnx")
    ops = {n.op_type for n in _onnx.load(str(path)).graph.node}
    assert ops & {"GlobalMaxPool", "ReduceMax", "MaxPool"}, ops
    net = from_qonnx(path, name="gmp")
    assert [type(v).__name__ for v in net.nodes.values()] == [
        "QInput", "QConv2d", "QGlobalMaxPool", "QLinear"]
    a = agreement(path, net, x.numpy())
    # measured: every tensor identical, the pool's and the logits included (64 inputs)
    assert all(r["identical"] == 1.0 for r in a["layers"]), a["layers"]
    assert a["argmax_agreement"] == 1.0


@pytest.mark.parametrize("requant", [False, True])
def test_brevitas_upsample_imports_and_is_exact(tmp_path, requant):
    """``nn.Upsample(scale_factor=2)`` between two quantized convs, exported by Brevitas as a
    ``Resize`` (nearest, asymmetric, floor): the ``upsample`` op; copies of values on one grid
    are exact, so its tensor equals qonnx's. A ``QuantIdentity`` after it on another scale is
    refused in one line, as after a pool (only layers and adds requantize)."""
    brevitas_nn = pytest.importorskip("brevitas.nn")
    import onnx as _onnx
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = brevitas_nn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.conv = brevitas_nn.QuantConv2d(1, 4, 3, padding=1, weight_bit_width=4,
                                                bias=False)
            self.relu = brevitas_nn.QuantReLU(bit_width=4, return_quant_tensor=False)
            self.up = nn.Upsample(scale_factor=2)
            self.q2 = brevitas_nn.QuantIdentity(bit_width=4) if requant else nn.Identity()
            self.conv2 = brevitas_nn.QuantConv2d(4, 4, 3, padding=1, weight_bit_width=4,
                                                 bias=True)
            self.relu2 = brevitas_nn.QuantReLU(bit_width=4, return_quant_tensor=False)
            self.fc = brevitas_nn.QuantLinear(4, 3, bias=True, weight_bit_width=8)

        def forward(self, x):
            x = self.relu2(self.conv2(self.q2(self.up(self.relu(self.conv(self.inp(x)))))))
            return self.fc(x.mean((2, 3)))

    torch.manual_seed(0)
    m = Net()
    x = torch.rand(32, 1, 6, 6)
    path = _export(m, x, tmp_path / "up.onnx")
    assert "Resize" in {n.op_type for n in _onnx.load(str(path)).graph.node}
    if requant:
        _refused_line(path, r"Quant_\d: requantizing the output of Resize_0 to another scale")
        return
    net = from_qonnx(path, name="up")
    assert "QUpsample2x" in [type(v).__name__ for v in net.nodes.values()]
    a = agreement(path, net, x.numpy())
    by = {row["node"]: row for row in a["layers"]}
    # fed qonnx's own integers, every copy is qonnx's; over the whole network the few values the
    # conv's requantizer rounds differently upstream (measured: 0.02 %) are copied four times
    assert by["Resize_0"]["isolated"] == 1.0, by["Resize_0"]
    assert by["Resize_0"]["identical"] >= 0.999 and by["Conv_0"]["isolated"] >= 0.999


def test_brevitas_imagenet_stem_max_pool_imports_and_is_exact(tmp_path):
    """The ImageNet stem's ``MaxPool2d(3, 2, 1)`` after a quantized 7x7 / 2 conv, exported by
    Brevitas: ``MaxPool`` kernel 3, stride 2, pads 1 is the window max pool; a maximum of values
    on one grid is exact, so its tensor equals qonnx's fed qonnx's own integers."""
    brevitas_nn = pytest.importorskip("brevitas.nn")
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = brevitas_nn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.stem = brevitas_nn.QuantConv2d(1, 4, 7, stride=2, padding=3,
                                                weight_bit_width=4, bias=False)
            self.relu = brevitas_nn.QuantReLU(bit_width=4, return_quant_tensor=False)
            self.pool = nn.MaxPool2d(3, 2, 1)
            self.fc = brevitas_nn.QuantLinear(4, 3, bias=True, weight_bit_width=8)

        def forward(self, x):
            return self.fc(self.pool(self.relu(self.stem(self.inp(x)))).mean((2, 3)))

    torch.manual_seed(0)
    m = Net()
    x = torch.rand(32, 1, 12, 12)
    path = _export(m, x, tmp_path / "stem.onnx")
    net = from_qonnx(path, name="stem")
    assert "QMaxPoolK" in [type(v).__name__ for v in net.nodes.values()]
    a = agreement(path, net, x.numpy())
    by = {row["node"]: row for row in a["layers"]}
    assert by["MaxPool_0"]["isolated"] == 1.0, by["MaxPool_0"]


def test_python_api_takes_a_qonnx_file(tmp_path, monkeypatch):
    """codesign.api.convert on the .onnx: the model's own formats, and predict() gives the
    imported integer model's logits."""
    import codesign.api as cs

    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))
    model = cs.convert(str(EXAMPLE), calib=str(CALIB))
    assert model.formats == {"Conv_0": "int4", "Conv_1": "int4", "Gemm_0": "int4",
                             "Gemm_1": "int8"}
    x = np.load(CALIB)["x"][:6]
    logits = model.predict(x)
    net = from_qonnx(EXAMPLE, name="bw").double().set_mode("int")
    want = net(net.quantize_input(torch.from_numpy(x).double()))
    assert np.array_equal(logits, want.long().numpy())


@pytest.mark.rtl
def test_flow_runs_on_the_qonnx_file(tmp_path, monkeypatch):
    """`codesign flow --model examples/brevitas_w4a4.onnx --calib ...`: no user code, the whole
    flow (import, DSE with the model's formats, build, Verilator co-simulation, report)."""
    import json

    from codesign.cli import main

    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "flow"
    assert main(["flow", "--model", str(EXAMPLE), "--calib", str(CALIB), "--device", "XC7Z020",
                 "--frames", "3", "--stall", "0.3", "--no-synth", "--out", str(out)]) == 0
    sim = json.loads((out / "build" / "sim_summary.json").read_text())
    assert sim["frames"] == 3 and sim["mismatches"] == 0
    report = (out / "report.md").read_text()
    assert "Agreement with qonnx's execution" in report and "QONNX model (qonnx execution)" in \
        report
    point = json.loads((out / "point.json").read_text())
    assert {layer["format"] for layer in point["layers"]} == {"int4", "int8"}


def test_val_for_a_qonnx_model_is_labelled_by_qonnx_when_unlabelled(tmp_path, monkeypatch):
    """`--val` on a QONNX import: the held-out sets are its halves, its labels kept, and rows
    without labels labelled by qonnx's own execution of the model."""
    from models import zoo
    from models.frontends.qonnx_import import load_qonnx, qonnx_execute

    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))
    z = np.load(CALIB)
    x, y = z["x"][-40:], z["y"][-40:]
    np.savez(tmp_path / "val.npz", x=x, y=y)
    np.save(tmp_path / "val_x.npy", x)
    b = zoo.load(str(EXAMPLE), calib=str(CALIB), val=str(tmp_path / "val.npz"))
    xs, ys = b.spec.data("sens")
    xe, ye = b.spec.data("eval")
    assert np.array_equal(xs.numpy(), x[:20]) and np.array_equal(xe.numpy(), x[20:])
    assert np.array_equal(ye.numpy(), y[20:])
    assert b.evaluate(dict(b.qnet_base.formats), split="eval")["n"] == 20
    unl = zoo.load(str(EXAMPLE), calib=str(CALIB), val=str(tmp_path / "val_x.npy"))
    model = load_qonnx(EXAMPLE)
    want = qonnx_execute(model, x[:20])[model.graph.output[0].name].argmax(1)
    assert np.array_equal(unl.spec.data("sens")[1].numpy(), want)
    assert unl.checkpoint != b.checkpoint


# -- elementwise activations: a table between two Quant nodes --------------------------------------

S_IN = 0.0473


def _act_model(path, op, attrs=None, *, slope=None, out_bits=8, out_signed=True, out_scale=0.0371,
               quant_after=True):
    """input [1, 4, 8, 8] -> Quant (8-bit signed, scale S_IN) -> ``op`` [-> Quant]: 256 input
    values, one per pixel on the grid of ``_grid_input``."""
    nodes, inits = [], []
    n, i = _quant("qin", "x", S_IN, 8, signed=True)
    nodes.append(n)
    inits += i
    ins = ["qin_o"]
    if slope is not None:
        inits.append(helper.make_tensor("slope", TensorProto.FLOAT, np.shape(slope),
                                        np.ravel(slope).tolist()))
        ins.append("slope")
    nodes.append(helper.make_node(op, ins, ["a" if quant_after else "y"], name="act",
                                  **(attrs or {})))
    if quant_after:
        n, i = _quant("qa", "a", out_scale, out_bits, signed=out_signed)
        n.output[0] = "y"
        nodes.append(n)
        inits += i
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    opsets = [helper.make_opsetid("", 20), helper.make_opsetid("qonnx.custom_op.general", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def _grid_input():
    """Every 8-bit input value once: [-128, 127] * S_IN as one [1, 4, 8, 8] frame."""
    return (np.arange(-128, 128) * S_IN).astype(np.float32).reshape(1, 4, 8, 8)


def _erf(x):
    import math
    return np.vectorize(math.erf)(x)


# the ONNX operators' definitions (onnx.ai/onnx/operators), written out independently
@pytest.mark.parametrize("op,attrs,slope,ref,signed", [
    ("LeakyRelu", {"alpha": 0.3}, None, lambda x: np.where(x >= 0, x, 0.3 * x), True),
    ("LeakyRelu", {}, None, lambda x: np.where(x >= 0, x, 0.01 * x), True),  # alpha 0.01
    ("PRelu", {}, np.array([0.25]), lambda x: np.where(x >= 0, x, 0.25 * x), True),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, None,
     lambda x: np.clip(0.3 * x + 0.4, 0, 1), False),
    # ONNX's defaults 0.2 / 0.5, not torch's 1/6 (which differs by up to 0.1 here: 3 steps)
    ("HardSigmoid", {}, None, lambda x: np.clip(0.2 * x + 0.5, 0, 1), False),
    ("HardSwish", {}, None, lambda x: x * np.clip(x / 6 + 0.5, 0, 1), True),
    ("Elu", {"alpha": 0.5}, None, lambda x: np.where(x >= 0, x, 0.5 * (np.exp(x) - 1)), True),
    ("Selu", {}, None, lambda x: 1.0507009873554805 * np.where(
        x > 0, x, 1.6732632423543772 * (np.exp(x) - 1)), True),
    ("Gelu", {"approximate": "tanh"}, None, lambda x: 0.5 * x * (1 + np.tanh(
        np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))), True),
    ("Gelu", {}, None, lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))), True),
    ("Sigmoid", {}, None, lambda x: 1 / (1 + np.exp(-x)), False),
    ("Mish", {}, None, lambda x: x * np.tanh(np.log1p(np.exp(x))), True),
])
def test_hand_built_activation_is_the_onnx_function(tmp_path, op, attrs, slope, ref, signed):
    """Quant -> op -> Quant: one table activation whose every entry is the ONNX function (with
    the node's attributes or ONNX's defaults) on the input grid within half an output step, and
    equal to qonnx's execution on every input value."""
    import pickle

    out_scale = 0.0371 if signed else 1 / 250
    path = _act_model(tmp_path / "a.onnx", op, attrs, slope=slope, out_signed=signed,
                      out_scale=out_scale)
    net = from_qonnx(path, name="a")
    assert [type(m).__name__ for m in net.nodes.values()] == ["QInput", "QActTable"]
    act = net.nodes[f"{op}_0"]
    assert act.rounding == "half_even" and act.qrange == ((-128, 127) if signed else (0, 255))
    lo, hi = act.bounds()
    q = np.arange(-128, 128)
    want = np.clip(ref(q * S_IN), lo * out_scale, hi * out_scale)
    got = act.table[q & 255] * out_scale
    assert np.all(np.abs(got - want) <= out_scale / 2 + 1e-9), np.abs(got - want).max()
    a = agreement(path, net, _grid_input())
    assert [r["identical"] for r in a["layers"]] == [1.0, 1.0]
    assert any("float32 as qonnx executes it" in n for n in a["notes"])
    pickle.loads(pickle.dumps(net))  # a checkpoint holds the QNet: the function is picklable


@pytest.mark.parametrize("op,attrs", [("LeakyRelu", {"alpha": 0.5}), ("HardSwish", {}),
                                      ("HardSigmoid", {}), ("Elu", {})])
def test_rounding_ties_land_where_qonnx_puts_them(tmp_path, monkeypatch, op, attrs):
    """Round scales (0.05 in and out) put outputs on exact ties in float64 (LeakyRelu(0.5) at
    q = -109 is -54.5, half to even -54) that float32 moves off them (-54.500004: -55). The
    table is computed in float32 as qonnx executes the model: every input value lands where
    qonnx's does (computed in float64, 456 of 76,800 entries over such scales were a step off)."""
    monkeypatch.setattr(sys.modules[__name__], "S_IN", 0.05)
    path = _act_model(tmp_path / "t.onnx", op, attrs, out_scale=0.05)
    net = from_qonnx(path, name="t")
    a = agreement(path, net, _grid_input())
    assert [r["identical"] for r in a["layers"]] == [1.0, 1.0]


@pytest.mark.parametrize("act", ["QuantSigmoid", "LeakyReLU", "Hardswish", "SiLU", "Softplus"])
def test_brevitas_activation_golden_bit_exact_and_agrees_with_qonnx(tmp_path, act):
    """A Brevitas CNN with an activation between two activation quantizers (QuantSigmoid; or a
    torch activation followed by a QuantIdentity), exported by Brevitas (SiLU as x * Sigmoid(x),
    Softplus as Where(x > 20, x, Softplus(x))): the activation is one table; the golden model
    (QGraph.run_frame) equals the integer QNet bit for bit, and the integer model agrees with
    qonnx's execution. The table is computed in float32 as qonnx executes the function, so fed
    qonnx's own inputs every one of its outputs is qonnx's (18,432 here; 147,456 with 8-bit
    tables)."""
    brevitas_nn = pytest.importorskip("brevitas.nn")
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = brevitas_nn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.conv = brevitas_nn.QuantConv2d(2, 8, 3, padding=1, weight_bit_width=4,
                                                bias=True)
            self.bn = nn.BatchNorm2d(8)
            self.pre = brevitas_nn.QuantIdentity(bit_width=6, return_quant_tensor=False)
            if act == "QuantSigmoid":
                self.act = brevitas_nn.QuantSigmoid(bit_width=4, return_quant_tensor=True)
                self.post = nn.Identity()
            else:
                self.act = getattr(nn, act)()
                self.post = brevitas_nn.QuantIdentity(bit_width=5, return_quant_tensor=True)
            self.fc = brevitas_nn.QuantLinear(8 * 3 * 3, 5, bias=True, weight_bit_width=8)

        def forward(self, x):
            x = self.post(self.act(self.pre(self.bn(self.conv(self.inp(x))))))
            return self.fc(torch.flatten(torch.nn.functional.max_pool2d(x, 2), 1))

    torch.manual_seed(0)
    m = Net()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-0.2, 0.2)
        m.bn.weight.uniform_(-1.5, 1.5)
    x = torch.rand(64, 2, 6, 6)
    path = _export(m, x, tmp_path / "act.onnx")
    net = from_qonnx(path, name="act")
    assert [type(v).__name__ for v in net.nodes.values()] == [
        "QInput", "QConv2d", "QActTable", "QMaxPool2d", "QFlatten", "QLinear"]
    tab = next(n for n, v in net.nodes.items() if type(v).__name__ == "QActTable")
    table = net.nodes[tab]
    assert table.what.startswith({"QuantSigmoid": "Sigmoid", "LeakyReLU": "LeakyRelu(alpha=0.01)",
                                  "Hardswish": "HardSwish", "SiLU": "SiLU",
                                  "Softplus": "Softplus(threshold=20)"}[act])
    assert len(table.table) == 64                      # the 6-bit signed input's table
    # QuantSigmoid's own quantizer: 4-bit unsigned; QuantIdentity's: 5-bit signed, not narrow
    # (a function never negative, softplus, keeps the non-negative part)
    assert table.bounds() == ((0, 15) if act in ("QuantSigmoid", "Softplus") else (-16, 15))
    # the golden model is the integer QNet, bit for bit
    g = net.to_qgraph(x[:1].double())
    assert g.node(tab).op == "act"
    q = net.double().set_mode("int")
    xi = q.quantize_input(x[:8].double())
    out = q(xi)
    coords = torch.nonzero(torch.ones(6, 6, dtype=torch.bool))
    for b in range(len(xi)):
        assert torch.equal(g.run_frame(coords, xi[b].reshape(2, -1).t())[1][0], out[b].long())
    a = agreement(path, from_qonnx(path, name="act"), x.numpy())
    by = {row["node"]: row for row in a["layers"]}
    assert by[tab]["isolated"] == 1.0, by[tab]
    assert by[tab]["identical"] >= 0.99 and by["Conv_0"]["isolated"] >= 0.99
    assert a["argmax_agreement"] >= 0.95


def _refused_line(path, match):
    with pytest.raises(FrontendError, match=match) as e:
        from_qonnx(path)
    assert "\n" not in str(e.value) and "Traceback" not in str(e.value)


@pytest.mark.parametrize("kw,match", [
    (dict(op="PRelu", slope=np.arange(8) / 10),  # broadcast along W, not the channels
     r"PRelu_0: PRelu with a slope of shape \[8\] is not supported \(one slope, or one "
     r"per channel \(4\)"),
    (dict(op="PRelu", slope=np.array([0.1, 0.2, 0.3]).reshape(3, 1, 1)),
     r"PRelu_0: PRelu with a slope of shape \[3, 1, 1\] is not supported \(one slope, or one "
     r"per channel \(4\)"),
    (dict(op="Gelu", attrs={"approximate": "fast"}),
     r"Gelu_0: Gelu with approximate='fast' is not supported \('none' or 'tanh'\)"),
    (dict(op="LeakyRelu", quant_after=False),
     r"LeakyRelu_0: the output of LeakyRelu\(alpha=0.01\) is the model's output without a "
     r"Quant; .*add one"),
    (dict(op="Sigmoid", quant_after=False),   # on a map: a table, not a dropped output
     r"Sigmoid_0: the output of Sigmoid\(\) is the model's output without a Quant"),
])
def test_malformed_activation_is_one_line(tmp_path, kw, match):
    _refused_line(_act_model(tmp_path / "bad.onnx", **kw), match)


@pytest.mark.parametrize("shape", [(4, 1, 1), (1, 4, 1, 1)])
def test_prelu_with_a_slope_per_channel_is_a_table_per_channel(tmp_path, shape):
    """PRelu's slope per channel (axis 1): a ``[4, 256]`` table, each row the channel's
    function; equal to qonnx on every input value of every channel."""
    slope = np.array([0.0, 0.1, -0.25, 0.5]).reshape(shape)
    path = _act_model(tmp_path / "p.onnx", "PRelu", {}, slope=slope)
    net = from_qonnx(path, name="p")
    assert net.nodes["PRelu_0"].table.shape == (4, 256)
    a = agreement(path, net, _grid_input())
    assert [r["identical"] for r in a["layers"]] == [1.0, 1.0]


def test_activation_on_an_unquantized_layer_output_is_one_line(tmp_path):
    """A table reads a quantized tensor: a LeakyRelu straight on a conv's accumulator (no Quant
    before it) is refused by name, with what to add."""
    path = _model(tmp_path / "m.onnx")
    m = onnx.load(str(path))
    for n in m.graph.node:
        if n.op_type == "Relu":
            n.op_type = "LeakyRelu"
    onnx.save(m, str(path))
    _refused_line(path, r"LeakyRelu_0: LeakyRelu on the output of Conv_0 without a Quant before "
                        r"it is not supported \(.*add a Quant before it")
