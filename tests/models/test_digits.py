import copy
import dataclasses
import json

import pytest
import torch

from codesign.cli import main
from models import zoo
from models.nets.digits import digits_data
from models.qgraph import GraphError
from models.train import TrainConfig, train


def test_split_is_fixed_and_disjoint():
    sizes = {s: len(digits_data(s)[1]) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 1797 and sizes["test"] == 359
    x1, _ = digits_data("test")
    x2, _ = digits_data("test")
    assert torch.equal(x1, x2)
    tr = {tuple(v.reshape(-1).tolist()) for v in digits_data("train")[0][:200]}
    assert tr.isdisjoint({tuple(v.reshape(-1).tolist()) for v in digits_data("test")[0][:50]})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    metrics = train(TrainConfig(model="digits", epochs=3), out, progress=False)
    return out, metrics


def test_train_writes_checkpoint_and_metrics(trained):
    out, metrics = trained
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == metrics
    for k in ("accuracy", "format", "integer_accuracy"):
        assert k in on_disk
    assert 0.5 < on_disk["accuracy"] <= 1.0 and 0.5 < on_disk["integer_accuracy"] <= 1.0


@pytest.mark.parametrize("fmt", ["int8", "int4", "dybit4", "dybit8"])
def test_fake_quant_logits_equal_integer_logits_on_every_test_image(trained, fmt):
    out, _ = trained
    s, model, _ = zoo.load_checkpoint(out / "model.pt")
    s.qnet(model).set_formats(fmt)
    x, _ = s.data("test")
    fake = s.logits(model, x, mode="fake")
    integer = s.logits(model, x, mode="int")
    fc = model.nodes["fc"]
    as_int = torch.round(fake / (fc.in_scale * fc.w_scale)).long()
    assert len(x) == 359
    assert int((as_int != integer).sum()) == 0
    assert torch.equal(fake.argmax(1), integer.argmax(1))


def test_bundle_qgraph_frames_match_integer_model(trained):
    out, _ = trained
    b = zoo.load(str(out / "model.pt"))
    g = b.qgraph({n: f for n, f in zip(b.layer_names(), ["int8", "dybit4", "int4"] * 4,
                                        strict=False)})
    model = b.quantized(g.formats())
    frames = b.frames(4, seed=1)
    q = copy.deepcopy(model).double().set_mode("int")
    x, _ = b.spec.data("test")
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))[:4]
    want = q(q.quantize_input(x[idx].double()))
    for i, (coords, feats) in enumerate(frames):
        assert len(coords) == 256  # dense: every site active
        oc, of = g.run_frame(coords, feats)
        assert torch.equal(of[0], want[i])


def test_qgraph_json_round_trip(trained, tmp_path):
    out, _ = trained
    g = zoo.load(str(out)).qgraph("dybit4")
    g.save(tmp_path / "g.json")
    g2 = type(g).load(tmp_path / "g.json")
    assert g2 == g
    for a, b in zip(g.compute_nodes(), g2.compute_nodes(), strict=True):
        assert (a.weight == b.weight).all() and (a.M == b.M).all()


def test_cli_bad_inputs_fail_cleanly(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["train", "--model", "nope", "--out", str(out)]) == 2
    assert "valid models: digits" in capsys.readouterr().err
    assert main(["train", "--model", "digits", "--format", "int3", "--out", str(out)]) == 2
    assert "valid formats: fp32, int8, int4, dybit4, dybit8" in capsys.readouterr().err
    assert main(["train", "--model", "digits", "--abits", "6", "--out", str(out)]) == 2
    assert "--abits: must be one of 4, 8, not 6" in capsys.readouterr().err
    assert not out.exists()


def test_missing_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(zoo.ModelError, match="does not exist"):
        zoo.load(str(tmp_path / "none.pt"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(zoo.ModelError, match="unreadable or damaged"):
        zoo.load(str(bad))
    # a valid torch file that is not a codesign checkpoint: where to go instead
    import torch as _torch

    other = tmp_path / "state.pt"
    _torch.save({"weight": _torch.zeros(2)}, other)
    with pytest.raises(zoo.ModelError, match="not a codesign checkpoint.*file.py:factory"):
        zoo.load(str(other))
    with pytest.raises(zoo.ModelError, match="is a QONNX model: give its inputs with --calib"):
        zoo.load("model.onnx")
    with pytest.raises(zoo.ModelError, match="model.onnx does not exist"):
        zoo.load("model.onnx", calib=str(other))
    with pytest.raises(zoo.ModelError, match="taken only by `codesign build`"):
        zoo.load("graph.json")


def test_qgraph_empty_and_single_site_frames(trained):
    out, _ = trained
    g = zoo.load(str(out)).qgraph("int8")
    # an image network is dense: a frame without every site is not one of its inputs
    assert g.dense
    with pytest.raises(GraphError, match="must hold all 16x16 sites"):
        g.run_frame(torch.tensor([[15, 0]]), torch.tensor([[100]]))
    g = dataclasses.replace(g, dense=False)  # the same layers on sparse maps
    oc, of = g.run_frame(torch.zeros((0, 2), dtype=torch.int64), torch.zeros((0, 1)))
    assert oc.tolist() == [[0, 0]] and of.shape == (1, 10)
    oc1, of1 = g.run_frame(torch.tensor([[15, 0]]), torch.tensor([[100]]))
    assert of1.shape == (1, 10) and not torch.equal(of1, of)


def test_cross_validation_folds_hold_out_disjoint_test_splits():
    from models.nets.digits import CV_FOLDS

    seen = set()
    for k in range(CV_FOLDS):
        x, _ = digits_data("test", cv_fold=k)
        tr, _ = digits_data("train", cv_fold=k)
        keys = {tuple(v.reshape(-1).tolist()) for v in x}
        assert keys.isdisjoint({tuple(v.reshape(-1).tolist()) for v in tr})
        assert len(x) == 359
        seen |= {(k, i) for i in range(len(x))}
    assert len(seen) == 5 * 359
    a, _ = digits_data("test", cv_fold=0)
    b, _ = digits_data("test", cv_fold=1)
    assert not any(torch.equal(a[0], v) for v in b)
    with pytest.raises(ValueError, match="cv_fold"):
        digits_data("test", cv_fold=5)


def test_held_out_metrics_pool_the_folds_by_sample_count():
    from models.spec import pool_metrics as _pool

    got = _pool([{"accuracy": 1.0, "n": 300}, {"accuracy": 0.5, "n": 100}])
    assert got == {"accuracy": pytest.approx(0.875), "n": 400}
    from models.registry import spec

    s = spec("digits")
    assert s.cv_folds == 5 and s.held_out == {"sens": "test", "eval": "test"}
    assert s.for_cv_fold(0) is s and s.for_cv_fold(2).cv_fold == 2
    assert len(s.for_cv_fold(2).data("val")[1]) == len(s.data("val")[1])
