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


def test_a_cached_table_of_one_format_is_not_calibrated_again(tmp_path):
    """A table of the reference format alone whose calibration record is stale (made by another
    CALIBRATION_VERSION): there is no mix to calibrate on, so it is used as it is (it crashed in
    calibration_assignments, choosing from no other format)."""
    import json

    from dse.accuracy import calibration_assignments

    b = FakeBundle()
    path = tmp_path / "sens.json"
    s1 = load_or_measure(b, ["int8"], path)
    d = json.loads(path.read_text())
    d["fit"] = {**(d.get("fit") or {}), "version": -1, "split": "val"}
    path.write_text(json.dumps(d))
    calls = b.calls
    s2 = load_or_measure(b, ["int8"], path, calibration=4)
    assert b.calls == calls and s2.drops == s1.drops
    assert calibration_assignments(["a", "b"], ["int8"], "int8", 4) == []


class NoisyBundle:
    """A model whose output noise adds over layers and whose drop is ``0.5 * noise ** 1.5``
    of the summed noise, with an interaction the additive predictor cannot see."""

    name = "noisy"
    NOISE = {"int8": 0.0, "int4": 0.04, "dybit4": 0.02}
    WEIGHT = {"a": 2.0, "b": 1.0, "c": 0.5, "d": 1.5}

    def __init__(self):
        import numpy as np

        self.calls = 0
        self.ref = np.random.default_rng(0).normal(size=(400, 5))
        self.dirs = {k: np.random.default_rng(i + 1).normal(size=(400, 5))
                     for i, k in enumerate(self.WEIGHT)}

    def layer_names(self):
        return list(self.WEIGHT)

    def _noise(self, formats):
        return sum(self.WEIGHT[k] * self.NOISE[f] for k, f in formats.items())

    def evaluate(self, formats, split="val"):
        self.calls += 1
        return {"accuracy": 0.95 - 0.5 * self._noise(formats) ** 1.5, "n": 400}

    def evaluate_outputs(self, formats, split):
        import numpy as np

        var = float(((self.ref - self.ref.mean(0)) ** 2).sum(-1).mean())
        out = self.ref.copy()
        for k, f in formats.items():  # independent perturbations: their powers add
            d = self.dirs[k] / np.sqrt((self.dirs[k] ** 2).sum(-1).mean())
            out = out + d * np.sqrt(self.WEIGHT[k] * self.NOISE[f] * var)
        return self.evaluate(formats, split), out


def test_noise_model_calibrated_on_mixed_points_beats_the_additive_sum():
    b = NoisyBundle()
    import dataclasses

    sens = measure_sensitivity(b, ["int8", "int4", "dybit4"], calibration=12)
    assert sens.fit["points"] == 2 + 12 and sens.fit["use"] in ("noise", "linear")
    assert sens.fit["loo_noise"] < sens.fit["loo_additive"]
    sens = dataclasses.replace(sens, fit={**sens.fit, "use": "noise"})
    assert sens.uses_noise
    # one layer's noise is its share of the output power (independent directions: approximately)
    assert sens.coefficient("a", "int4") == pytest.approx(2.0 * 0.04, rel=0.15)
    assert sens.coefficient("b", "int8") == 0.0
    assert sens.fit["b"] == pytest.approx(1.5, abs=0.2)
    assert sens.fit["mae_noise"] < sens.fit["mae_additive"]
    # drop_of and cost_of are inverse maps; the ILP's bound in cost is the bound in drop
    assert sens.cost_of(sens.drop_of(0.1)) == pytest.approx(0.1)
    assert sens.drop_of(0.0) == 0.0 and sens.cost_of(-1.0) == 0.0
    mixed = {"a": "int4", "b": "dybit4", "c": "int4", "d": "dybit4"}
    chk = check_predictions(b, sens, [mixed], base=0.90)
    # anchored on the base given: the prediction is that base minus the predicted drop
    assert chk["predicted"][0] == pytest.approx(0.90 - sens.predict_drop(mixed))
    assert abs(chk["error_additive"][0] + 0.05) > abs(chk["error"][0] + 0.05)
    assert Sensitivity.from_dict(sens.to_dict()) == sens


