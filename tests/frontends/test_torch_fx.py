"""PyTorch front end: plain modules traced into QNet, float-equivalent, integer-exact export."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.frontends import FrontendError, from_torch, quantize


class LeNetish(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 8, 3, padding="same")
        self.bn2 = nn.BatchNorm2d(8)
        self.conv3 = nn.Conv2d(8, 16, 1)
        self.drop = nn.Dropout(0.2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        y = self.bn2(self.conv2(x))
        x = torch.relu(x + y)
        x = F.max_pool2d(torch.relu(self.conv3(x)), 2)
        return self.fc(torch.flatten(self.gap(self.drop(x)), 1))


def _trained_bn(m):
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.1, 0.1)
    return m.eval()


def test_float_graph_computes_the_module():
    torch.manual_seed(0)
    m = _trained_bn(LeNetish())
    net = from_torch(m, name="lenet")
    assert [type(v).__name__ for v in net.nodes.values()] == [
        "QInput", "QConv2d", "QMaxPool2d", "QConv2d", "QAdd", "QConv2d", "QMaxPool2d",
        "QGlobalAvgPool", "QLinear"]
    x = torch.rand(4, 1, 16, 16)
    net.set_mode("float")
    torch.testing.assert_close(net(x), m(x), rtol=1e-5, atol=1e-5)


def test_quantized_golden_is_the_integer_model():
    torch.manual_seed(1)
    m = _trained_bn(LeNetish())
    net = from_torch(m, name="lenet")
    x = torch.rand(32, 1, 16, 16)
    g = quantize(net, x, formats="int8")
    assert [n.op for n in g.nodes][-3:] == ["maxpool", "gap", "linear"]
    assert not g.output.requant  # raw logits
    net.set_mode("int")
    xi = net.quantize_input(x[:6])
    out = net(xi)
    coords = torch.tensor([(y, xx) for y in range(16) for xx in range(16)])
    for b in range(6):
        _, logits = g.run_frame(coords, xi[b].reshape(1, -1).t())
        assert torch.equal(logits[0], out[b].long())
    # the quantized model agrees with the float module on most inputs
    net.set_mode("fake")
    agree = (net(x).argmax(1) == m(x).argmax(1)).float().mean()
    assert agree >= 0.8, agree


@pytest.mark.parametrize("module,match", [
    (nn.Sequential(nn.Conv2d(1, 4, 9, padding=4)), r"Conv2d with kernel \(9, 9\)"),
    (nn.Sequential(nn.Conv2d(1, 4, 3, stride=2)), r"padding 0 and stride \(2, 2\)"),
    (nn.Sequential(nn.Conv2d(1, 4, 5, padding=1)), r"Conv2d 5x5 with padding \(1, 1\)"),
    (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Threshold(0.1, 2.0)), r"Threshold\)"),
    (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AvgPool2d(3)), r"AvgPool2d\(kernel=3"),
    (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Linear(8, 10)), "Linear on a spatial map"),
    (nn.Sequential(nn.ReLU(), nn.Conv2d(1, 4, 3, padding=1)), "ReLU not right after"),
    # a dilated conv is named by its dilation, whatever padding it has (its 'same' padding 2
    # was reported as the unsupported part), and so is a non-zero padding mode
    (nn.Sequential(nn.Conv2d(1, 4, 3, padding=2, dilation=2)), r"dilation \(2, 2\)"),
    (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, dilation=2)), r"dilation \(2, 2\)"),
    (nn.Sequential(nn.Conv2d(1, 4, (1, 3), padding=(0, 2), dilation=(1, 2))),
     r"dilation \(1, 2\)"),
    (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular")),
     "padding mode 'circular'"),
])
def test_unsupported_is_one_line_naming_node_type_and_list(module, match):
    with pytest.raises(FrontendError, match=match) as e:
        from_torch(module)
    msg = str(e.value)
    assert "\n" not in msg and "supported:" in msg and "MaxPool2d(2)" in msg


def test_untraceable_module_is_one_line():
    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(FrontendError, match="torch.fx cannot trace Branchy") as e:
        from_torch(Branchy())
    assert "\n" not in str(e.value)


def test_relu6_and_hardtanh_are_output_clamps():
    """ReLU6 / Hardtanh fold into the layer before them: the float model clamps, the integer
    model's output clamp narrows to the range on the output scale; golden == integer mode."""
    import torch.nn.functional as F

    from models.frontends import quantize

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = torch.nn.Conv2d(2, 8, 3, padding=1)
            self.a1 = torch.nn.ReLU6()
            self.c2 = torch.nn.Conv2d(8, 8, 1)
            self.fc = torch.nn.Linear(8, 4)

        def forward(self, x):
            y = F.hardtanh(self.c2(self.a1(self.c1(x))), -0.5, 0.5)
            return self.fc(y.mean((2, 3)))

    torch.manual_seed(0)
    m = Net().eval()
    with torch.no_grad():
        m.c1.weight.mul_(8)  # drive the stem well past 6 so the clamp binds
    net = from_torch(m)
    assert net.nodes["c1"].clip == (0.0, 6.0) and net.nodes["c2"].clip == (-0.5, 0.5)
    x = torch.rand(6, 2, 8, 8)
    net.set_mode("float")
    torch.testing.assert_close(net(x), m(x), rtol=1e-5, atol=1e-5)
    g = quantize(net, x, formats="int8")
    c1, c2 = g.node("c1"), g.node("c2")
    s1, s2 = c1.out_scale, c2.out_scale
    assert c1.lo == 0 and c1.hi == min(127, int(6 / s1)) and c1.hi * s1 <= 6
    assert c2.lo == -min(127, int(0.5 / s2)) and c2.hi == min(127, int(0.5 / s2))
    net.set_mode("int")
    xi = net.quantize_input(x.double())
    env = net(xi, return_all=True)
    assert int(env["c1"].max()) <= c1.hi and int(env["c2"].min()) >= c2.lo
    coords = torch.nonzero(torch.ones(8, 8, dtype=torch.bool))
    for b in range(len(x)):
        assert torch.equal(g.run_frame(coords, xi[b].reshape(2, -1).t())[1][0],
                           env["fc"][b].long())


