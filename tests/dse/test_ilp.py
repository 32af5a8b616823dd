"""The integer program against brute-force enumeration, and its infeasibility messages."""

import random

import pytest

from dse import ilp
from dse.cost import Cost, LayerChoice
from dse.devices import Budget, budget
from dse.greedy import greedy


def _instance(seed):
    rng = random.Random(seed)
    n = rng.randint(2, 4)
    formats = ["int8", "int4", "dybit4"]
    cands = []
    for _ in range(n):
        k = rng.randint(2, 5)
        layer = []
        for _ in range(k):
            ch = LayerChoice(rng.choice(formats), rng.choice([1, 2, 4]), rng.choice([1, 2, 4]))
            cost = Cost(cycles=rng.randint(10, 200), fill=rng.randint(1, 50),
                        dsp=rng.randint(0, 20), lut=rng.randint(50, 900),
                        ff=rng.randint(50, 900), bram18=rng.randint(0, 6))
            layer.append(ilp.Candidate(ch, cost, round(rng.uniform(0, 0.05), 4)))
        cands.append(tuple(layer))
    edges = [(i, i + 1) for i in range(n - 1)]
    if n >= 3 and rng.random() < 0.5:
        edges.append((0, n - 1))  # a residual-style skip edge
    limits = {}
    for r in ("dsp", "lut", "ff", "bram18"):
        lo = sum(min(getattr(c.cost, r) for c in layer) for layer in cands)
        hi = sum(max(getattr(c.cost, r) for c in layer) for layer in cands)
        # from a little below the cheapest design (infeasible) to everything fitting
        limits[r] = rng.randint(int(lo * 0.95), hi + 40)
    b = Budget(device="TEST", util=1.0, **limits)
    max_drop = rng.choice([None, round(rng.uniform(0.0, 0.1), 3)])
    objective = rng.choice(ilp.OBJECTIVES)
    conv = {"lut": (rng.randint(0, 40), rng.choice([0.5, 1.0, 2.0])),
            "ff": (rng.randint(0, 40), rng.choice([0.5, 1.0]))}
    if rng.random() < 0.5:
        # the consumer's input FIFO moved to the producer's width: per lane bit up to 4x the
        # converter's, so an edge from a narrower producer can take LUTs and FFs off
        conv = {r: (*v, rng.choice([0.25, 1.0, 4.0])) for r, v in conv.items()}
    to_pe = ()
    if len(edges) == n and rng.random() < 0.5:
        # the skip stream enters a residual add: converted to the add's first input's pe
        to_pe = (False,) * (n - 1) + (True,)
    if rng.random() < 0.5:
        # the input lanes each buffer entry chooses among, a (a + 1) / 2 + a b: a product of
        # the two layers' choices, which the program linearises
        conv = {r: (*v, *(0.0,) * (3 - len(v)), rng.choice([0.1, 0.5, 2.0]))
                for r, v in conv.items()}
    return ilp.Problem(names=tuple(f"l{i}" for i in range(n)), candidates=tuple(cands),
                       edges=tuple(edges), budget=b, max_drop=max_drop, objective=objective,
                       converter=conv, edge_to_pe=to_pe)


def _value(problem, sol):
    if problem.objective == "drop":
        return pytest.approx(sol.drop, abs=1e-9)
    return sol.ii if problem.objective == "ii" else sol.latency


@pytest.mark.parametrize("formulation", ["max", "levels"])
def test_ilp_equals_brute_force(formulation):
    feasible = infeasible = 0
    for seed in range(400):
        if feasible >= 50:
            break
        problem = _instance(seed)
        best = ilp.brute_force(problem)
        if best is None:
            infeasible += 1
            with pytest.raises(ilp.Infeasible):
                ilp.optimise(problem, formulation=formulation, warm=seed % 2 == 0)
            continue
        feasible += 1
        sol = ilp.optimise(problem, formulation=formulation, warm=seed % 2 == 0)
        assert _value(problem, best) == _value(problem, sol), seed
        # the decoded point is really within budget and bound
        for r in ("dsp", "lut", "ff", "bram18"):
            assert getattr(sol, r) <= problem.budget.limit(r)
        if problem.max_drop is not None:
            assert sol.drop <= problem.max_drop + 1e-9
    # the random instances exercise both outcomes
    assert feasible >= 50 and infeasible >= 5


