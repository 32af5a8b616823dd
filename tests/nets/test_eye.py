import copy

import pytest
import torch

from models.nets.eye import (
    EMBED,
    EXTRA_TRAIN_SETS,
    INPUT_SHAPE,
    EyeTracker,
    build_eye_backbone,
    extra_train_seeds,
    eye_data,
    eye_metrics,
    to_input,
)
from models.ops import node_ops
from models.sparse import SparseTensor


def _windows(n, seed, density=0.15):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(n, 1, 60, 80, generator=g) < density
    return torch.rand(n, 2, 60, 80, generator=g) * m


def test_to_input_adds_coordinates():
    x = torch.zeros(2, 2, 60, 80)
    x[0, 1, 59, 79] = 0.5
    x[1, 0, 0, 40] = 1.0
    st = to_input(x)
    assert st.num_channels == INPUT_SHAPE[0] and st.coords.tolist() == [[0, 59, 79], [1, 0, 40]]
    want = torch.tensor([[0.0, 0.5, 1.0, 1.0], [1.0, 0.0, 40 / 79, 0.0]])
    assert torch.equal(st.feats, want)


def test_tracker_forward_shapes_and_gradients():
    torch.manual_seed(0)
    model = EyeTracker()
    x = _windows(4, 1, density=0.05).reshape(2, 2, 2, 60, 80)
    out = model(x)
    assert out.shape == (2, 2, 2)
    assert (out[..., 0] >= 0).all() and (out[..., 0] <= 80).all() and (out[..., 1] <= 60).all()
    out.sum().backward()
    assert model.backbone.nodes["stem"].weight.grad.abs().sum() > 0
    assert model.gru.weight_ih_l0.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="S, T, 2, 60, 80"):
        model(torch.zeros(2, 2, 60, 80))


def test_backbone_structure():
    net = build_eye_backbone()
    env = net(to_input(_windows(2, 2)), return_all=True)
    assert env["stem"].spatial_shape == (30, 40)
    assert env["b2_dw"].spatial_shape == (15, 20) and env["b4_dw"].spatial_shape == (8, 10)
    assert env["embed"].shape == (2, EMBED)
    adds = [k for k in net.nodes if k.endswith("_add")]
    assert adds == ["b1_add", "b3_add", "b5_add"]


@pytest.fixture(scope="module")
def quantized_tracker():
    torch.manual_seed(0)
    model = EyeTracker()
    bb = model.backbone
    bb.train()
    for i in range(2):
        bb(to_input(_windows(4, 10 + i, density=0.05)))
    model.eval()
    bb.fold_bn()
    bb.calibrate([to_input(_windows(2, 5, density=0.05))])
    bb.set_formats("int8")
    return model


def test_int_backbone_matches_qgraph_and_fake(quantized_tracker):
    bb = quantized_tracker.backbone
    x = _windows(2, 21, density=0.05)
    graph = bb.to_qgraph(to_input(x[:1]))
    assert {n.op for n in graph.nodes} <= set(node_ops())
    assert graph.output.op == "linear" and not graph.output.requant
    assert graph.input.in_shape == INPUT_SHAPE
    m = copy.deepcopy(bb).double().set_mode("int")
    qin = m.quantize_input(to_input(x.double()))
    env = m(qin, return_all=True)
    for b in range(1):  # the golden model is a dense int64 conv: slow, one frame is enough
        ref = graph.run_frame_all(*qin.frame(b))
        for name in ("stem", "b1_add", "b2_proj", "b4_dw", "b5_add"):
            c, f = env[name].frame(b)
            assert torch.equal(ref[name][0], c) and torch.equal(ref[name][1], f), name
        assert torch.equal(ref["embed"][1][0], env["embed"][b])
    mf = copy.deepcopy(bb).double().set_mode("fake")
    envf = mf(to_input(x.double()), return_all=True)
    for name in ("stem", "b3_add", "gap"):
        got = envf[name] if name == "gap" else envf[name].feats
        want = env[name] if name == "gap" else env[name].feats
        assert torch.equal(got, want.double() * mf.nodes[name].out_scale), name


def test_tracker_modes_agree_closely(quantized_tracker):
    model = quantized_tracker
    x = _windows(4, 3, density=0.05).reshape(1, 4, 2, 60, 80)
    outs = {}
    for mode in ("float", "fake", "int"):
        m = copy.deepcopy(model)
        m.backbone.set_mode(mode)
        with torch.no_grad():
            outs[mode] = m(x)
    assert torch.allclose(outs["fake"], outs["int"], atol=1e-3)
    assert (outs["float"] - outs["int"]).abs().max() < 5.0


def test_eye_metrics():
    pred = torch.tensor([[[10.0, 10.0], [0.0, 0.0], [3.0, 4.0], [20.0, 20.0]]])
    target = torch.zeros(1, 4, 2) + torch.tensor([[[10.0, 10.0]]]) * torch.tensor(
        [[[1.0], [0.0], [0.0], [0.0]]])
    m = eye_metrics(pred, target)
    # distances 0, 0, 5, 28.28
    assert m["p5"] == 0.75 and m["p10"] == 0.75 and m["n"] == 4
    assert m["distance"] == pytest.approx((5 + 800**0.5) / 4)


def test_registered_in_zoo():
    from models.zoo import model_names, spec

    assert "eye" in model_names()
    s = spec("eye")
    model = s.build()
    assert s.qnet(model) is model.backbone


@pytest.mark.slow
def test_training_reaches_p10(tmp_path):
    from models.train import TrainConfig, train

    # the default run (EyeSpec.default_epochs = 15 on 102 recordings, ~5 min), measured on the
    # test split: p10 0.977 float and int8 backbone, p5 0.829 / 0.819, distance 3.58 / 3.59 px
    metrics = train(TrainConfig(model="eye"), tmp_path / "run", progress=False)
    assert metrics["p10"] >= 0.95
    assert metrics["integer_p10"] >= 0.95
    assert metrics["integer_p5"] > 0.75
    assert metrics["integer_distance"] < 4.5


def test_train_split_adds_independent_recordings(monkeypatch):
    import numpy as np

    from models.data import eye as data_eye

    calls = []

    def fake_frames(*, seed, split):
        calls.append((seed, split))
        n = {"train": 3, "val": 1, "test": 2, "all": 5}[split]
        x = np.full((n, 2, 2, 60, 80), seed, np.float32)
        return x, np.full((n, 2, 2), seed, np.float32), np.zeros((n, 2), np.int8)

    monkeypatch.setattr(data_eye, "eye_frames", fake_frames)
    x, lab, closed = eye_data("test")
    assert calls == [(0, "test")] and x.shape[0] == 2 and closed.dtype == torch.bool
    calls.clear()
    x, lab, _ = eye_data("train")
    extra = extra_train_seeds(0)
    assert calls == [(0, "train")] + [(s, "all") for s in extra]
    assert len(extra) == EXTRA_TRAIN_SETS and min(extra) >= 1000
    assert x.shape[0] == lab.shape[0] == 3 + 5 * EXTRA_TRAIN_SETS
    assert lab[:3].eq(0).all() and lab[3:].ge(1000).all()
    # the extra recordings of one data seed are never another seed's (or each other's)
    assert not set(extra) & set(extra_train_seeds(1)) and 0 not in extra


def test_sparse_input_is_a_sparse_tensor():
    assert isinstance(to_input(_windows(1, 0)), SparseTensor)
