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