def test_greedy_never_beats_ilp():
    for seed in range(60):
        problem = _instance(seed)
        if problem.objective == "drop":
            continue
        g = greedy(problem)
        if g is None:
            continue
        sol = ilp.optimise(problem)
        assert _value(problem, sol) <= _value(problem, g)


def test_converter_priced_on_width_mismatch():
    cost = Cost(cycles=10, fill=1, dsp=0, lut=100, ff=100, bram18=0)
    a = ilp.Candidate(LayerChoice("int8", 1, 2), cost)
    b_same = ilp.Candidate(LayerChoice("int8", 2, 1), cost)
    b_diff = ilp.Candidate(LayerChoice("int8", 4, 1), cost)
    conv = {"lut": (10, 1.0), "ff": (0, 0.5)}
    b = Budget(device="TEST", util=1.0, dsp=0, lut=1000, ff=1000, bram18=0)
    p = ilp.Problem(names=("a", "b"), candidates=((a,), (b_same, b_diff)), edges=((0, 1),),
                    budget=b, converter=conv)
    same = ilp.evaluate(p, [0, 0])
    diff = ilp.evaluate(p, [0, 1])
    assert same.lut == 200 and same.converters == 0
    assert diff.lut == 200 + 10 + 8 * (2 + 4) and diff.ff == 200 + 4 * (2 + 4)
    assert diff.converters == 1


def test_converter_mux_term_prices_the_wide_input():
    """With a per-mux-bit term a converter is priced by the lanes its entries choose among,
    a (a + 1) / 2 + a b: from 4 lanes to 1 costs more than from 1 to 4, and the program
    (which linearises the product a b) picks the cheaper direction as evaluate prices it."""
    from dse.cost import converter_mux_inputs

    assert converter_mux_inputs(1, 16) == 17 and converter_mux_inputs(4, 2) == 18
    assert converter_mux_inputs(16, 4) == 200
    cost = Cost(cycles=10, fill=1, dsp=0, lut=100, ff=100, bram18=0)
    conv = {"lut": (10, 1.0, 0.0, 0.5), "ff": (0, 0.5, 0.0, 0.0)}
    b = Budget(device="TEST", util=1.0, dsp=0, lut=1000, ff=1000, bram18=0)
    prod = (ilp.Candidate(LayerChoice("int8", 1, 1), cost),
            ilp.Candidate(LayerChoice("int8", 1, 4), cost))
    cons = (ilp.Candidate(LayerChoice("int8", 1, 1), cost),
            ilp.Candidate(LayerChoice("int8", 4, 1), cost))
    p = ilp.Problem(names=("a", "b"), candidates=(prod, cons), edges=((0, 1),), budget=b,
                    converter=conv)
    up = ilp.evaluate(p, [0, 1])    # 1 -> 4 lanes: 1 + 4 = 5 inputs
    down = ilp.evaluate(p, [1, 0])  # 4 -> 1 lanes: 10 + 4 = 14 inputs
    assert up.lut == 200 + 10 + 8 * (1.0 * 5 + 0.5 * 5)
    assert down.lut == 200 + 10 + 8 * (1.0 * 5 + 0.5 * 14)
    assert up.ff == down.ff == 200 + 4 * 5
    # into a layer of 2 lanes from a producer of pe 1 (3 inputs) or of pe 4 (18 inputs), the
    # same cycles either way: a budget that admits only the first makes the program take it
    two = (ilp.Candidate(LayerChoice("int8", 2, 1), cost),)
    narrow = ilp.evaluate(ilp.Problem(names=("a", "b"), candidates=(prod, two), edges=((0, 1),),
                                      budget=b, converter=conv), [0, 0])
    for lut, want in ((int(narrow.lut), 0), (int(narrow.lut) - 1, None)):
        tight = Budget(device="TEST", util=1.0, dsp=0, lut=lut, ff=1000, bram18=0)
        p2 = ilp.Problem(names=("a", "b"), candidates=(prod, two), edges=((0, 1),),
                         budget=tight, converter=conv)
        if want is None:
            with pytest.raises(ilp.Infeasible):
                ilp.optimise(p2)
            continue
        sol = ilp.optimise(p2)
        assert sol.choices[0].pe == 1 and sol.lut == narrow.lut


