"""Pareto sweeps: non-dominated, within budget, and the command's files."""

import json

import pandas as pd
import pytest

from codesign.cli import main
from dse import accuracy, devices, pareto, workload
from dse.ilp import Infeasible, evaluate


def _front(n=8, device="XCZU3EG", util=0.5, points=6, formats=("int8", "int4", "dybit4"),
           count=6):
    w = workload.synthetic(n, size=32)
    sens = accuracy.synthetic_sensitivity(w, formats)
    cands, table = pareto.price(w, formats, sens, count=count)
    problem = pareto.make_problem(w, cands, devices.budget(device, util))
    front, rows, _ = pareto.timed_sweep(problem, points=points)
    return problem, front, rows, table, sens


def _front_where(ok, utils, **kw):
    """The first of ``utils`` whose front satisfies ``ok(problem, front)``: which budget gives a
    front of a given shape moves with every refit of the resource model."""
    for util in utils:
        res = _front(util=util, **kw)
        if ok(res[0], res[1]):
            return res
    pytest.fail(f"no budget of {utils} gives the front this test needs")


def test_front_is_non_dominated_and_within_budget():
    problem, front, rows, table, _ = _front()
    assert len(front) >= 2
    for i, (_, s) in enumerate(front):
        for r in ("dsp", "lut", "ff", "bram18"):
            assert getattr(s, r) <= problem.budget.limit(r)
        for j, (_, t) in enumerate(front):
            if i != j:
                assert not (t.ii <= s.ii and t.drop <= s.drop and (t.ii < s.ii or t.drop < s.drop))
    # every solved bound's point is dominated by or on the front
    for _, s in rows:
        assert any(t.ii <= s.ii and t.drop <= s.drop + 1e-12 for _, t in front)
    # faster points give up accuracy
    iis = [s.ii for _, s in front]
    drops = [s.drop for _, s in front]
    assert iis == sorted(iis) and drops == sorted(drops, reverse=True)
    assert set(table.columns) >= {"layer", "format", "lanes", "pe", "cycles", "dsp", "lut", "ff",
                                  "bram18", "acc_drop"}


def test_each_front_point_is_optimal_for_its_bound():
    # small enough to enumerate: 4 layers, 2 formats, 2 parallelism options per dimension
    problem, front, rows, _, _ = _front(n=4, points=4, formats=("int8", "dybit4"), count=2,
                                        device="XC7Z020", util=0.2)
    from dataclasses import replace

    from dse.ilp import brute_force

    assert len(rows) >= 2
    for bound, s in rows:
        best = brute_force(replace(problem, max_drop=bound))
        assert best.ii == s.ii
        assert evaluate(problem, [0] * len(problem.names)).ii >= s.ii


def test_infeasible_budget_one_line():
    w = workload.synthetic(50)
    sens = accuracy.synthetic_sensitivity(w, ["int8"])
    cands, _ = pareto.price(w, ["int8"], sens)
    problem = pareto.make_problem(w, cands, devices.budget("XC7Z020", 0.1))
    with pytest.raises(Infeasible) as exc:
        pareto.sweep(problem, points=3)
    msg = str(exc.value)
    assert msg.startswith("infeasible: needs at least ") and "\n" not in msg
    assert "DSP48E1 at the lowest parallelism, device XC7Z020 offers 22 at util 0.1" in msg


def test_dse_command_writes_front(tmp_path, capsys):
    out = tmp_path / "dse"
    rc = main(["dse", "--model", "synthetic12", "--device", "ZU3EG", "--points", "5",
               "--out", str(out)])
    assert rc == 0
    df = pd.read_csv(out / "pareto.csv")
    for col in ("point", "accuracy_pred", "ii_cycles", "latency_cycles", "fps", "dsp", "lut",
                "bram18", "formats"):
        assert col in df.columns
    assert (out / "pareto.png").stat().st_size > 1000
    choices = pd.read_csv(out / "choices.csv")
    assert len(choices) > len(df)
    from contract.point import DesignPoint

    wl = workload.Workload.from_json((out / "workload.json").read_text())
    for k in df["point"]:
        d = json.loads((out / f"point_{k}.json").read_text())
        point = DesignPoint.from_dict(d)
        assert [c.name for c in point.layers] == [layer.name for layer in wl.layers]
        assert sum(c.predictions["pred_dsp"] for c in point.layers) <= d["dse"]["dsp"]
        assert max(c.predictions["pred_cycles"] for c in point.layers) == d["dse"]["ii_cycles"]
        for c, layer in zip(point.layers, wl.layers, strict=True):
            assert layer.c_in % c.lanes == 0 and layer.c_out % c.pe == 0