def test_linear_model_fitted_to_mixed_points_sees_what_single_layers_miss():
    from dse.accuracy import fit_linear

    # single-layer drops say "a" costs 0.01; in every mix it really costs 0.03 (b: 0.02 alone too)
    sens = Sensitivity(model="m", metric="accuracy", reference="int8", base=0.9,
                       drops={"a": {"int8": 0.0, "int4": 0.01}, "b": {"int8": 0.0, "int4": 0.02}})
    mixes = [("int4", "int8"), ("int8", "int4"), ("int4", "int4"), ("int4", "int8"),
             ("int8", "int4"), ("int4", "int4"), ("int8", "int8")]
    calib = [{"formats": f"{a}/{b}", "measured_drop": (a == "int4") * 0.03 + (b == "int4") * 0.02}
             for a, b in mixes]
    fitted, lam, loo = fit_linear(sens, calib, lambdas=(0.01, 1.0))
    assert lam == 0.01 and fitted["a"]["int4"] == pytest.approx(0.03, abs=2e-3)
    assert fitted["b"]["int4"] == pytest.approx(0.02, abs=2e-3) and loo < 2e-3
    lin = Sensitivity(**{**sens.to_dict(), "fitted": fitted,
                         "fit": {"use": "linear"}})
    assert lin.uses_fitted and lin.coefficient("a", "int4") == fitted["a"]["int4"]
    assert lin.predict({"a": "int4", "b": "int8"}) == pytest.approx(0.87, abs=2e-3)


def test_additive_predictor_kept_when_it_fits_better():
    from dse.accuracy import fit_noise_model

    fit = fit_noise_model([0.0, 0.1, 0.2, 0.4], [0.0, 0.01, 0.02, 0.04])
    assert fit["b"] == pytest.approx(1.0, abs=0.02) and fit["a"] == pytest.approx(0.1, rel=0.05)
    sens = Sensitivity(model="m", metric="accuracy", reference="int8", base=0.9,
                       drops={"a": {"int8": 0.0, "int4": 0.03}}, noise={"a": {"int4": 0.2}},
                       fit={"a": 1.0, "b": 1.0, "use": "additive"})
    assert not sens.uses_noise and sens.coefficient("a", "int4") == 0.03
    assert sens.drop_of(0.05) == 0.05 and sens.predict({"a": "int4"}) == pytest.approx(0.87)


def test_calibration_assignments_cover_the_extremes_and_mixes():
    from dse.accuracy import calibration_assignments

    got = calibration_assignments(["a", "b", "c"], ["int8", "int4", "dybit4"], "int8", 6)
    assert got[0] == dict.fromkeys("abc", "int4") and got[1] == dict.fromkeys("abc", "dybit4")
    assert len(got) == 2 + 6 and all(set(a) == {"a", "b", "c"} for a in got)
    assert got != calibration_assignments(["a", "b", "c"], ["int8", "int4", "dybit4"], "int8",
                                          6, seed=1)


def test_predictor_summary_leaves_out_the_reference_point_and_states_sizes():
    import pandas as pd

    from dse.api import fewer_points_note, predictor_line, predictor_summary

    sens = Sensitivity(model="m", metric="accuracy", reference="int8", base=0.9,
                       drops={"a": {"int8": 0.0}}, n=1000)
    chk = pd.DataFrame({"formats": ["a=int8,b=int8", "a=int4,b=int8"],
                        "error": [0.0, 0.004], "error_additive": [0.0, -0.01]})
    held = pd.DataFrame({"formats": ["a=int4,b=int4"], "error": [-0.002],
                         "error_additive": [0.02]})
    got = predictor_summary(sens, chk, held, n_eval=2000)
    assert got["held_out_points"] == 2 and got["front_points"] == 1 and got["random_points"] == 1
    assert got["mae"] == pytest.approx(0.003) and got["max_error"] == pytest.approx(0.004)
    assert got["max_error_additive"] == pytest.approx(0.02)
    assert got["one_sample_points"] == pytest.approx(0.05)
    assert "2,000 eval samples" in predictor_line(got)
    # a front point that was a calibration point: predicted by its measurement, not held out
    cal = Sensitivity(model="m", metric="accuracy", reference="int8", base=0.9,
                      drops={"a": {"int8": 0.0, "int4": 0.05}, "b": {"int8": 0.0, "int4": 0.05}},
                      calibration=[{"formats": "int4/int8", "measured_drop": 0.012}], n=1000)
    assert cal.point_drop({"a": "int4", "b": "int8"}) == pytest.approx(0.012)
    assert cal.point_drop({"a": "int8", "b": "int4"}) == pytest.approx(0.05)  # not measured
    seen = predictor_summary(cal, chk, held, n_eval=2000)
    assert seen["held_out_points"] == 1 and seen["front_points"] == 0
    assert seen["front_points_seen"] == 2 and "2 front point(s) measured before" in \
        predictor_line(seen)
    # nothing held out (every front point measured before, no random mix): no error figures,
    # not a 0.00 that reads as a perfect predictor
    none = predictor_summary(cal, chk, None, n_eval=2000)
    assert none["held_out_points"] == 0 and none["mae"] is None and none["max_error"] is None
    assert "not checked: no held-out design point" in predictor_line(none)
    assert "0.00" not in predictor_line(none)
    note = fewer_points_note(6, 2, levels=[515, 1025])
    assert "allow 2 initiation intervals" in note and "(515, 1,025 cycles)" in note
    assert "each has one most accurate design" in note
    many = fewer_points_note(3, 2, levels=[515, 600, 700, 1025])
    assert "allow 4 initiation intervals" in many and "from 515 to 1,025 cycles" in many
    assert "at the others the most accurate design found" in many
    assert fewer_points_note(6, 6) == ""
    # one point although two intervals fit: the fastest is predicted the most accurate
    one = fewer_points_note(6, 1, levels=[259, 513])
    assert "(259 cycles) is already the most accurate" in one