def test_converter_into_a_join_goes_to_the_first_inputs_pe_without_a_fifo():
    """A stream that enters a residual add as its later input (Problem.edge_to_pe) is converted
    to the add's width, the pe of the layer whose stream is its first input, and the edge holds
    no input FIFO (the skip FIFO is priced with the producer)."""
    cost = Cost(cycles=10, fill=1, dsp=0, lut=100, ff=100, bram18=0)
    skip = ilp.Candidate(LayerChoice("int8", 1, 1), cost)
    first = (ilp.Candidate(LayerChoice("int8", 1, 4), cost),
             ilp.Candidate(LayerChoice("int8", 4, 1), cost))
    conv = {"lut": (10, 1.0, 0.5), "ff": (0, 0.5, 0.5)}
    b = Budget(device="TEST", util=1.0, dsp=0, lut=1000, ff=1000, bram18=0)
    p = ilp.Problem(names=("skip", "first"), candidates=((skip,), first), edges=((0, 1),),
                    edge_to_pe=(True,), budget=b, converter=conv)
    assert not p.fifo_edge(0)
    to4 = ilp.evaluate(p, [0, 0])  # the add runs at 4 lanes (first's pe): 1 -> 4
    same = ilp.evaluate(p, [0, 1])  # first's pe 1 (its lanes 4 do not matter)
    assert same.converters == 0 and same.lut == 200
    assert to4.converters == 1 and to4.lut == 200 + 10 + 8 * (1 + 4)
    assert to4.ff == 200 + 4 * (1 + 4)


def test_infeasible_names_resource_and_minimum():
    cost = Cost(cycles=10, fill=1, dsp=300, lut=100, ff=100, bram18=0)
    cands = ((ilp.Candidate(LayerChoice("int8", 1, 1), cost),),) * 2
    p = ilp.Problem(names=("a", "b"), candidates=cands, edges=((0, 1),),
                    budget=budget("XC7Z020", 0.8))
    with pytest.raises(ilp.Infeasible) as exc:
        ilp.optimise(p)
    msg = str(exc.value)
    assert msg == ("infeasible: needs at least 600 DSP48E1 at the lowest parallelism, device "
                   "XC7Z020 offers 176 at util 0.8")
    assert "\n" not in msg


def test_infeasible_accuracy_bound():
    cost = Cost(cycles=10, fill=1, dsp=1, lut=100, ff=100, bram18=0)
    cands = ((ilp.Candidate(LayerChoice("int4", 1, 1), cost, 0.03),),) * 2
    p = ilp.Problem(names=("a", "b"), candidates=cands, edges=((0, 1),),
                    budget=budget("XCZU3EG"), max_drop=0.05)
    with pytest.raises(ilp.Infeasible, match="accuracy drop is at least 0.0600"):
        ilp.optimise(p)


def test_every_solve_has_a_time_limit_and_reports_it():
    problem = _instance(3)
    model = ilp.solve(ilp.build(problem))
    assert model.time_limit == ilp.DEFAULT_TIME_LIMIT
    with pytest.raises(ValueError, match="positive"):
        ilp.solve(ilp.build(problem), time_limit=0)
    # CBC stopping at its limit without a point is a timeout, not "infeasible"
    model.status = "Not Solved"
    with pytest.raises(ilp.SolverTimeout, match="time limit of 20 s.*--time-limit"):
        ilp.decode(model)


def test_time_limited_50_layer_solve_and_sweep_stay_bounded():
    import time

    from dse import accuracy, pareto, workload

    w = workload.synthetic(50)
    formats = ["int8", "int4", "dybit4"]
    cands, _ = pareto.price(w, formats, accuracy.synthetic_sensitivity(w, formats))
    problem = pareto.make_problem(w, cands, budget("XCZU7EV", 0.8))
    t0 = time.perf_counter()
    sol = ilp.optimise(problem, time_limit=0.5)
    assert time.perf_counter() - t0 < 15  # CBC start-up and model build on a busy machine
    assert all(getattr(sol, r) <= problem.budget.limit(r) for r in ("dsp", "lut", "ff", "bram18"))
    logs = []
    t0 = time.perf_counter()
    rows = pareto.sweep(problem, points=20, time_limit=0.5, time_budget=3.0, log=logs.append)
    assert time.perf_counter() - t0 < 30
    assert rows and all(s.ii >= sol.ii or not sol.proven for _, s in rows)
    unproven = [s for _, s in rows if not s.proven]
    assert len([m for m in logs if "not proven optimal" in m]) >= len(unproven)


