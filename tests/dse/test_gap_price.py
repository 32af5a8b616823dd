"""The global average pool's price (models.ops.gap): fitted per lane (its adder and divider, by
their bits) and per channel (its sum in the ring of beats) from the pool synthesised alone over
a calibration grid (``benchmarks/fit_resources.py --stage-ops``), on both families."""

import json
from pathlib import Path

import pytest

from dse.cost import ResourceModel
from models import ops

MODELS = {"xcup": "dse/resource_model.json", "ecp5": "dse/resource_model_ecp5.json"}


def _stage(cfg):
    return {"name": "pool", "op": "gap", "in_shape": (cfg["c_in"], cfg["h"], cfg["w"])}


@pytest.mark.parametrize("family", sorted(MODELS))
def test_the_pool_is_priced_as_yosys_measured_it_alone(family):
    """Every calibration sample (8-256 channels, 1-32 lanes, 3x3 to 30x40 maps): LUTs within
    10 % and flip-flops within 2 % of the synthesis. The fit per channel alone (one network's
    pool, 64 channels at 8 lanes) priced the 256-channel pool at 8 lanes at 2,916 LUT6 against
    660 measured (xcup)."""
    raw = json.loads(Path(MODELS[family]).read_text())
    model = ResourceModel.from_dict(raw)
    op = ops.get("gap")
    samples = raw["stage_fit"]["gap"]["samples"]
    assert {s["config"]["c_in"] for s in samples} >= {8, 64, 256}
    assert {s["config"]["lanes"] for s in samples} >= {1, 8, 32}
    for s in samples:
        cfg = s["config"]
        got = op.fitted(_stage(cfg), lanes=cfg["lanes"], model=model)
        assert abs(got["lut"] - s["lut"]) <= 0.10 * s["lut"], (cfg, got, s)
        assert abs(got["ff"] - s["ff"]) <= 0.02 * s["ff"], (cfg, got, s)


def test_the_ring_is_priced_per_channel_and_the_arithmetic_per_lane():
    """At the same lanes, four times the channels adds registers (the ring), not LUTs; at the
    same channels, more lanes add LUTs (an adder and a divider each)."""
    model = ResourceModel.from_dict(json.loads(Path(MODELS["xcup"]).read_text()))
    op = ops.get("gap")

    def price(c, lanes, hw=3):
        return op.fitted({"in_shape": (c, hw, hw)}, lanes=lanes, model=model)

    narrow, wide = price(64, 8), price(256, 8)
    assert wide["lut"] == pytest.approx(narrow["lut"])
    assert wide["ff"] - narrow["ff"] == pytest.approx(192 * 12, rel=0.01)  # 12-bit sums
    assert price(256, 32)["lut"] > 3 * price(256, 8)["lut"] * 0.9
