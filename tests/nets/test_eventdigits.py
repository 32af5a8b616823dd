import copy

import pytest
import torch

from models.nets.eventdigits import INPUT_SHAPE, build_eventdigits, shift_augment
from models.ops import node_ops
from models.sparse import SparseTensor


def _random_maps(n, seed, density=0.3):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(n, 1, 34, 34, generator=g) < density
    return torch.rand(n, *INPUT_SHAPE, generator=g) * m


def _quantized(fmt, seed=0):
    torch.manual_seed(seed)
    net = build_eventdigits()
    net.train()
    for i in range(3):  # BatchNorm statistics
        net(SparseTensor.from_dense(_random_maps(8, 100 + i)))
    net.eval().fold_bn()
    net.calibrate([SparseTensor.from_dense(_random_maps(4, 7))])
    net.set_formats(fmt)
    return net


def test_float_forward_shapes_and_gradients():
    net = build_eventdigits()
    x = SparseTensor.from_dense(_random_maps(3, 0))
    out = net(x)
    assert out.shape == (3, 10)
    out.square().sum().backward()
    assert net.nodes["stem"].weight.grad.abs().sum() > 0
    env = net(x, return_all=True)
    assert env["dw1"].spatial_shape == (17, 17) and env["dw3"].spatial_shape == (9, 9)
    assert env["dw5"].spatial_shape == (5, 5)


@pytest.mark.parametrize("fmt", ["int8", "dybit4"])
def test_int_model_matches_qgraph_golden_model(fmt):
    net = _quantized(fmt)
    x = _random_maps(4, 11)
    x[2] = 0  # an empty frame
    st = SparseTensor.from_dense(x.double())
    graph = net.to_qgraph(SparseTensor.from_dense(x[:1]))
    assert {n.op for n in graph.nodes} <= set(node_ops())
    assert [n.name for n in graph.compute_nodes()][-1] == "fc"
    assert graph.node("dw1").stride == 2 and graph.node("dw1").groups == 16
    m = copy.deepcopy(net).double().set_mode("int")
    qin = m.quantize_input(st)
    env = m(qin, return_all=True)
    logits = env["fc"]
    assert logits.dtype == torch.int64
    # empty frame: pooled features 0, logits are the bias
    assert torch.equal(logits[2], torch.from_numpy(graph.node("fc").bias))
    for b in range(4):  # frame 2 is empty
        coords, feats = qin.frame(b)
        ref = graph.run_frame_all(coords, feats)
        for name in ("stem", "dw1", "add1", "dw3", "pw3"):
            c, f = env[name].frame(b)
            assert torch.equal(ref[name][0], c), name
            assert torch.equal(ref[name][1], f), name
        assert torch.equal(ref["fc"][1][0], logits[b])
    # the fake-quant model (float64) agrees exactly with the integer one up to the scales
    mf = copy.deepcopy(net).double().set_mode("fake")
    envf = mf(st, return_all=True)
    for name in ("stem", "add1", "gap"):
        got = envf[name] if name == "gap" else envf[name].feats
        want = env[name] if name == "gap" else env[name].feats
        assert torch.equal(got, want.double() * mf.nodes[name].out_scale), name


def test_registered_in_zoo():
    from models.zoo import model_names, spec

    assert "eventdigits" in model_names()
    s = spec("eventdigits")
    assert s.sparse
    st = s.to_input(_random_maps(2, 3))
    assert isinstance(st, SparseTensor) and st.num_channels == 2


def test_shift_augment():
    x = torch.zeros(50, 2, 34, 34)
    x[:, :, 10, 20] = 1.0
    out = shift_augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.equal(out.sum((1, 2, 3)), x.sum((1, 2, 3)))
    pos = out[:, 0].flatten(1).argmax(1)
    ys, xs = pos // 34, pos % 34
    assert ys.min() >= 8 and ys.max() <= 12 and xs.min() >= 18 and xs.max() <= 22
    assert len(set(zip(ys.tolist(), xs.tolist(), strict=True))) > 5


@pytest.mark.slow
def test_training_reaches_accuracy(tmp_path):
    from models.train import TrainConfig, train

    metrics = train(TrainConfig(model="eventdigits", epochs=6), tmp_path / "run", progress=False)
    assert metrics["accuracy"] > 0.8
    assert metrics["integer_accuracy"] > 0.75