@pytest.mark.parametrize("seed", range(40))
def test_trim_keeps_ii_formats_and_budget_and_never_costs_more(seed):
    problem = _instance(seed)
    if problem.objective != "ii":
        problem = ilp.Problem(**{**problem.__dict__, "objective": "ii"})
    try:
        sol = ilp.optimise(problem, time_limit=5)
    except ilp.Infeasible:
        return
    raw = ilp.evaluate(problem, [next(k for k, c in enumerate(cs) if c.choice == ch)
                                 for cs, ch in zip(problem.candidates,
                                                   sol.solved_choices or sol.choices,
                                                   strict=True)])
    b = problem.budget
    assert sol.ii <= raw.ii
    assert [c.format for c in sol.choices] == [c.format for c in raw.choices]
    assert all(getattr(sol, r) <= b.limit(r) for r in ("dsp", "lut", "ff", "bram18"))
    share = lambda s: sum(getattr(s, r) / max(getattr(b, r), 1)  # noqa: E731
                          for r in ("dsp", "lut", "ff", "bram18"))
    assert share(sol) <= share(raw) + 1e-9


def test_trim_moves_to_the_pool_and_the_solved_point_still_warm_starts():
    """The grid has a 100-cycle and a 400-cycle choice for the second layer; the pool has a
    250-cycle one at a third of the first's LUTs. The network's II (300, the first layer) does not
    need the fast one, so the trim takes the pool's, and the program's own choice is kept for a
    warm start of the next solve."""
    def cand(fmt, lanes, pe, cycles, lut):
        return ilp.Candidate(LayerChoice(fmt, lanes, pe),
                             Cost(cycles=cycles, fill=1, dsp=0, lut=lut, ff=lut, bram18=0), 0.0)

    first = (cand("int8", 1, 1, 300, 100),)
    grid = (cand("int8", 4, 4, 100, 900), cand("int8", 1, 1, 400, 100))
    extra = (cand("int8", 4, 3, 250, 300),)
    b = Budget(device="TEST", util=1.0, dsp=10, lut=5000, ff=5000, bram18=10)
    conv = {"lut": (0, 0.0), "ff": (0, 0.0)}
    base = ilp.Problem(names=("a", "b"), candidates=(first, grid), edges=((0, 1),), budget=b,
                       converter=conv)
    plain = ilp.optimise(base)
    assert plain.ii == 300 and plain.choices[1].pe == 4 and not plain.solved_choices
    pooled = ilp.optimise(ilp.Problem(**{**base.__dict__, "pool": ((), extra)}))
    assert pooled.ii == 300 and pooled.choices[1] == LayerChoice("int8", 4, 3)
    assert pooled.lut == 400 and pooled.solved_choices[1] == LayerChoice("int8", 4, 4)
    model = ilp.build(base, start=pooled)
    assert model.warm


def test_trim_narrows_a_skip_producer_whose_converter_into_the_add_is_priced_once():
    """ResNet-8's stem on XC7Z020: its stream feeds stage1's first conv and, through the skip
    FIFO, the add after stage1's second, whose output feeds two layers. A narrower stem (3 x 1
    for 1 x 4, fewer resources, the II kept) needs a converter on each of its two streams (to
    the first conv's lanes, and to the add's width before it), not one per consumer of the add:
    priced so, the trim takes it; priced per consumer, as the edges of before, it does not."""
    def cand(lanes, pe, cycles, lut):
        return ilp.Candidate(LayerChoice("int4", lanes, pe),
                             Cost(cycles=cycles, fill=1, dsp=0, lut=lut, ff=100, bram18=0), 0.0)

    stem = (cand(1, 4, 75, 300), cand(3, 1, 100, 250))
    conv4 = (cand(4, 4, 100, 100),)
    conv = {"lut": (0, 0.5), "ff": (0, 0.0)}  # a 1 -> 4 converter of 8-bit lanes: 20 LUT
    b = Budget(device="TEST", util=1.0, dsp=10, lut=5000, ff=5000, bram18=10)
    names, cands = ("stem", "conv2", "c1", "c2"), (stem, conv4, conv4, conv4)
    joined = ilp.Problem(names=names, candidates=cands, edges=((0, 1), (1, 2), (1, 3), (0, 1)),
                         edge_to_pe=(False, False, False, True), budget=b, converter=conv)
    sol = ilp.optimise(joined)
    assert sol.ii == 100 and sol.choices[0] == LayerChoice("int4", 3, 1)
    assert sol.lut == 250 + 300 + 2 * 20 and sol.converters == 2
    per_consumer = ilp.Problem(names=names, candidates=cands,
                               edges=((0, 1), (1, 2), (0, 2), (1, 3), (0, 3)), budget=b,
                               converter=conv)
    assert ilp.optimise(per_consumer).choices[0] == LayerChoice("int4", 1, 4)


