"""Sensitivity measurement, the additive predictor and its check, on a stand-in model."""

import pytest

from dse.accuracy import Sensitivity, check_predictions, load_or_measure, measure_sensitivity

PENALTY = {"int8": 0.0, "int4": 0.02, "dybit4": 0.01}


class FakeBundle:
    """A model whose accuracy is additive in per-layer penalties (plus an interaction)."""

    name = "fake"

    def __init__(self, interaction=0.0):
        self.calls = 0
        self.interaction = interaction

    def layer_names(self):
        return ["a", "b", "c"]

    def evaluate(self, formats, split="val"):
        self.calls += 1
        assert set(formats) == {"a", "b", "c"}
        weight = {"a": 2.0, "b": 1.0, "c": 0.5}
        acc = 0.9 - sum(weight[k] * PENALTY[f] for k, f in formats.items())
        if sum(f != "int8" for f in formats.values()) > 1:
            acc -= self.interaction
        return {"accuracy": acc, "n": 100}


def test_measure_sensitivity_one_layer_at_a_time():
    b = FakeBundle()
    sens = measure_sensitivity(b, ["int8", "int4", "dybit4"])
    assert b.calls == 1 + 3 * 2
    assert sens.base == pytest.approx(0.9)
    assert sens.drop("a", "int4") == pytest.approx(0.04)
    assert sens.drop("c", "dybit4") == pytest.approx(0.005)
    assert sens.drop("b", "int8") == 0.0
    assert Sensitivity.from_dict(sens.to_dict()) == sens


def test_predictor_checked_against_measurement():
    b = FakeBundle()
    sens = measure_sensitivity(b, ["int4", "dybit4"])
    points = [{"a": "int4", "b": "dybit4", "c": "int8"}, {"a": "dybit4", "b": "int4", "c": "int4"}]
    df = check_predictions(b, sens, points)
    assert list(df["error"].abs() < 1e-12) == [True, True]
    # an interaction the additive model cannot see shows up as error
    b2 = FakeBundle(interaction=0.03)
    df2 = check_predictions(b2, sens, points)
    assert df2["error"].tolist() == pytest.approx([0.03, 0.03])


def test_sensitivity_cache(tmp_path):
    b = FakeBundle()
    path = tmp_path / "sens.json"
    s1 = load_or_measure(b, ["int8", "int4"], path)
    calls = b.calls
    s2 = load_or_measure(b, ["int4"], path)
    assert b.calls == calls and s2 == s1
    load_or_measure(b, ["int4", "dybit4"], path)  # a new format: measured again
    assert b.calls > calls
