"""The max-pool op: golden model (dense and sparse), graph checks, quantized layer and export."""

import random

import pytest
import torch
import torch.nn.functional as F
from helpers import maxpool_qgraph

from models import ops
from models.ops.maxpool import QMaxPool2d, maxpool2
from models.qgraph import GraphError, QNode


def _sparse(rng, h, w, c, density, lo=-127, hi=127):
    coords = [(y, x) for y in range(h) for x in range(w) if rng.random() < density]
    feats = [[rng.randint(lo, hi) for _ in range(c)] for _ in coords]
    return torch.tensor(coords, dtype=torch.int64).reshape(-1, 2), \
        torch.tensor(feats, dtype=torch.int64).reshape(-1, c)


@pytest.mark.parametrize("h,w", [(8, 8), (7, 9), (2, 3), (16, 5)])
def test_dense_golden_is_max_pool2d(h, w):
    x = torch.randint(-127, 128, (3, h, w))
    coords = torch.tensor([(y, xx) for y in range(h) for xx in range(w)])
    oc, of = maxpool2(coords, x.reshape(3, -1).t(), height=h, width=w)
    want = F.max_pool2d(x[None].double(), 2)[0].long()
    assert oc.tolist() == [[y, xx] for y in range(h // 2) for xx in range(w // 2)]
    assert torch.equal(of.t().reshape(3, h // 2, w // 2), want)


@pytest.mark.parametrize("density", [0.0, 0.05, 0.3, 0.8])
def test_sparse_golden_takes_the_max_over_active_sites_only(density):
    rng = random.Random(int(density * 100))
    h, w, c = 9, 7, 3
    coords, feats = _sparse(rng, h, w, c, density, lo=-127, hi=-1)  # all negative: 0 never wins
    oc, of = maxpool2(coords, feats, height=h, width=w, channels=c)
    want = {}
    for (y, x), f in zip(coords.tolist(), feats.tolist(), strict=True):
        if y < 2 * (h // 2) and x < 2 * (w // 2):
            key = (y // 2, x // 2)
            want[key] = [max(a, b) for a, b in zip(want.get(key, f), f, strict=True)]
    assert [tuple(s) for s in oc.tolist()] == sorted(want)
    assert of.tolist() == [want[k] for k in sorted(want)]


def test_node_checks_and_registry():
    node = QNode(name="mp", op="maxpool", inputs=("x",), in_shape=(4, 7, 6),
                 out_shape=(4, 3, 3), kernel=2, stride=2, requant=False)
    assert ops.of(node).name == "maxpool" and node.kind == "maxpool"
    assert ops.of(node).stage and not ops.of(node).compute and ops.of(node).keeps_range
    with pytest.raises(GraphError, match="maps"):
        QNode(name="mp", op="maxpool", inputs=("x",), in_shape=(4, 7, 6), out_shape=(4, 4, 3),
              kernel=2, stride=2)
    # kernel 3 at stride 2 is the "same" window max pool (the ImageNet stem's), its own kind
    node = QNode(name="mp", op="maxpool", inputs=("x",), in_shape=(4, 8, 8), out_shape=(4, 4, 4),
                 kernel=3, stride=2)
    assert node.kind == "maxpoolk"
    with pytest.raises(GraphError, match="maps"):
        QNode(name="mp", op="maxpool", inputs=("x",), in_shape=(4, 8, 8), out_shape=(4, 3, 3),
              kernel=3, stride=2)
    with pytest.raises(GraphError, match="no maxpool op takes kernel 4"):
        QNode(name="mp", op="maxpool", inputs=("x",), in_shape=(4, 8, 8), out_shape=(4, 2, 2),
              kernel=4, stride=4)


def test_graph_runs_dense_and_sparse_frames_and_round_trips_json():
    g = maxpool_qgraph(1, h=8, w=10)
    rng = random.Random(0)
    for density in (1.0, 0.3, 0.0):
        coords, feats = _sparse(rng, 8, 10, 2, density, lo=0, hi=127)
        env = g.run_frame_all(coords, feats)
        mp = env["mp1"]
        assert torch.equal(mp[0], maxpool2(*env["stem"], height=8, width=10)[0])
        if density == 0.0:
            assert len(env["mp2"][0]) == 0 and env["fc"][0].tolist() == [[0, 0]]
    from models.qgraph import QGraph
    g2 = QGraph.from_json(g.to_json())
    assert g2.fingerprint() == g.fingerprint()


def test_quantized_layer_exports_bit_exact():
    from models.qnet import QNet
    from models.quant.layers import QConv2d, QGlobalAvgPool, QInput, QLinear

    torch.manual_seed(0)
    net = QNet("lenet_mp")
    net.add("input", QInput(nonneg=True))
    net.add("c1", QConv2d(1, 6, 3, relu=True), "input")
    net.add("p1", QMaxPool2d(), "c1")
    net.add("c2", QConv2d(6, 8, 3, relu=True), "p1")
    net.add("p2", QMaxPool2d(), "c2")
    net.add("gap", QGlobalAvgPool(), "p2")
    net.add("fc", QLinear(8, 10, requant_out=False), "gap")
    net.eval()
    x = torch.rand(16, 1, 16, 16)
    net.fold_bn().calibrate([x])
    net.set_formats({"c1": "int8", "c2": "dybit4", "fc": "int4"})
    g = net.to_qgraph(x[:1])
    assert [n.op for n in g.nodes] == ["input", "conv", "maxpool", "conv", "maxpool", "gap",
                                       "linear"]
    assert g.node("p1").out_shape == (6, 8, 8) and g.node("p2").out_shape == (8, 4, 4)
    net.set_mode("int")
    xi = net.quantize_input(x)
    out = net(xi)
    coords = torch.tensor([(y, xx) for y in range(16) for xx in range(16)])
    for b in range(4):
        _, logits = g.run_frame(coords, xi[b].reshape(1, -1).t())
        assert torch.equal(logits[0], out[b].long())
    # the fake-quant model computes the same integers at their scales
    net.set_mode("fake")
    fake = net(x).double() / net.nodes["fc"]._acc_scale().reshape(1, -1)
    assert torch.equal(torch.round(fake).long(), out.long())


def test_sparse_network_with_max_pool_exports_bit_exact():
    from models.qnet import QNet
    from models.quant.layers import QInput, QLinear
    from models.sparse import SparseGlobalAvgPool, SparseTensor, SubmanifoldConv2d

    torch.manual_seed(1)
    rng = random.Random(3)
    net = QNet("sparse_mp")
    net.add("input", QInput(nonneg=True))
    net.add("stem", SubmanifoldConv2d(2, 8, 3, relu=True), "input")
    net.add("mp", QMaxPool2d(), "stem")
    net.add("pw", SubmanifoldConv2d(8, 8, 1, relu=True), "mp")
    net.add("gap", SparseGlobalAvgPool(), "pw")
    net.add("fc", QLinear(8, 4, requant_out=False), "gap")
    net.eval()
    frames = [_sparse(rng, 12, 10, 2, d, lo=0, hi=100) for d in (0.15, 0.4, 0.05, 0.7)]

    def batch(fr):
        coords = torch.cat([torch.cat([torch.full((len(c), 1), b), c], 1)
                            for b, (c, _) in enumerate(fr)])
        feats = torch.cat([f for _, f in fr]).float() / 100
        return SparseTensor(coords, feats, (12, 10), len(fr))

    x = batch(frames)
    net.fold_bn().calibrate([x])
    net.set_formats({"stem": "int8", "pw": "dybit4", "fc": "int8"})
    g = net.to_qgraph(x)
    assert g.node("mp").op == "maxpool" and g.node("mp").out_shape == (8, 6, 5)
    net.set_mode("int")
    xi = net.quantize_input(x)
    out = net(xi)
    for b in range(len(frames)):
        _, logits = g.run_frame(*xi.frame(b))
        assert torch.equal(logits[0], out[b].long())