def test_pool_prices_every_divisor_the_grid_thins_out():
    from dse import accuracy, pareto
    from dse.workload import LayerWork, Workload

    w = Workload(name="mlp", layers=(
        LayerWork(name="fc1", op="linear", in_shape=(400, 1, 1), out_shape=(120, 1, 1),
                  active_in=1.0, active_out=1.0),
        LayerWork(name="fc2", op="linear", in_shape=(120, 1, 1), out_shape=(84, 1, 1),
                  active_in=1.0, active_out=1.0, producers=("fc1",))))
    sens = accuracy.synthetic_sensitivity(w, ["int8"])
    grid, _ = pareto.price(w, ["int8"], sens)
    pool = pareto.pool(w, ["int8"], sens)
    pes = lambda cs: {c.choice.pe for c in cs}  # noqa: E731
    assert 3 not in pes(grid[0]) and 3 in pes(pool[0])
    assert {d for d in range(1, 65) if 120 % d == 0} == pes(pool[0])
    assert {c.choice for c in grid[1]} <= {c.choice for c in pool[1]}


def _timed(problem, seed):
    """``problem`` in time: each candidate a clock period from a few levels (ns), as
    :func:`dse.fmax.choice_delay_ns` gives them, so a slower clock can lose to more cycles."""
    from dataclasses import replace

    rng = random.Random(1000 + seed)
    periods = [5.0, 6.5, 8.0, 11.0]
    cands = tuple(tuple(replace(c, delay_ns=rng.choice(periods)) for c in cs)
                  for cs in problem.candidates)
    objective = problem.objective if problem.objective != "drop" else "ii"
    return replace(problem, candidates=cands, timed=True, objective=objective)


def test_timed_optimum_equals_brute_force():
    """The least time (cycles x the slowest chosen candidate's period) by one cycles program per
    clock level equals the enumerated optimum, and it beats the cycles optimum's time wherever
    a faster clock is worth more cycles."""
    from dataclasses import replace

    feasible = clock_won = 0
    for seed in range(300):
        if feasible >= 40:
            break
        problem = _timed(_instance(seed), seed)
        best = ilp.brute_force(problem)
        if best is None:
            with pytest.raises(ilp.Infeasible):
                ilp.optimise(problem)
            continue
        feasible += 1
        sol = ilp.optimise(problem, warm=seed % 2 == 0)
        assert problem.key(sol) == pytest.approx(problem.key(best)), seed
        assert sol.delay_ns == max(c.delay_ns for c in _picked(problem, sol))
        for r in ("dsp", "lut", "ff", "bram18"):
            assert getattr(sol, r) <= problem.budget.limit(r)
        cycles_opt = ilp.optimise(replace(problem, timed=False))
        assert problem.key(sol) <= problem.key(cycles_opt) + 1e-9
        clock_won += problem.key(sol) < problem.key(cycles_opt) - 1e-9
    assert feasible >= 40 and clock_won >= 3