def _net(forward):
    """A conv, a second conv and a linear layer, ``forward(self, x)`` wiring them."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 4, 3, padding=1)
            self.c2 = nn.Conv2d(4, 4, 3, padding=1)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return forward(self, x)

    torch.manual_seed(4)
    return Net().eval()


def _hardware_is_golden(net, g, x, *, frames: int, seed: int):
    """The composed hardware of ``g`` (2 lanes, pe 2), in amaranth.sim under stalls 0.3, equals
    the golden model on ``frames`` of the dense inputs ``x``, and the golden model the QNet's
    integer mode."""
    from contract.point import DesignPoint
    from hw.compose import Network
    from hw.sim import run_stream

    with net.in_mode("int"):
        xi = net.quantize_input(x.double())
        out = net(xi)
    c, h, w = x.shape[1:]
    coords = [(y, xx) for y in range(h) for xx in range(w)]
    stream = [(coords, xi[b].reshape(c, -1).t().tolist()) for b in range(frames)]
    got, _ = run_stream(Network(g, DesignPoint.default(g, model=g.name, lanes=2, pe=2)), stream,
                        idle=0.3, stall=0.3, seed=seed, max_cycles=200_000)
    for b, ((cs, f), o) in enumerate(zip(stream, got, strict=True)):
        oc, of = g.run_frame(cs, f)
        assert o == ([tuple(v) for v in oc.tolist()], of.tolist())
        assert of.tolist() == [out[b].long().tolist()]


def _refused(module, match):
    """``module`` is refused with one line matching ``match``."""
    with pytest.raises(FrontendError, match=match) as e:
        from_torch(module, example=torch.rand(2, 1, 8, 8))
    assert "\n" not in str(e.value)
    return str(e.value)


@pytest.mark.parametrize("act,clip,relu", [
    (lambda y: y.clamp(min=0), None, True),
    (lambda y: torch.clamp(y, 0, 6), (0.0, 6.0), False),
    (lambda y: torch.clip(y, min=-1.0, max=1.0), (-1.0, 1.0), False),
])
def test_clamp_is_the_relu_or_the_output_clamp(act, clip, relu):
    m = _net(lambda m, x: m.fc(act(m.c(x)).mean((2, 3))))
    net = from_torch(m)
    conv = net.nodes["c"]
    assert conv.clip == clip and bool(conv.relu) == relu
    x = torch.randn(6, 1, 8, 8)
    net.set_mode("float")
    torch.testing.assert_close(net(x), m(x), rtol=1e-5, atol=1e-5)


def test_a_one_sided_clamp_is_one_line():
    _refused(_net(lambda m, x: m.c(x).clamp(max=6).mean((2, 3))), r"clamp\(min=None, max=6\)")


def test_clamp_must_follow_a_layer():
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                            torch.nn.ReLU6())
    with pytest.raises(FrontendError, match="ReLU6 not right after a conv or linear layer"):
        from_torch(m.eval())


class DenseHead(nn.Module):
    """conv -> max pool -> flatten (``view``) -> linear -> linear: a dense head over a map."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.fc1 = nn.Linear(4 * 3 * 4, 12)
        self.fc2 = nn.Linear(12, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        x = x.view(x.size(0), -1)
        return self.fc2(F.relu(self.fc1(x)))


def test_dense_head_over_a_map_is_flatten_then_linear():
    """PyTorch flattens channel-major; the integer graph site-major (the stream's order), with the
    linear layer's columns permuted to match: golden == integer mode, bit for bit, and a sparse
    frame's absent sites are zeros in the flattened vector."""
    torch.manual_seed(3)
    m = DenseHead().eval()
    net = from_torch(m, name="dense_head", nonneg_input=False)
    assert [type(v).__name__ for v in net.nodes.values()] == [
        "QInput", "QConv2d", "QMaxPool2d", "QFlatten", "QLinear", "QLinear"]
    x = torch.randn(16, 2, 6, 9)
    net.set_mode("float")
    torch.testing.assert_close(net(x), m(x), rtol=1e-5, atol=1e-5)
    g = quantize(net, x, formats="int8")
    fl = g.node("view")
    assert fl.op == "flatten" and fl.in_shape == (4, 3, 4) and fl.out_shape == (48, 1, 1)
    assert g.node("fc1").in_shape == (48, 1, 1)
    net.set_mode("int")
    xi = net.quantize_input(x.double())
    env = net(xi, return_all=True)
    coords = torch.nonzero(torch.ones(6, 9, dtype=torch.bool))
    for b in range(len(x)):
        out = g.run_frame_all(coords, xi[b].reshape(2, -1).t())
        assert torch.equal(out["fc2"][1][0], env["fc2"][b].long())
        # the flattened vector is the pooled map in site-major order
        pooled = env[fl.inputs[0]][b].long()            # [C, H, W]
        assert torch.equal(out["view"][1][0], pooled.permute(1, 2, 0).reshape(-1))
    # a sparse frame (the same layers taken as a sparse network): its absent sites are zeros in
    # the flattened vector
    assert g.dense
    g = dataclasses.replace(g, dense=False)
    keep = coords[::3]
    sub = g.run_frame_all(keep, xi[0].reshape(2, -1).t()[::3])
    pc, pf = sub[fl.inputs[0]]
    assert 0 < len(pc) < 12
    dense = torch.zeros(3, 4, 4, dtype=torch.int64)
    dense[pc[:, 0], pc[:, 1]] = pf
    assert torch.equal(sub["view"][1][0], dense.reshape(-1))


def test_flatten_of_a_sparse_map_is_refused():
    from models.sparse.layers import SparseConv2d

    class Sparse(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = SparseConv2d(2, 4, 3)
            self.fc = nn.Linear(4 * 16, 3)

        def forward(self, x):
            return self.fc(torch.flatten(self.c(x), 1))

    with pytest.raises(FrontendError, match="flattening a sparse map"):
        from_torch(Sparse())


def test_avgpool_imports_and_its_network_is_bit_exact():
    """AvgPool2d(2) and F.avg_pool2d: float-equivalent graph, golden == integer mode, and the
    composed hardware (avg pool, its output FIFO, the next conv) equals the golden model in
    amaranth.sim under stalls."""
    from contract.point import DesignPoint
    from hw.compose import Network
    from hw.sim import run_stream

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(2, 4, 3, padding=1)
            self.pool = nn.AvgPool2d(2)
            self.c2 = nn.Conv2d(4, 4, 3, padding=1)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            x = self.pool(F.relu(self.c1(x)))
            x = F.avg_pool2d(F.relu(self.c2(x)), 2)
            return self.fc(x.mean((2, 3)))

    torch.manual_seed(5)
    m = Net().eval()
    net = from_torch(m, name="avg")
    assert [type(v).__name__ for v in net.nodes.values()].count("QAvgPool2d") == 2
    x = torch.rand(12, 2, 8, 8)
    net.set_mode("float")
    torch.testing.assert_close(net(x), m(x), rtol=1e-5, atol=1e-5)
    g = quantize(net, x, formats="int8")
    assert [n.op for n in g.nodes].count("avgpool") == 2
    net.set_mode("int")
    xi = net.quantize_input(x.double())
    out = net(xi)
    coords = [(y, xx) for y in range(8) for xx in range(8)]
    frames = []
    for b in range(3):
        f = xi[b].reshape(2, -1).t()
        assert torch.equal(g.run_frame(torch.tensor(coords), f)[1][0], out[b].long())
        frames.append((coords, f.tolist()))
    got, _ = run_stream(Network(g, DesignPoint.default(g, model="avg", lanes=2, pe=2)), frames,
                        idle=0.3, stall=0.3, seed=2, max_cycles=100_000)
    for (c, f), o in zip(frames, got, strict=True):
        oc, of = g.run_frame(c, f)
        assert o == ([tuple(v) for v in oc.tolist()], of.tolist())


def test_grouped_conv_is_the_block_diagonal_full_conv():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(4, 8, 3, padding=1)
            self.g = nn.Conv2d(8, 8, 3, padding=1, groups=4)
            self.g1 = nn.Conv2d(8, 16, 1, groups=2)
            self.fc = nn.Linear(16, 3)

        def forward(self, x):
            x = F.relu(self.g(F.relu(self.c1(x))))
            return self.fc(F.relu(self.g1(x)).mean((2, 3)))

    torch.manual_seed(4)
    m = Net().eval()
    net = from_torch(m, name="grouped")
    w = net.nodes["g"].weight
    assert w.shape == (8, 8, 3, 3) and float(w[0:2, 2:].abs().sum()) == 0.0
    x = torch.randn(8, 4, 6, 6)
    net.set_mode("float")
    torch.testing.assert_close(net(x), m(x), rtol=1e-5, atol=1e-5)
    g = quantize(net, x, formats="int8")
    net.set_mode("int")
    xi = net.quantize_input(x.double())
    out = net(xi)
    coords = torch.nonzero(torch.ones(6, 6, dtype=torch.bool))
    for b in range(3):
        assert torch.equal(g.run_frame(coords, xi[b].reshape(4, -1).t())[1][0], out[b].long())


@pytest.mark.parametrize("lanes,pe", [(2, 2), (4, 4), (1, 3)])
def test_concat_branches_share_a_scale_and_the_network_is_bit_exact(lanes, pe):
    """An Inception-style join: torch.cat of a 1x1 and a 3x3 branch (6 + 4 channels). The
    branches share one output scale (exact concatenation), golden == integer mode, and the
    composed hardware (fork, skip FIFO, width converters to the join's lanes, hw.concat) equals
    the golden model in amaranth.sim under stalls."""
    from contract.point import DesignPoint
    from hw.compose import Network
    from hw.sim import run_stream

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(2, 4, 3, padding=1)
            self.a = nn.Conv2d(4, 6, 1)
            self.b = nn.Conv2d(4, 4, 3, padding=1)
            self.c2 = nn.Conv2d(10, 4, 1)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            x = F.relu(self.c1(x))
            x = torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], dim=1)
            return self.fc(F.relu(self.c2(x)).mean((2, 3)))

    torch.manual_seed(6)
    m = Net().eval()
    net = from_torch(m, name="cat")
    x = torch.rand(10, 2, 5, 6)
    net.set_mode("float")
    torch.testing.assert_close(net(x), m(x), rtol=1e-5, atol=1e-5)
    g = quantize(net, x, formats="int8")
    cat = next(n for n in g.nodes if n.op == "concat")
    assert cat.out_shape == (10, 5, 6)
    assert g.node("a").out_scale == g.node("b").out_scale
    net.set_mode("int")
    xi = net.quantize_input(x.double())
    out = net(xi)
    coords = [(y, xx) for y in range(5) for xx in range(6)]
    frames = []
    for k in range(3):
        f = xi[k].reshape(2, -1).t()
        assert torch.equal(g.run_frame(torch.tensor(coords), f)[1][0], out[k].long())
        frames.append((coords, f.tolist()))
    # the dense network's hardware on its dense frames, and the same layers taken as a sparse
    # network on a sparse frame too
    point = DesignPoint.default(g, model="cat", lanes=lanes, pe=pe)
    got, _ = run_stream(Network(g, point), frames, idle=0.3, stall=0.3, seed=lanes,
                        max_cycles=200_000)
    for (c, f), o in zip(frames, got, strict=True):
        oc, of = g.run_frame(c, f)
        assert o == ([tuple(v) for v in oc.tolist()], of.tolist())
    g = dataclasses.replace(g, dense=False)
    frames.append((coords[::4], [f[:] for f in frames[0][1][::4]]))  # a sparse frame
    got, _ = run_stream(Network(g, point), frames, idle=0.3, stall=0.3, seed=lanes,
                        max_cycles=200_000)
    for (c, f), o in zip(frames, got, strict=True):
        oc, of = g.run_frame(c, f)
        assert o == ([tuple(v) for v in oc.tolist()], of.tolist())