class LogitBundle:
    """A classifier whose logits move by the sum of per-layer deviations: its accuracy interacts
    across layers (a sample flips only when deviations add up), which no linear model of the
    drops holds and the superposition of output deviations does exactly."""

    name = "logits"
    SCALE = {"int8": 0.0, "int4": 1.0, "dybit4": 0.5}
    WEIGHT = {"a": 1.0, "b": 0.7, "c": 0.4, "d": 1.2}

    def __init__(self, gamma=0.0, alpha=1.0):
        import numpy as np

        rng = np.random.default_rng(0)
        self.gamma, self.alpha = gamma, alpha
        self.ref = rng.normal(size=(600, 4))
        self.y = self.ref.argmax(1)
        self.dirs = {k: rng.normal(size=(600, 4)) for k in self.WEIGHT}
        self.calls = 0

    def layer_names(self):
        return list(self.WEIGHT)

    def _outputs(self, formats):
        n = max(1, sum(f != "int8" for f in formats.values()))
        scale = self.alpha ** (1 - 1 / n) * n ** -self.gamma
        out = self.ref.copy()
        for k, f in formats.items():
            out = out + scale * self.SCALE[f] * self.WEIGHT[k] * self.dirs[k]
        return out

    def metrics_from_outputs(self, outputs, split):
        return {"accuracy": float((outputs.argmax(1) == self.y).mean()), "n": len(self.y)}

    def evaluate(self, formats, split="val"):
        self.calls += 1
        return self.metrics_from_outputs(self._outputs(formats), split)

    def evaluate_outputs(self, formats, split):
        out = self._outputs(formats)
        return self.metrics_from_outputs(out, split), out


def test_superposition_of_output_deviations_predicts_interacting_drops(tmp_path):
    from dse.accuracy import ALPHAS, Superposition, calibration_assignments

    b = LogitBundle()
    path = tmp_path / "sens.json"
    sens = load_or_measure(b, ["int8", "int4", "dybit4"], path, calibration=16)
    fit = sens.fit
    # the deviations add exactly here (alpha 1, gamma 0)
    assert fit["use"] == "superposition" and fit["alpha"] == pytest.approx(1.0)
    assert fit["gamma"] == 0.0
    assert 1.0 in ALPHAS and fit["loo_superposition"] == pytest.approx(0.0, abs=1e-12)
    assert fit["loo_superposition"] < min(fit["loo_linear"], fit["loo_noise"],
                                          fit["loo_additive"])
    # the program still sums a linear model; a point's prediction is the superposition's
    assert sens.ilp_model in ("additive", "noise", "linear")
    held = calibration_assignments(b.layer_names(), ["int8", "int4", "dybit4"], "int8", 10,
                                   seed=7)
    chk = check_predictions(b, sens, held)
    assert chk["error"].abs().max() == pytest.approx(0.0, abs=1e-12)
    assert (chk["predicted_ilp"] - chk["measured"]).abs().max() > 0.005  # what it missed
    # the tables are saved beside the cache, reused, and re-measured when deleted
    sp = Superposition.load(sens.superposition)
    assert (sp.alpha, sp.gamma) == (1.0, 0.0) and set(sp.deltas) == {
        (k, f) for k in b.WEIGHT for f in ("int4", "dybit4")}
    calls = b.calls
    again = load_or_measure(b, ["int8", "int4", "dybit4"], path, calibration=16)
    assert b.calls == calls and again == sens
    from pathlib import Path

    Path(sens.superposition).unlink()
    load_or_measure(b, ["int8", "int4", "dybit4"], path, calibration=16)
    assert b.calls > calls and Path(sens.superposition).is_file()


@pytest.mark.parametrize("alpha,gamma", [(1.0, 0.3), (1.4, 0.0), (1.6, 0.2)])
def test_superposition_learns_how_deviations_combine(tmp_path, alpha, gamma):
    """Deviations that grow beyond their sum when a few layers change (alpha) and shrink as
    many do (gamma) are fitted as such; one layer alone is always its measured deviation."""
    b = LogitBundle(gamma=gamma, alpha=alpha)
    sens = load_or_measure(b, ["int8", "int4", "dybit4"], tmp_path / "s.json", calibration=16)
    assert (sens.fit["alpha"], sens.fit["gamma"]) == (alpha, gamma)
    assert sens.fit["loo_superposition"] == pytest.approx(0.0, abs=1e-12)
