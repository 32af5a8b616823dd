"""Standard networks written in plain PyTorch from their published definitions, through the
front end: float-equivalent QNet, integer golden model equal to the quantized module."""

import importlib.util
from pathlib import Path

import torch

from models.frontends import from_torch, quantize

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mobilenet_v1_025_imports_exactly():
    ex = _example("mobilenet_v1")
    m = ex.build()
    # the published structure: stem + 13 separable blocks, 0.25 width, 2 classes
    convs = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
    assert len(convs) == 27 and convs[-1].out_channels == 256 and m.classifier.out_features == 2
    net = from_torch(m, name="mobilenet")
    assert len(net.layers()) == 28  # 27 convs + the classifier (BN and ReLU folded)
    x = torch.from_numpy(ex.calib(n=8, size=32))  # any size: a small one keeps the test fast
    net.set_mode("float")
    torch.testing.assert_close(net(x), m(x), rtol=1e-4, atol=1e-4)
    g = quantize(net, x, formats="int8")
    net.set_mode("int")
    xi = net.quantize_input(x[:2].double())
    out = net(xi)
    coords = torch.nonzero(torch.ones(32, 32, dtype=torch.bool))
    for b in range(2):
        assert torch.equal(g.run_frame(coords, xi[b].reshape(3, -1).t())[1][0], out[b].long())


def test_see_d_sparse_backbone_imports_exactly():
    from models.sparse import SparseTensor

    ex = _example("seed_eye")
    m = ex.build()
    net = from_torch(m, name="seed")
    assert net.sparse and len(net.layers()) == 23
    kinds = [type(v).__name__ for v in net.nodes.values()]
    assert kinds.count("SparseAdd") == 4 and kinds[-1] == "SparseGlobalAvgPool"
    x = torch.zeros(3, 3, 60, 80)
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(3, 60, 80, generator=gen) < 0.2
    x[:, :2][mask[:, None].expand(-1, 2, -1, -1)] = torch.randint(
        1, 4, (int(mask.sum()) * 2,), generator=gen).float()
    x[:, 2] = x[:, :2].sum(1)
    st = SparseTensor.from_dense(x)
    net.set_mode("float")
    torch.testing.assert_close(net(st), m(st))
    g = quantize(net, [st], formats="int8")
    assert g.output.op == "gap" and g.output.out_shape == (64, 1, 1)
    net.set_mode("int")
    xi = net.quantize_input(SparseTensor.from_dense(x.double()))
    out = net(xi)
    for b in range(3):
        _, feats = g.run_frame(*xi.frame(b))
        assert torch.equal(feats[0], out[b].long())


def test_autoencoder_mlp_imports_exactly():
    """A network of linear layers only (MLPerf Tiny's anomaly-detection autoencoder): its vector
    input is one site of 640 channels; BatchNorm1d folds into the linear layer before it."""
    ex = _example("autoencoder")
    m = ex.build()
    net = from_torch(m, name="ae", nonneg_input=False)
    assert len(net.layers()) == 10  # BN and ReLU folded
    x = torch.from_numpy(ex.calib(n=16))
    net.set_mode("float")
    torch.testing.assert_close(net(x), m(x), rtol=1e-4, atol=1e-4)
    g = quantize(net, x, formats="int8")
    assert [n.op for n in g.nodes] == ["input"] + ["linear"] * 10
    assert g.input.out_shape == (640, 1, 1) and g.output.out_shape == (640, 1, 1)
    assert not g.output.requant and all(n.requant and n.lo == 0 for n in g.nodes[1:-1])
    net.set_mode("int")
    xi = net.quantize_input(x[:4].double())
    out = net(xi)
    for b in range(4):
        coords, feats = g.run_frame(torch.zeros((1, 2), dtype=torch.int64), xi[b].reshape(1, -1))
        assert coords.tolist() == [[0, 0]] and torch.equal(feats[0], out[b].long())