class _Classifier(nn.Module):
    """conv -> pool -> conv; ``head`` picks how the map becomes the logits (the idioms users
    write for the global pool, the flatten and a softmax output)."""

    def __init__(self, head):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 6, 3, padding=1)
        self.fc = nn.Linear(6, 3)
        self.sm, self.lsm = nn.Softmax(dim=1), nn.LogSoftmax(dim=-1)
        self.head = head

    def forward(self, x):
        y = F.relu(self.c2(F.max_pool2d(F.relu(self.c1(x)), 2)))  # [N, 6, 4, 4]
        h = self.head
        if h == "mean_keepdim":
            return self.fc(y.mean(dim=(2, 3), keepdim=True).flatten(1))
        if h == "mean_negative":
            return self.fc(torch.mean(y, dim=[-1, -2]))
        if h == "avgpool_whole_map":       # a CIFAR ResNet's F.avg_pool2d(out, 4)
            return self.fc(F.avg_pool2d(y, 4).view(y.size(0), -1))
        if h == "avgpool_module_whole_map":
            return self.fc(nn.functional.avg_pool2d(y, (4, 4), stride=4).view(y.shape[0], -1))
        if h == "squeeze":
            return self.fc(F.adaptive_avg_pool2d(y, (1, 1)).squeeze(-1).squeeze(-1))
        if h == "softmax":
            return F.softmax(self.fc(y.mean((2, 3))), dim=1)
        if h == "log_softmax_method":
            return self.fc(y.mean((2, 3))).log_softmax(-1)
        if h == "softmax_module":
            return self.sm(self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1)))
        if h == "log_softmax_module":
            return self.lsm(self.fc(y.mean((2, 3))))
        raise AssertionError(h)