@pytest.mark.parametrize("form", ["factor", "added ns"])
def test_timed_optimum_with_a_routing_derate_that_grows_with_the_luts(form):
    """Where a design's routing derate grows with its LUTs (``Problem.routing``: a factor, or
    nanoseconds added to its slowest block's delay), the time search descends each clock level's
    staircase of (least cycles, fewest LUTs at them): the time it finds is the enumerated least,
    and on some instances it is a design with fewer LUTs and more cycles than the share-blind
    search keeps."""
    from dataclasses import replace

    feasible = share_won = 0
    for seed in range(300):
        if feasible >= 30:
            break
        base = _timed(_instance(seed), seed)
        mean_delay = sum(c.delay_ns for cs in base.candidates for c in cs) / sum(
            len(cs) for cs in base.candidates)
        routing = ((1.0, 2.0 / base.budget.lut) if form == "factor" else
                   (1.0, 0.0, 0.5, 2.0 * mean_delay / base.budget.lut))
        problem = replace(base, routing=routing)
        best = ilp.brute_force(problem)
        if best is None:
            continue
        feasible += 1
        sol = ilp.optimise(problem, warm=seed % 2 == 0)
        assert problem.key(sol) == pytest.approx(problem.key(best)), seed
        assert sol.lut <= problem.budget.lut
        blind = ilp.optimise(base)
        assert problem.key(sol) <= problem.key(blind) + 1e-9, seed
        share_won += problem.key(sol) < problem.key(blind) - 1e-9
    assert feasible >= 30 and share_won >= 3


def _picked(problem, sol):
    pool = [c for cs in (*problem.candidates, *problem.pool) for c in cs]
    return [next(c for c in pool if c.choice == ch and c.cost == cost)
            for ch, cost in zip(sol.choices, sol.costs, strict=True)]


def test_timed_problem_needs_every_delay():
    problem = _instance(3)
    with pytest.raises(ValueError, match="delay_ns"):
        from dataclasses import replace

        replace(problem, timed=True)