def test_batchnorm1d_must_follow_a_linear_layer():
    import pytest

    from models.frontends import FrontendError

    m = torch.nn.Sequential(torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
    with pytest.raises(FrontendError, match="BatchNorm1d not right after a linear layer"):
        from_torch(m.eval())


def test_resnet8_cifar_imports_exactly():
    """MLPerf Tiny's ResNet-8: three basic blocks, the 2nd and 3rd with 1x1 stride-2 projection
    shortcuts; float QNet = module, integer golden model = quantized module, bit for bit."""
    ex = _example("resnet_cifar")
    m = ex.build()
    net = from_torch(m, name="resnet8")
    assert len(net.layers()) == 10  # stem, 2 x 3 block convs, 2 projections, the classifier
    x = torch.from_numpy(ex.calib(n=6))
    net.set_mode("float")
    torch.testing.assert_close(net(x), m(x), rtol=1e-4, atol=1e-4)
    g = quantize(net, x, formats="int8")
    proj = [n for n in g.nodes if n.op == "conv" and n.kernel == 1]
    assert [(n.stride, n.in_shape, n.out_shape) for n in proj] == [
        (2, (16, 32, 32), (32, 16, 16)), (2, (32, 16, 16), (64, 8, 8))]
    assert sum(n.op == "add" for n in g.nodes) == 3
    net.set_mode("int")
    xi = net.quantize_input(x[:2].double())
    out = net(xi)
    coords = torch.nonzero(torch.ones(32, 32, dtype=torch.bool))
    for b in range(2):
        assert torch.equal(g.run_frame(coords, xi[b].reshape(3, -1).t())[1][0], out[b].long())


def test_lenet5_imports_exactly():
    """LeNet-5: two 5x5 convs with padding 0 (a window conv and a crop each), max pools, and a
    dense head over the flattened 16 x 5 x 5 map; float-equivalent, golden == integer mode."""
    ex = _example("lenet5")
    torch.manual_seed(0)
    m = ex.LeNet5().eval()  # seeded weights: the structure is what is checked here
    net = from_torch(m, name="lenet5")
    kinds = [type(v).__name__ for v in net.nodes.values()]
    assert kinds == ["QInput", "QConv2d", "QCrop", "QMaxPool2d", "QConv2d", "QCrop",
                     "QMaxPool2d", "QFlatten", "QLinear", "QLinear", "QLinear"]
    x = torch.rand(16, 1, 32, 32)
    net.set_mode("float")
    torch.testing.assert_close(net(x), m(x), rtol=1e-4, atol=1e-4)
    g = quantize(net, x, formats="int8")
    shapes = {n.name: n.out_shape for n in g.nodes}
    assert shapes["conv1_crop"] == (6, 28, 28) and shapes["flatten"] == (400, 1, 1)
    net.set_mode("int")
    xi = net.quantize_input(x[:3].double())
    out = net(xi)
    coords = torch.nonzero(torch.ones(32, 32, dtype=torch.bool))
    for b in range(3):
        assert torch.equal(g.run_frame(coords, xi[b].reshape(1, -1).t())[1][0], out[b].long())


def test_ds_cnn_imports_exactly():
    """DS-CNN: the 10x4 / 2 stem after TensorFlow-style zero padding (4 above, 5 below, 1 each
    side) is the centred 11x5 window conv with the taps at the same offsets; float-equivalent,
    golden == integer mode."""
    ex = _example("ds_cnn")
    m = ex.build()
    net = from_torch(m, name="dscnn", nonneg_input=False)
    assert len(net.layers()) == 10  # stem, 4 x (dw, pw), fc
    stem = net.nodes["stem"]
    assert tuple(stem.weight.shape[-2:]) == (11, 5)
    x = torch.from_numpy(ex.calib(n=24))
    net.set_mode("float")
    torch.testing.assert_close(net(x), m(x), rtol=1e-4, atol=1e-4)
    g = quantize(net, x[:16], formats="int8")
    s = g.node("stem")
    assert (s.kernel, s.kernel_w, s.stride, s.out_shape) == (11, 5, 2, (64, 25, 5))
    net.set_mode("int")
    xi = net.quantize_input(x[16:19].double())
    out = net(xi)
    coords = torch.nonzero(torch.ones(49, 10, dtype=torch.bool))
    for b in range(3):
        assert torch.equal(g.run_frame(coords, xi[b].reshape(1, -1).t())[1][0], out[b].long())


def test_padding_the_centred_window_cannot_match_is_refused():
    """A padding whose centred window would change the output size is refused at the first map,
    in one line."""
    import pytest

    from models.frontends import FrontendError

    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c = torch.nn.Conv2d(1, 2, (4, 4), stride=1)   # no padding: 8 -> 5

        def forward(self, x):
            return self.c(torch.nn.functional.pad(x, (0, 0, 0, 0))).mean((2, 3))

    net = from_torch(Odd(), name="odd")
    with pytest.raises(ValueError, match="centred 7x7 window gives 8x8"):
        net.set_mode("float")(torch.zeros(1, 1, 8, 8))
    with pytest.raises(FrontendError, match="not right before a Conv2d"):
        class Pad(torch.nn.Module):
            def forward(self, x):
                return torch.nn.functional.pad(x, (1, 1, 1, 1)).mean((2, 3))
        from_torch(Pad())