@pytest.mark.parametrize("head", ["mean_keepdim", "mean_negative", "avgpool_whole_map",
                                  "avgpool_module_whole_map", "squeeze", "softmax",
                                  "log_softmax_method", "softmax_module", "log_softmax_module"])
def test_common_head_idioms_are_the_global_pool_and_the_logits(head):
    """Each idiom imports as conv, pool, conv, global pool, linear; a trailing (log-)softmax is
    dropped (decision: the accelerator emits the logits, whose argmax is the softmax's). Float
    mode computes the module's logits (its output before a softmax) to float rounding."""
    torch.manual_seed(11)
    m = _Classifier(head).eval()
    x = torch.rand(8, 1, 8, 8)
    net = from_torch(m, name=head, example=x[:2])
    assert [type(v).__name__ for v in net.nodes.values()] == [
        "QInput", "QConv2d", "QMaxPool2d", "QConv2d", "QGlobalAvgPool", "QLinear"]
    net.set_mode("float")
    with torch.no_grad():
        ref = m(x)
        logits = m.fc(F.relu(m.c2(F.max_pool2d(F.relu(m.c1(x)), 2))).mean((2, 3)))
    torch.testing.assert_close(net(x), logits, rtol=1e-5, atol=1e-5)
    assert torch.equal(net(x).argmax(1), ref.argmax(1))


@pytest.mark.parametrize("forward,match", [
    # a softmax that is not the output, or not over the classes
    (lambda m, x: m.fc(F.softmax(m.c(x), dim=1).mean((2, 3))), "softmax over dim 1 of a map"),
    (lambda m, x: F.relu(F.softmax(m.fc(m.c(x).mean((2, 3))), dim=1)),
     "softmax not as the module's output"),
    (lambda m, x: F.softmax(m.fc(m.c(x).mean((2, 3))), dim=0), "softmax over dim 0"),
    # a mean that is not over H, W; a squeeze of a map
    (lambda m, x: m.fc(m.c(x).mean(1)), r"mean over dims 1"),
    (lambda m, x: m.fc(m.c(x).mean((1, 2))), r"mean over dims \(1, 2\)"),
    (lambda m, x: m.fc(m.c(x).squeeze(1).mean((1, 2))), "squeeze of a spatial map"),
    # a pool over part of the map is still the 2x2 pool or nothing
    (lambda m, x: m.fc(F.avg_pool2d(m.c(x), 4).mean((2, 3))), r"AvgPool2d\(kernel=4"),
    # preprocessing inside forward() that is not a normalisation: named, with what to do
    (lambda m, x: m.fc(m.c(x * x).mean((2, 3))), "arithmetic .mul. on the input"),
])
def test_head_idioms_outside_their_place_are_one_line(forward, match):
    _refused(_net(forward), match)


