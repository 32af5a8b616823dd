"""The Python API: convert a plain nn.Module, predict with the integer golden model, explore,
build and co-simulate, with the same figures the commands write."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import codesign.api as cs
from common.errors import CodesignError


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 8, 1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).eval()


@pytest.fixture
def api_model(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(12) % 3
    return cs.convert(_net(), calib=(x, y)), x


def test_convert_and_predict_match_the_quantized_module(api_model):
    model, x = api_model
    logits = model.predict(x[:4])
    assert logits.shape == (4, 3) and logits.dtype == np.int64
    qnet = model.bundle.quantized("int8")
    qnet.set_mode("int")
    want = qnet(qnet.quantize_input(x[:4].double()))
    assert np.array_equal(logits, want.long().numpy())
    # the same module and data convert to the same cached import
    again = cs.convert(_net(), calib=(x, torch.arange(12) % 3))
    assert again.checkpoint == model.checkpoint
    with pytest.raises(CodesignError, match="network takes"):
        model.predict(np.zeros((1, 1, 4, 4), dtype=np.float32))


def test_explore_and_build(api_model, tmp_path):
    model, _ = api_model
    front = model.explore("XC7Z020", out=tmp_path / "dse", points=2, check=0)
    assert len(front.table) >= 1 and (tmp_path / "dse" / "pareto.csv").is_file()
    point = front.point(0)
    design = model.build(point, out=tmp_path / "build")
    m = design.manifest
    assert [layer["format"] for layer in m["layers"]] == [c.format for c in point.layers]
    with pytest.raises(CodesignError, match="no point 99"):
        front.point(99)


@pytest.mark.rtl
def test_simulate_user_inputs(api_model, tmp_path):
    from cosim.runner import simulator_missing

    if simulator_missing("verilator"):
        pytest.skip("verilator missing")
    model, x = api_model
    design = model.build(out=tmp_path / "build")
    summary = design.simulate(x[:4], stall=0.3)
    assert summary["mismatches"] == 0 and summary["frames"] == 4
    assert summary == json.loads((tmp_path / "build" / "sim_summary.json").read_text())
