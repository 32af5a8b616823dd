"""The report's resource table: LUT counts LUTRAM, and a resource over the budget is flagged."""

from reports.report import _resource_rows


def test_lut_counts_lutram_and_over_budget_is_flagged():
    # XCZU3EG: 70560 LUT, 360 DSP; budget at util 0.8 = 56448 LUT, 288 DSP
    res = {"lut": 56815, "lut_total": 60647, "ff": 15068, "dsp": 264, "bram18": 3}
    rows = {r[0]: r for r in _resource_rows(res, "XCZU3EG", 0.8)}
    label, used, avail, share, budget, over = rows["LUT (logic + LUTRAM)"]
    assert (used, avail, budget, over) == (60647, 70560, 56448, True)
    assert share == "86.0 %"
    assert rows["DSP"][4:] == (288, False)


def test_old_resources_without_lut_total_use_lut():
    rows = _resource_rows({"lut": 100, "ff": 1, "dsp": 0, "bram18": 0}, "XCZU3EG", 0.8)
    assert rows[0][1] == 100 and rows[0][5] is False


def test_xilinx_clock_estimate_is_labelled_and_compared_with_the_assumed_clock():
    from reports.report import timing_estimate_lines

    t = {"fmax_mhz": 74.8, "delay_ns": 13.377, "logic_ns": 1.784, "route_ns": 11.593,
         "levels": 10, "path": "FDRE -> LUT2 -> FDRE.D", "from": "a.level", "to": "b.wr",
         "basis": "estimate: static timing ...; no placement", "unmodelled": {"XORCY": 2},
         "logic_only": {"fmax_mhz": 248.1}}
    text = "\n".join(timing_estimate_lines(t, 200, ii_cycles=259))
    assert "Estimated Fmax 74.8 MHz" in text and "assumed 200 MHz" in text
    assert "**not within**" in text and "no open placer" in text
    assert "11.59 ns of assumed routing" in text and "248.1 MHz" in text
    assert "3.46 us" in text and "XORCY x2" in text and "no placement" in text
    assert "**not within**" not in "\n".join(timing_estimate_lines(t, 50))
    assert timing_estimate_lines(None, 200) == [] and timing_estimate_lines(
        {"fmax_mhz": None}, 200) == []
    # a DSE that counted time at its own estimate is compared with that, not the assumed clock
    timed = "\n".join(timing_estimate_lines(t, 200, dse_fmax=80.0))
    assert "Fmax model's 80.0 MHz, +7.0 % from the netlist's estimate" in timed
    assert "assumed 200" not in timed


def test_a_broken_bound_is_explained_with_its_figures():
    import pandas as pd

    from reports.report import bound_sentence

    front = pd.DataFrame({"point": [0, 1], "accuracy_pred": [0.9861, 0.9877],
                          "acc_drop": [-0.0006, -0.0022], "max_drop": [0.001, float("nan")],
                          "accuracy_measured": [0.9838, 0.9850], "bound_ok": [False, True]})
    text = bound_sentence(front)
    assert "`bound_ok`" in text and "point 0 was solved for a drop of at most 0.10 points" in text
    assert "measures 0.17" in text and "point 1" not in text
    assert bound_sentence(front.drop(columns="max_drop")) == ""