def _counted(problem, seed):
    """``problem`` with each candidate's multipliers (lanes x pe x 9 over a kernel fold, as
    :func:`dse.cost.multipliers` counts a 3x3 conv's, plus a little noise so that designs of one
    II differ in multipliers and resources both ways) and a drop per layer and format."""
    from dataclasses import replace

    rng = random.Random(2000 + seed)
    # a layer's drop is its format's, as the sensitivity prices it
    drop = [{f: round(rng.uniform(0, 0.05), 4) for f in ("int8", "int4", "dybit4")}
            for _ in problem.candidates]
    # two formats, so that a point's format has alternatives in most layers
    cands = [[replace(c, choice=LayerChoice(rng.choice(["int8", "int4"]), c.choice.lanes,
                                            c.choice.pe))
              for c in cs] for cs in problem.candidates]
    cands = tuple(tuple(replace(c, drop=drop[i][c.choice.format],
                                multipliers=c.choice.lanes * c.choice.pe * 9
                                // rng.choice([1, 3]) + rng.randint(0, 2)) for c in cs)
                  for i, cs in enumerate(cands))
    objective = problem.objective if problem.objective != "drop" else "ii"
    return replace(problem, candidates=cands, objective=objective)


def _fewest_by_enumeration(problem, sol):
    """The fewest multipliers of an assignment in ``sol``'s formats and drops, within the budget, no
    slower (the program's cycles; in time, no longer delay and no more LUTs where routing
    grows with them)."""
    import itertools

    best = None
    for picks in itertools.product(*(range(len(c)) for c in problem.candidates)):
        s = ilp.evaluate(problem, picks)
        if [c.format for c in s.choices] != [c.format for c in sol.choices] or any(
                a != b for a, b in zip(s.drops, sol.drops, strict=True)):
            continue
        if problem.cycles(s) > problem.cycles(sol) or not ilp._fits(problem, s):
            continue
        if problem.timed and (s.delay_ns > sol.delay_ns + 1e-9
                              or problem.routes_by_lut and s.lut > sol.lut):
            continue
        m = sum(problem.candidates[i][k].multipliers for i, k in enumerate(picks))
        best = m if best is None else min(best, m)
    return best


@pytest.mark.parametrize("timed", [False, True])
def test_fewest_multipliers_equals_enumeration(timed):
    """``fewest_multipliers`` keeps the point's formats (so its predicted drop), its cycles (and
    in time its clock and, where routing grows with the LUTs, its LUTs) and the budget, and has
    the fewest multipliers any such design has; the point itself when it already has them."""
    from dataclasses import replace

    checked = moved = 0
    for seed in range(400):
        if checked >= 120:
            break
        problem = _counted(_instance(seed), seed)
        if timed:
            problem = _timed(problem, seed)
            if seed % 2:
                problem = replace(problem, routing=(1.0, 2.0 / problem.budget.lut))
        try:
            sol = ilp.optimise(problem, time_limit=5)
        except ilp.Infeasible:
            continue
        checked += 1
        got = ilp.fewest_multipliers(problem, sol, time_limit=5)
        least = _fewest_by_enumeration(problem, sol)
        assert got.multipliers == least, seed
        assert [c.format for c in got.choices] == [c.format for c in sol.choices]
        assert got.drop == pytest.approx(sol.drop)
        assert problem.cycles(got) <= problem.cycles(sol)
        assert problem.key(got) <= problem.key(sol) + 1e-9
        assert ilp._fits(problem, got)
        if sol.multipliers == least:
            assert got is sol  # nothing to gain: the point as it was
        else:
            moved += 1
            assert got.solved_choices
    # in time most alternatives have a slower clock: fewer points can move
    assert checked >= 120 and moved >= (3 if timed else 5)


def test_fewest_multipliers_trades_luts_for_idle_multipliers_within_the_budget():
    """ResNet-20's 64-channel 3x3 conv on XC7Z020 (II 24,577): at kernel fold 1 it has 144
    multipliers busy two thirds of the time, folded 3x 96 busy all of it, at more LUTs (the
    fold's multiplexers and wider window). The program and the trim keep the cheaper 144;
    ``fewest_multipliers`` takes the 96 while the LUT budget has room for them, and keeps the
    144 when it does not."""
    from dataclasses import replace

    def cand(lanes, pe, kfold, cycles, lut, mults):
        return ilp.Candidate(LayerChoice("int4", lanes, pe, "lut", kfold),
                             Cost(cycles=cycles, fill=1, dsp=0, lut=lut, ff=lut, bram18=0), 0.0,
                             multipliers=mults)

    first = (cand(4, 4, 3, 24_576, 5000, 48),)
    conv = (cand(4, 4, 1, 16_384, 9000, 144), cand(8, 4, 3, 24_576, 9400, 96),
            cand(4, 2, 1, 32_768, 4500, 72))
    b = Budget(device="TEST", util=1.0, dsp=0, lut=20_000, ff=20_000, bram18=0)
    problem = ilp.Problem(names=("a", "b"), candidates=(first, conv), edges=((0, 1),), budget=b,
                          converter={"lut": (0, 0.0), "ff": (0, 0.0)})
    sol = ilp.optimise(problem)
    assert sol.ii == 24_576 and sol.choices[1].kfold == 1 and sol.multipliers == 192
    got = ilp.fewest_multipliers(problem, sol)
    assert got.ii == 24_576 and got.choices[1] == LayerChoice("int4", 8, 4, "lut", 3)
    assert got.multipliers == 144 and got.lut == 14_400
    tight = replace(problem, budget=replace(b, lut=14_000))
    assert ilp.fewest_multipliers(tight, ilp.optimise(tight)).choices[1].kfold == 1


def test_priced_candidates_count_their_multipliers():
    """:func:`dse.pareto.price` counts each candidate's multipliers as the block has them: a
    full 3x3 conv lanes x pe x 9 / kfold, a depthwise one pe x 9 / kfold, a dense layer
    lanes x pe."""
    from dse import accuracy, pareto
    from dse.workload import LayerWork, Workload

    w = Workload(name="t", layers=(
        LayerWork(name="c", op="conv", in_shape=(16, 8, 8), out_shape=(32, 8, 8), kernel=3,
                  active_in=1.0, active_out=1.0),
        LayerWork(name="d", op="conv", in_shape=(32, 8, 8), out_shape=(32, 8, 8), kernel=3,
                  active_in=1.0, active_out=1.0, groups=32),
        LayerWork(name="f", op="linear", in_shape=(32, 1, 1), out_shape=(10, 1, 1),
                  active_in=1.0, active_out=1.0),
    ))
    sens = accuracy.synthetic_sensitivity(w, ["int8"])
    cands, _ = pareto.price(w, ["int8"], sens, count=1 << 30)
    folds = set()
    for layer, cs in zip(w.layers, cands, strict=True):
        for c in cs:
            ch = c.choice
            width = ch.pe if layer.kind == "dwconv3x3" else ch.lanes * ch.pe
            taps = 1 if layer.op == "linear" else 9
            assert c.multipliers == width * taps // ch.kfold, (layer.name, ch)
            folds.add((layer.kind, ch.kfold))
    assert ("conv3x3", 3) in folds and ("dwconv3x3", 3) in folds