def test_dse_command_errors_are_one_line(tmp_path, capsys):
    rc = main(["dse", "--model", "synthetic12", "--device", "XC1", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: unknown device 'XC1'; valid devices:")
    assert "\n" not in err
    rc = main(["dse", "--model", "synthetic50", "--device", "XC7Z020", "--util", "0.05",
               "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and err.startswith("error: infeasible: needs at least")
    rc = main(["dse", "--model", "synthetic12", "--device", "XC7Z020", "--formats", "int3",
               "--out", str(tmp_path)])
    assert rc == 2 and "unknown format 'int3'" in capsys.readouterr().err


def _problem50(device):
    w = workload.synthetic(50)
    formats = ["int8", "int4", "dybit4"]
    sens = accuracy.synthetic_sensitivity(w, formats)
    cands, _ = pareto.price(w, formats, sens)
    return pareto.make_problem(w, cands, devices.budget(device, 0.8))


def test_synthetic50_point_beats_greedy():
    from dse.greedy import greedy
    from dse.ilp import optimise

    problem = _problem50("XCZU9EG")
    sol = optimise(problem, time_limit=60)
    g = greedy(problem)
    assert sol.proven and sol.ii <= g.ii
    for r in ("dsp", "lut", "ff", "bram18"):
        assert getattr(sol, r) <= problem.budget.limit(r)


def test_point_files_keep_every_field_of_the_chosen_choices(tmp_path):
    """What the DSE chose (datapath, kernel-row fold) is what its point files tell the build:
    every layer of point_<k>.json equals the priced candidate in choices.csv."""
    from contract.point import DesignPoint
    from dse.api import explore

    explore("synthetic8", "XC7Z020", out=tmp_path, points=2, check=0)
    table = pd.read_csv(tmp_path / "choices.csv")
    seen = set()
    for f in sorted(tmp_path.glob("point_*.json")):
        p = DesignPoint.from_json(f.read_text())
        for c in p.layers:
            rows = table[(table["layer"] == c.name) & (table["format"] == c.format)
                         & (table["lanes"] == c.lanes) & (table["pe"] == c.pe)
                         & (table["datapath"] == c.datapath) & (table["kfold"] == c.kfold)]
            assert len(rows) == 1, c
            assert int(rows["cycles"].iloc[0]) == c.predictions["pred_cycles"]
            seen |= {c.datapath, f"kfold{c.kfold}"}
    assert len(seen) >= 2  # the points use more than one datapath or fold


def test_a_folded_choice_reaches_the_point_file():
    """dse.api._point writes the chosen LayerChoice whole (kfold and datapath included)."""
    from contract.point import DesignPoint, LayerChoice
    from dse import api
    from dse.cost import layer_cost
    from dse.problem import Candidate, Problem, evaluate

    w = workload.synthetic(8, size=32)
    ch = [LayerChoice("int4", 1, 2, "lut", 3) if layer.kind == "conv3x3"
          else LayerChoice("int8", 1, 2 if layer.kind != "dwconv3x3" else 1, "dsp")
          for layer in w.layers]
    cands = tuple((Candidate(c, layer_cost(layer, c)),) for layer, c in zip(w.layers, ch,
                                                                           strict=True))
    b = devices.budget("XCZU3EG", 0.8)
    sol = evaluate(Problem(names=tuple(x.name for x in w.layers), candidates=cands,
                           edges=tuple(w.edges()), budget=b), [0] * len(cands))
    row = {"point": 0, "accuracy_pred": 0.9, "acc_drop": 0.0, "fps": 1.0}
    d = api._point("synthetic8", w, sol, row, clock_mhz=200, budget=b, objective="ii")
    got = DesignPoint.from_dict(d)
    assert [(c.format, c.lanes, c.pe, c.datapath, c.kfold) for c in got.layers] == \
        [(c.format, c.lanes, c.pe, c.datapath, c.kfold) for c in ch]
    assert any(c.kfold == 3 for c in got.layers)


def test_path_toward_reference_and_the_front_under_another_predictor():
    """toward_reference: from the fastest point, one layer a step goes back to int8 (the one
    the predictor gains most from), each assignment solved with its formats fixed; front_by
    keeps what no other design beats in II and in that predictor's drop."""
    from dataclasses import replace

    from dse.ilp import brute_force

    # a budget whose fastest point has at least 2 layers in dybit4, so that the predictor's
    # interaction matters (which budget does moves with every refit of the resource model:
    # the first of these that does is taken)
    problem, front, rows, _, _ = _front_where(
        lambda _, f: sum(c.format != "int8" for c in f[0][1].choices) >= 2,
        (0.33, 0.34, 0.31, 0.35, 0.3, 0.32, 0.23, 0.345, 0.22, 0.275), n=6, points=4,
        formats=("int8", "dybit4"), count=2, device="XC7Z020")
    names = problem.names
    weight = {n: 0.01 * (i + 1) for i, n in enumerate(names)}

    def predict(formats):  # an interaction the program's linear costs do not hold
        k = sum(f != "int8" for f in formats.values())
        return sum(weight[n] for n, f in formats.items() if f != "int8") + 0.02 * (k > 1)

    seen = []

    def counting(formats):
        seen.append(dict(formats))
        return predict(formats)

    fastest = front[0][1]
    path = pareto.toward_reference(problem, fastest, counting, "int8")
    changed = sum(c.format != "int8" for c in fastest.choices)
    assert changed >= 2 and len(path) == changed  # every step fits on this budget
    prev = {n: c.format for n, c in zip(names, fastest.choices, strict=True)}
    for sol in path:
        now = {n: c.format for n, c in zip(names, sol.choices, strict=True)}
        back = [n for n in names if prev[n] != now[n]]
        assert len(back) == 1 and now[back[0]] == "int8"
        # the step taken is the one the predictor liked best among the possible ones
        options = [{**prev, n: "int8"} for n in names if prev[n] != "int8"]
        assert predict(now) == min(predict(o) for o in options)
        # the fastest design of exactly those formats
        fixed = pareto._fixed_formats(problem, now)
        assert sol.ii == brute_force(replace(fixed, max_drop=None)).ii
        prev = now
    assert all(f == "int8" for f in prev.values())
    assert len(path) >= 2  # this problem's fastest design has two dybit4 layers
    both, drops = pareto.front_by(problem, rows + [(None, s) for s in path], predict)
    assert drops == [predict({n: c.format for n, c in zip(names, s.choices, strict=True)})
                     for _, s in both]
    iis = [s.ii for _, s in both]
    assert iis == sorted(iis) and drops == sorted(drops, reverse=True)
    everything = rows + [(None, s) for s in path]
    for _, s in everything:  # every design is on the front or beaten by a front point
        d = predict({n: c.format for n, c in zip(names, s.choices, strict=True)})
        assert any(t.ii <= s.ii and e <= d + 1e-12 for (_, t), e in zip(both, drops,
                                                                           strict=True))


def _exact(problem, keep=lambda c: True):
    """Every fitting design of a small problem (brute force), its candidates filtered by
    ``keep``; None when a layer has none left."""
    import itertools
    from dataclasses import replace

    from dse.ilp import _fits
    from dse.problem import evaluate

    cands = tuple(tuple(c for c in cs if keep(c)) for cs in problem.candidates)
    if not all(cands):
        return []
    p = replace(problem, candidates=cands, max_drop=None)
    return [s for picks in itertools.product(*(range(len(c)) for c in cands))
            if _fits(p, s := evaluate(p, picks))]


def test_the_levels_complete_the_front():
    """by_level: at every II a design can have, the most accurate design there; with it the
    front is the exact one (brute force over every design). The accuracy bounds alone can jump
    over levels (eye on XCZU3EG: 4 points from the bounds, 9 with the levels); a problem where
    they do is too slow to brute-force here, so this checks the levels' part is exact."""
    problem, front, rows, _, _ = _front(n=4, points=2, formats=("int8", "int4"), count=2,
                                        device="XC7Z020", util=0.15)
    everything = _exact(problem)
    exact = pareto.non_dominated([(None, s) for s in everything])
    lo, hi = front[0][1].ii, max(s.ii for _, s in rows)
    levels = pareto.ii_levels(problem, lo, hi)
    assert levels[0] == lo and levels[-1] == hi
    assert {s.ii for _, s in exact} <= set(levels)
    got = pareto.by_level(problem, lo, hi)
    assert len(got) == len(levels)
    for v, (_, sol) in zip(levels, got, strict=True):
        assert sol.ii <= v
        assert sol.drop == pytest.approx(min(s.drop for s in everything if s.ii <= v), abs=1e-9)
    both = pareto.non_dominated(rows + got)
    assert [(s.ii, round(s.drop, 9)) for _, s in both] == \
        [(s.ii, round(s.drop, 9)) for _, s in exact]
    assert [(s.ii, round(s.drop, 9)) for _, s in pareto.non_dominated(got)] == \
        [(s.ii, round(s.drop, 9)) for _, s in exact]  # the levels alone give the whole front


def test_best_at_level_is_a_local_optimum_of_the_predictor():
    """best_at_level: a design at the level, no worse than the start under the predictor, and no
    single layer's change of format that still reaches the level predicts lower."""
    # a budget with a slower level to reach (at least two points on the front)
    problem, front, _, _, _ = _front_where(
        lambda p, f: len(pareto.ii_levels(p, f[0][1].ii, max(s.ii for _, s in f))) > 1,
        (0.15, 0.14, 0.16, 0.13, 0.17, 0.12, 0.18), n=4, points=3, formats=("int8", "int4"),
        count=2, device="XC7Z020")
    names = problem.names

    def predict(formats):  # int4 layers cost more together than apart
        k = sum(f != "int8" for f in formats.values())
        return 0.01 * k + 0.03 * (k > 2) - 0.005 * (formats[names[0]] == "int4")

    def fmts(s):
        return {n: c.choice.format if hasattr(c, "choice") else c.format
                for n, c in zip(names, s.choices, strict=True)}

    fastest = front[0][1]
    level = pareto.ii_levels(problem, fastest.ii, max(s.ii for _, s in front))[1]
    best = pareto.best_at_level(problem, fastest, level, predict)
    everything = _exact(problem)
    assert best.ii <= level and predict(fmts(best)) <= predict(fmts(fastest))
    now = fmts(best)
    for n in names:
        for f in ("int8", "int4"):
            trial = {**now, n: f}
            if trial == now or predict(trial) >= predict(now):
                continue
            reach = [s for s in everything if fmts(s) == trial and s.ii <= level]
            assert not reach, f"{n} -> {f} predicts lower and reaches the level"


def test_a_walk_toward_a_reference_outside_the_formats_finds_nothing():
    """A search whose formats leave the reference (int8) out (`codesign dse --formats int4`):
    no step of the walk toward all-int8 has candidates, so the walk returns no design instead
    of failing (it raised building a problem with a layer of no candidate)."""
    problem, front, _, _, _ = _front(n=4, points=2, formats=("int4", "dybit4"), count=2)
    assert all(c.format != "int8" for _, s in front for c in s.choices)
    assert pareto._fixed_formats(problem, dict.fromkeys(problem.names, "int8")) is None
    for per_cycle in (False, True):
        assert pareto.toward_reference(problem, front[0][1], lambda f: 0.0, "int8",
                                       per_cycle=per_cycle) == []


def test_the_walk_per_cycle_takes_the_most_accuracy_per_cycle():
    """toward_reference(per_cycle=True): each step takes the layer that buys the most predicted
    accuracy per cycle of II it costs (a free, lossless step first), every step solved with its
    formats fixed, and the walk ends at all-int8."""
    from dataclasses import replace

    from dse.ilp import brute_force

    # a budget at which the fastest design has two dybit4 layers (with the resource model of
    # 2026-11-26; 0.22 before), so that the walk has a choice to make
    problem, front, _, _, _ = _front(n=5, points=4, formats=("int8", "dybit4"), count=2,
                                     device="XC7Z020", util=0.24)
    names = problem.names
    weight = {n: 0.01 * (i + 1) for i, n in enumerate(names)}

    def predict(formats):
        return sum(weight[n] for n, f in formats.items() if f != "int8")

    def ii_of(formats):
        return brute_force(replace(pareto._fixed_formats(problem, formats), max_drop=None)).ii

    fastest = front[0][1]
    path = pareto.toward_reference(problem, fastest, predict, "int8", per_cycle=True)
    prev = {n: c.format for n, c in zip(names, fastest.choices, strict=True)}
    at = fastest.ii
    for sol in path:
        now = {n: c.format for n, c in zip(names, sol.choices, strict=True)}
        assert sum(prev[n] != now[n] for n in names) == 1
        assert sol.ii == ii_of(now)

        def score(formats, ii, prev=prev, at=at):
            gain, cost = predict(prev) - predict(formats), ii - at
            return ((2, gain) if gain >= 0 else (0, gain)) if cost <= 0 else (1, gain / cost)

        options = [{**prev, n: "int8"} for n in names if prev[n] != "int8"]
        assert score(now, sol.ii) >= max(score(o, ii_of(o)) for o in options)
        prev, at = now, sol.ii
    assert all(f == "int8" for f in prev.values())
    assert len(path) >= 2  # this problem's fastest design has two dybit4 layers


def test_thin_keeps_both_ends_spread_evenly():
    assert pareto.thin(list(range(9)), 6) == [0, 2, 3, 5, 6, 8]
    assert pareto.thin(list(range(4)), 6) == [0, 1, 2, 3]
    assert pareto.thin(list(range(4)), 1) == [0]


def test_least_multipliers_keeps_each_points_ii_and_formats_with_fewer_multipliers(tmp_path):
    """``explore(least="multipliers")`` (``codesign dse --least multipliers``): every point of
    the front keeps its II, formats and predicted accuracy, fits the budget, and has at most
    the multipliers of the default's same point (``pareto.csv`` column ``multipliers``), fewer
    on some; its point file holds the choices it counts."""
    from contract.point import DesignPoint
    from dse.api import explore
    from dse.cost import multipliers
    from dse.devices import budget
    from dse.workload import Workload

    kw = dict(points=3, check=0, clock="assumed", formats=["int8", "int4"])
    base = explore("synthetic8", "XC7Z020", out=tmp_path / "r", **kw)
    few = explore("synthetic8", "XC7Z020", out=tmp_path / "m", least="multipliers", **kw)
    assert len(base) == len(few) >= 2
    b = budget("XC7Z020")
    cols = ["ii_cycles", "formats", "acc_drop"]
    assert (few[cols].to_numpy() == base[cols].to_numpy()).all()
    assert (few["multipliers"] <= base["multipliers"]).all()
    assert (few["multipliers"] < base["multipliers"]).any()
    for r in ("dsp", "lut", "ff", "bram18"):
        assert (few[r] <= b.limit(r)).all()
    w = Workload.from_json((tmp_path / "m" / "workload.json").read_text())
    for k, row in few.iterrows():
        p = DesignPoint.from_json((tmp_path / "m" / f"point_{k}.json").read_text())
        assert sum(multipliers(layer, c) for layer, c in zip(w.layers, p.layers, strict=True)) \
            == row["multipliers"]


def test_least_must_be_resources_or_multipliers(tmp_path):
    from common.errors import CodesignError
    from dse.api import explore

    with pytest.raises(CodesignError, match="--least must be one of resources, multipliers"):
        explore("synthetic8", "XC7Z020", out=tmp_path / "x", least="luts")
    assert not (tmp_path / "x").exists()