@pytest.mark.parametrize("forward,ops", [
    # in-place forms: a ResNet's out.add_(identity), x.relu_() / F.relu_
    (lambda m, x: m.fc(F.relu(m.c2(F.relu(m.c(x))).add_(F.relu(m.c(x)))).mean((2, 3))),
     ["QConv2d", "QConv2d", "QConv2d", "QAdd"]),
    (lambda m, x: m.fc(m.c(x).relu_().mean((2, 3))), ["QConv2d"]),
    (lambda m, x: m.fc(F.relu_(m.c(x)).mean((2, 3))), ["QConv2d"]),
])
def test_in_place_forms_import_as_their_ops(forward, ops):
    m = _net(forward)
    net = from_torch(m)
    assert [type(v).__name__ for v in net.nodes.values()] == \
        ["QInput", *ops, "QGlobalAvgPool", "QLinear"]
    x = torch.rand(4, 1, 8, 8)
    net.set_mode("float")
    torch.testing.assert_close(net(x), m(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("forward", [
    lambda m, x: m.fc(F.avg_pool2d(m.c(x), m.c(x).size()[2:]).flatten(1)),
    lambda m, x: m.fc(F.max_pool2d(m.c(x), kernel_size=x.shape[-1] // 4).mean((2, 3))),
])
def test_a_pool_sized_in_forward_is_one_line(forward):
    """A kernel computed from a traced size crashed the import (TypeError: 'Node' object is not
    iterable)."""
    _refused(_net(forward), "computed in forward")


class _Normalised(nn.Module):
    """An RGB network that normalises its input in forward(), ImageNet-style, from buffers."""

    def __init__(self, how="buffers"):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, 5)
        self.how = how

    def forward(self, x):
        if self.how == "buffers":
            x = (x - self.mean) / self.std
        elif self.how == "inverted":            # an inverted image, then centred
            x = 0.5 - (1.0 - x)
        else:                                   # scalars, as x * 2 - 1
            x = x * 2.0 - 1.0
        x = F.relu(self.c2(F.relu(self.c1(x))))
        return self.fc(x.mean((2, 3)))


@pytest.mark.parametrize("how", ["buffers", "scalars", "inverted"])
def test_an_input_normalisation_folds_into_the_input_quantizer(how):
    """(x - mean) / std in forward() was refused ('function sub'); it is the input quantizer's
    gain and shift, applied before quantizing: the float graph computes the module, the
    quantizer is signed (the normalised input has negatives), the golden model equals integer
    mode, and the quantized network agrees with the module."""
    torch.manual_seed(7)
    m = _Normalised(how).eval()
    x = torch.rand(64, 3, 8, 8)
    net = from_torch(m, name="norm", example=x[:2])   # raw inputs in [0, 1): nonneg_input
    inp = net.input_node
    assert not inp.nonneg                     # the normalised ones are not
    assert inp.gain is not None and inp.gain.numel() == (3 if how == "buffers" else 1)
    if how == "buffers":
        torch.testing.assert_close(inp.gain, 1 / m.std.double().reshape(-1))
        torch.testing.assert_close(inp.shift, -(m.mean / m.std).double().reshape(-1))
    net.set_mode("float")
    torch.testing.assert_close(net(x), m(x), rtol=1e-5, atol=1e-5)
    g = quantize(net, x, formats="int8")
    net.set_mode("int")
    xi = net.quantize_input(x.double())
    assert int(xi.min()) < 0                     # the normalised input is quantized signed
    out = net(xi)
    coords = torch.nonzero(torch.ones(8, 8, dtype=torch.bool))
    for b in range(4):
        _, logits = g.run_frame(coords, xi[b].reshape(3, -1).t())
        assert torch.equal(logits[0], out[b].long())
    net.set_mode("fake")
    assert (net(x).argmax(1) == m(x).argmax(1)).float().mean() >= 0.8


@pytest.mark.parametrize("forward,match", [
    (lambda m, x: m.fc(F.relu(m.c((x - 0.5) / 0.25) + m.c(x)).mean((2, 3))),
     r"the input before its normalisation \(x\) used again"),
    (lambda m, x: m.fc(m.c(1.0 / x).mean((2, 3))), "div of a constant by the input"),
    (lambda m, x: m.fc(m.c(x / 0.0).mean((2, 3))), r"normalisation \(div\) of the input"),
    (lambda m, x: m.fc(m.c(x * torch.ones(3)).mean((2, 3))), r"input by 3 values .*one per input"),
])
def test_a_normalisation_the_quantizer_cannot_take_is_one_line(forward, match):
    _refused(_net(forward), match)


def test_an_in_place_op_whose_result_is_dropped_is_one_line():
    """`out.add_(skip); relu(out)`: torch.fx records the add_ but not that `out` changed, so the
    graph after it reads the conv's value; the add would be lost (here refused by the ReLU's
    fold only by chance; without a ReLU the graph went on without the add)."""
    def forward(m, x):
        out = m.c2(F.relu(m.c(x)))
        out.add_(m.c2(F.relu(m.c(x))))
        return m.fc(out.mean((2, 3)))

    assert "out = out + x" in _refused(_net(forward), "an in-place add_ whose result is not used")


ACTS = [
    (nn.LeakyReLU(0.1), "LeakyReLU"), (nn.LeakyReLU(0.2, inplace=True), "LeakyReLU"),
    (nn.Hardswish(), "Hardswish"), (nn.Hardsigmoid(), "Hardsigmoid"), (nn.SiLU(inplace=True),
                                                                       "SiLU"),
    (nn.Sigmoid(), "Sigmoid"), (nn.Tanh(), "Tanh"), (nn.GELU(approximate="tanh"), "GELU"),
    (nn.ELU(0.5), "ELU"), (nn.Mish(), "Mish"), (nn.Softplus(beta=2.0), "Softplus"),
    (lambda y: F.leaky_relu(y, 0.05, True), "leaky_relu"), (F.hardswish, "hardswish"),
    (F.silu, "silu"), (torch.sigmoid, "sigmoid"), (lambda y: y.tanh(), "tanh"),
    (lambda y: F.gelu(y), "gelu"), (lambda y: F.elu(y, alpha=2.0), "elu"),
]


class _ActNet(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.c = nn.Conv2d(2, 4, 3, padding=1)
        self.act = act if isinstance(act, nn.Module) else None
        self.fn = None if isinstance(act, nn.Module) else act
        self.c2 = nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        y = self.c(x)
        y = self.act(y) if self.act is not None else self.fn(y)
        return self.fc(F.relu(self.c2(y)).mean((2, 3)))


@pytest.mark.parametrize("act,what", ACTS, ids=[f"{w}{i}" for i, (_, w) in enumerate(ACTS)])
def test_an_activation_is_a_table_of_its_quantized_input(act, what):
    """LeakyReLU, Hardswish, SiLU, sigmoid, tanh, GELU, ... after a conv (module or function,
    in-place or not): a QActTable whose float graph is the module's; quantized, its golden model
    is the integer model bit for bit, the fake-quant model is the integer one times the scales,
    and the table is the function on the input grid to half an output step."""
    from models.ops.act import QActTable

    torch.manual_seed(7)
    m = _ActNet(act).eval()
    net = from_torch(m, name="act")
    acts = [k for k, v in net.nodes.items() if isinstance(v, QActTable)]
    assert len(acts) == 1 and what.lower() in net.nodes[acts[0]].what.lower()
    x = torch.randn(16, 2, 6, 6)
    with net.in_mode("float"):
        torch.testing.assert_close(net(x), m(x), rtol=1e-5, atol=1e-5)
    g = quantize(net, x, formats="int8")
    node = g.node(acts[0])
    assert node.op == "act" and len(node.table) == 256
    mod = net.nodes[acts[0]]
    lo, hi = node.lo, node.hi
    q = torch.arange(-128, 128)
    want = (mod.fn(q.double() * node.in_scale) / node.out_scale).clamp(lo, hi)
    got = torch.from_numpy(node.table)[q & 255].double()
    inside = (q >= -127)  # the producer's range: [-127, 127]
    assert float((got - want)[inside].abs().max()) <= 0.5 + 1e-9
    with net.in_mode("int"):
        xi = net.quantize_input(x.double())
        env = net(xi, return_all=True)
    coords = torch.tensor([(y, xx) for y in range(6) for xx in range(6)])
    for b in range(4):
        assert torch.equal(g.run_frame(coords, xi[b].reshape(2, -1).t())[1][0],
                           env["fc"][b].long())
    with net.in_mode("fake"):
        fake = net(x.double(), return_all=True)[acts[0]]
    torch.testing.assert_close(fake, env[acts[0]].double() * node.out_scale, rtol=0, atol=1e-12)


def test_an_activation_network_is_bit_exact_in_hardware_and_pickles():
    """Three tables in one network (Hardswish, LeakyReLU after a depthwise conv, SiLU after a 1x1)
    and a max pool between: the composed hardware equals the golden model in amaranth.sim under
    stalls; the QNet, which a user model's checkpoint holds, survives pickling."""
    import io

    from contract.point import DesignPoint
    from hw.compose import Network
    from hw.sim import run_stream

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(2, 4, 3, padding=1)
            self.act = nn.Hardswish(inplace=True)
            self.c2 = nn.Conv2d(4, 4, 3, padding=1, groups=4)
            self.c3 = nn.Conv2d(4, 8, 1)
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            x = self.act(self.c1(x))
            x = F.max_pool2d(F.leaky_relu(self.c2(x), 0.1), 2)
            return self.fc(F.silu(self.c3(x)).mean((2, 3)))

    torch.manual_seed(8)
    m = Net().eval()
    net = from_torch(m, name="acts")
    x = torch.randn(12, 2, 8, 8)
    g = quantize(net, x, formats="int8")
    assert [n.op for n in g.nodes].count("act") == 3
    buf = io.BytesIO()
    torch.save(net, buf)
    buf.seek(0)
    again = torch.load(buf, weights_only=False)
    with net.in_mode("int"), again.in_mode("int"):
        xi = net.quantize_input(x.double())
        out = net(xi)
        assert torch.equal(again(xi), out)
    coords = [(y, xx) for y in range(8) for xx in range(8)]
    frames = [(coords, xi[b].reshape(2, -1).t().tolist()) for b in range(3)]
    got, _ = run_stream(Network(g, DesignPoint.default(g, model="acts", lanes=2, pe=2)), frames,
                        idle=0.3, stall=0.3, seed=3, max_cycles=100_000)
    for b, ((c, f), o) in enumerate(zip(frames, got, strict=True)):
        oc, of = g.run_frame(c, f)
        assert o == ([tuple(v) for v in oc.tolist()], of.tolist())
        assert of.tolist() == [out[b].long().tolist()]


def test_a_sigmoid_or_tanh_on_the_logits_is_dropped_as_the_output():
    """An increasing function of each logit as the output: dropped (the class is the logits'
    argmax), as a softmax is; the traced-graph check applies it again."""
    for fn, name in ((torch.sigmoid, "sigmoid"), (lambda y: y.tanh(), "tanh")):
        m = _net(lambda m, x, fn=fn: fn(m.fc(m.c(x).mean((2, 3)))))
        net = from_torch(m)
        assert net.dropped_output == name
        assert not any(type(v).__name__ == "QActTable" for v in net.nodes.values())
    # not as the output: a table (here over the pooled vector before the classifier)
    m = _net(lambda m, x: m.fc(torch.sigmoid(m.c(x).mean((2, 3)))))
    net = from_torch(m)
    assert net.dropped_output is None
    assert [type(v).__name__ for v in net.nodes.values()][-2:] == ["QActTable", "QLinear"]


def test_an_activation_with_a_computed_parameter_is_one_line():
    _refused(_net(lambda m, x: m.fc(F.leaky_relu(m.c(x), x.shape[2] * 0.01).mean((2, 3)))),
             "leaky_relu with a parameter computed in forward")


@pytest.mark.parametrize("forward", [
    lambda m, x: m.fc(F.relu(m.c2((lambda y: y * torch.sigmoid(y))(m.c(x)))).mean((2, 3))),
    lambda m, x: m.fc(F.relu(m.c2((lambda y: y * y.sigmoid())(m.c(x)))).mean((2, 3))),
    lambda m, x: m.fc(F.relu(m.c2((lambda y: F.hardsigmoid(y) * y)(m.c(x)))).mean((2, 3))),
])
def test_x_times_an_activation_of_x_is_one_table(forward):
    """A swish written out (``y * torch.sigmoid(y)``, ``F.hardsigmoid(y) * y``): one table of
    the product, the float graph the module's; a product of two different maps stays refused."""
    from models.ops.act import QActTable

    m = _net(forward)
    net = from_torch(m)
    x = torch.randn(8, 1, 8, 8)
    with net.in_mode("float"):
        torch.testing.assert_close(net(x), m(x), rtol=1e-5, atol=1e-5)
    tables = [v for v in net.nodes.values() if isinstance(v, QActTable)]
    assert len(tables) == 1 and tables[0].what.startswith("x * ")
    g = quantize(net, x, formats="int8")
    assert [n.op for n in g.nodes] == ["input", "conv", "act", "conv", "gap", "linear"]
    # a product of two maps that are not x and f(x): refused
    _refused(_net(lambda m, x: m.fc((m.c(x) * torch.sigmoid(m.c(x))).mean((2, 3)))),
             "function mul")


@pytest.mark.parametrize("functional", [False, True])
def test_prelu_is_a_table_per_channel_and_bit_exact_in_hardware(functional):
    """nn.PReLU(C) (and F.prelu with the module's weight): a table per channel, ``[C, 256]``;
    the float graph is the module's, the golden model the integer one, and the composed hardware
    (2 lanes: each lane's ROM holds two channels' tables) the golden model under stalls."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(2, 4, 3, padding=1)
            self.act = nn.PReLU(4)
            self.c2 = nn.Conv2d(4, 4, 1)
            self.fc = nn.Linear(4, 3)
            with torch.no_grad():
                self.act.weight.copy_(torch.tensor([0.0, 0.1, 0.25, -0.5]))

        def forward(self, x):
            y = self.c(x)
            y = F.prelu(y, self.act.weight) if functional else self.act(y)
            return self.fc(F.relu(self.c2(y)).mean((2, 3)))

    torch.manual_seed(9)
    m = Net().eval()
    x = torch.randn(12, 2, 6, 6)
    net = from_torch(m, name="prelu", example=x[:2])
    with net.in_mode("float"):
        torch.testing.assert_close(net(x), m(x), rtol=1e-5, atol=1e-5)
    g = quantize(net, x, formats="int8")
    act = next(n for n in g.nodes if n.op == "act")
    assert act.table.shape == (4, 256) and act.lo < 0
    # channel 0's slope is 0 (a ReLU), channel 3's negative: their negative halves differ
    neg = torch.arange(-127, 0)
    t = torch.from_numpy(act.table)
    assert (t[0, neg & 255] == 0).all() and (t[3, neg & 255] > 0).all()
    _hardware_is_golden(net, g, x, frames=3, seed=4)


@pytest.mark.parametrize("head", [
    lambda m, x: m.fc(nn.functional.adaptive_max_pool2d(m.body(x), 1).flatten(1)),
    lambda m, x: m.fc(torch.amax(m.body(x), dim=(2, 3))),
    lambda m, x: m.fc(m.body(x).amax((-1, -2), keepdim=True).flatten(1)),
    lambda m, x: m.fc(F.max_pool2d(m.body(x), 4).view(x.shape[0], -1)),  # the whole 4x4 map
    lambda m, x: m.fc(m.gmp(m.body(x)).squeeze(-1).squeeze(-1)),
])
def test_a_global_max_pool_imports_and_is_bit_exact_in_hardware(head):
    """The global max pool in the forms users write: ``gmp``, the float graph the module's,
    golden == integer mode, and the composed hardware (at 2 lanes) the golden model in
    amaranth.sim under stalls."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(2, 4, 3, padding=1)
            self.c2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
            self.gmp = nn.AdaptiveMaxPool2d(1)
            self.fc = nn.Linear(6, 3)

        def body(self, x):
            return F.relu(self.c2(F.relu(self.c1(x))))

        def forward(self, x):
            return head(self, x)

    torch.manual_seed(10)
    m = Net().eval()
    x = torch.randn(12, 2, 8, 8)
    net = from_torch(m, name="gmp", example=x[:2])
    assert [type(v).__name__ for v in net.nodes.values()][-2:] == ["QGlobalMaxPool", "QLinear"]
    with net.in_mode("float"):
        torch.testing.assert_close(net(x), m(x), rtol=1e-5, atol=1e-5)
    g = quantize(net, x, formats="int8")
    assert [n.op for n in g.nodes][-2:] == ["gmp", "linear"]
    _hardware_is_golden(net, g, x, frames=3, seed=5)


def test_a_max_over_other_dims_is_one_line():
    _refused(_net(lambda m, x: m.fc(torch.amax(m.c(x), dim=1).flatten(1))),
             r"amax over dims 1 is not supported \(a max over H, W\)")


@pytest.mark.parametrize("up", [
    lambda m, y: m.up(y),
    lambda m, y: F.interpolate(y, scale_factor=2),
    lambda m, y: F.interpolate(y, scale_factor=2.0, mode="nearest"),
    lambda m, y: F.interpolate(y, size=(8, 8)),
    lambda m, y: nn.functional.upsample_nearest(y, scale_factor=2),
])
def test_a_nearest_upsample_imports_and_a_decoder_is_bit_exact_in_hardware(up):
    """A U-Net-style decoder: downsample, upsample by 2 (module, functional, by size), then a
    concatenation with the skip of the same resolution and a conv: the float graph the module's,
    golden == integer mode, and the composed hardware the golden model in amaranth.sim under
    stalls (the skip FIFO holds the long branch's rows)."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(2, 4, 3, padding=1)
            self.down = nn.Conv2d(4, 4, 3, stride=2, padding=1)
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.c2 = nn.Conv2d(8, 4, 3, padding=1)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            skip = F.relu(self.c1(x))
            y = up(self, F.relu(self.down(skip)))
            y = F.relu(self.c2(torch.cat([skip, y], 1)))
            return self.fc(y.mean((2, 3)))

    torch.manual_seed(11)
    m = Net().eval()
    x = torch.randn(12, 2, 8, 8)
    net = from_torch(m, name="unet", example=x[:2])
    assert "QUpsample2x" in [type(v).__name__ for v in net.nodes.values()]
    with net.in_mode("float"):
        torch.testing.assert_close(net(x), m(x), rtol=1e-5, atol=1e-5)
    g = quantize(net, x, formats="int8")
    assert "upsample" in [n.op for n in g.nodes]
    _hardware_is_golden(net, g, x, frames=2, seed=6)


@pytest.mark.parametrize("forward,match", [
    (lambda m, x: m.fc(m.c(F.interpolate(x, scale_factor=3)).mean((2, 3))),
     r"interpolate\(scale_factor=3, size=None, mode='nearest'\) is not supported \(nearest, by 2"),
    (lambda m, x: m.fc(m.c(F.interpolate(x, scale_factor=2, mode="bilinear")).mean((2, 3))),
     r"mode='bilinear'"),
])
def test_other_upsampling_is_one_line(forward, match):
    _refused(_net(forward), match)


@pytest.mark.parametrize("pool", [
    lambda m, y: m.pool(y),                                   # nn.MaxPool2d(3, 2, 1)
    lambda m, y: F.max_pool2d(y, kernel_size=3, stride=2, padding=1),
    lambda m, y: F.max_pool2d(y, 5, 1, 2),                    # an SPP block's
])
def test_an_imagenet_stem_max_pool_imports_and_is_bit_exact_in_hardware(pool):
    """The ImageNet ResNet stem (7x7 / 2 conv, BatchNorm, ReLU, MaxPool2d(3, 2, 1)) and an SPP
    block's 5x5 / 1 pool: the window max pool (``maxpoolk``), the float graph the module's,
    golden == integer mode, the composed hardware the golden model in amaranth.sim."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(2, 4, 7, stride=2, padding=3, bias=False)
            self.bn = nn.BatchNorm2d(4)
            self.pool = nn.MaxPool2d(3, 2, 1)
            self.c = nn.Conv2d(4, 4, 3, padding=1)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            y = pool(self, F.relu(self.bn(self.stem(x))))
            return self.fc(F.relu(self.c(y)).mean((2, 3)))

    torch.manual_seed(12)
    m = _trained_bn(Net())
    x = torch.randn(12, 2, 12, 12)
    net = from_torch(m, name="stem", example=x[:2])
    assert "QMaxPoolK" in [type(v).__name__ for v in net.nodes.values()]
    with net.in_mode("float"):
        torch.testing.assert_close(net(x), m(x), rtol=1e-5, atol=1e-5)
    g = quantize(net, x, formats="int8")
    assert [n.kind for n in g.nodes].count("maxpoolk") == 1
    _hardware_is_golden(net, g, x, frames=2, seed=7)
