"""cosim.matrix: named points, special frames, CSV rows, and the simulator comparison."""

import random

import pytest

from common.errors import CodesignError
from cosim import matrix
from cosim.manifest import load_manifest
from cosim.session import expected_frames


def test_point_formats():
    names = ["stem", "dw1", "pw1", "dw2", "fc"]
    assert matrix.point_formats(names, "int8") == "int8"
    assert matrix.point_formats(names, "mixed") == {
        "stem": "int8", "dw1": "dybit4", "pw1": "int4", "dw2": "int8", "fc": "dybit4"}
    with pytest.raises(CodesignError, match="point must be one of int8, mixed, not 'int4'"):
        matrix.point_formats(names, "int4")


def test_special_frames_cover_empty_full_single_and_borders():
    frames = matrix.special_frames(random.Random(0), height=5, width=7, channels=3)
    sites = [c for c, _ in frames]
    assert sites[0] == sites[-1] == []
    assert sites[1] == [(y, x) for y in range(5) for x in range(7)]
    assert sites[2:5] == [[(0, 0)], [(4, 6)], [(2, 2)]]
    border = set(sites[5])
    assert all(y in (0, 4) or x in (0, 6) for y, x in border) and len(border) == 2 * (5 + 7) - 4
    for coords, feats in frames:
        assert len(feats) == len(coords) and all(len(f) == 3 for f in feats)
        assert all(-127 <= v <= 127 for f in feats for v in f)
    assert sorted(sites[5]) == sites[5]  # raster order


def test_special_frames_of_a_dense_network_are_full():
    # a dense network refuses a frame without every site: its specials are in the values
    frames = matrix.special_frames(random.Random(0), height=3, width=4, channels=2, dense=True)
    full = [(y, x) for y in range(3) for x in range(4)]
    assert [c for c, _ in frames] == [full] * 5
    values = [{v for f in feats for v in f} for _, feats in frames]
    assert values[:3] == [{127}, {-127}, {0}] and values[4] == {127, -127}
    assert all(len(feats) == 12 and all(len(f) == 2 for f in feats) for _, feats in frames)


def test_csv_rows_merge_and_round_trip(tmp_path):
    def row(model, stall, sim="verilator", check="matrix", mism=0):
        return {"check": check, "model": model, "point": "int8", "stall": stall, "sim": sim,
                "path": "fast", "frames": 27, "mismatches": mism}
    path = tmp_path / "m.csv"
    matrix.write_csv(path, [row("digits", 0.0), row("eye", 0.0), row("eye", 0.3)])
    old = matrix.read_csv(path)
    assert [r["model"] for r in old] == ["digits", "eye", "eye"]
    assert list(old[0]) == list(matrix.CSV_COLUMNS)
    new = [row("eye", 0.3, mism=2), row("eye", 0.3, sim="icarus", check="sim-agreement")]
    merged = matrix.merge_rows(old, new)
    assert [(r["model"], float(r["stall"]), str(r["mismatches"])) for r in merged] == [
        ("digits", 0.0, "0"), ("eye", 0.0, "0"), ("eye", 0.3, "2"), ("eye", 0.3, "0")]
    assert not list(tmp_path.glob(".m.csv.*"))  # atomic write left no temporary behind


def test_missing_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(CodesignError, match="model 'digits' is not trained here"):
        matrix.load_design("digits", "int8", tmp_path)


@pytest.mark.rtl
@pytest.mark.slow  # two simulator builds and runs: about 100 s on the shared 2-core machine
def test_compare_simulators_on_tiny_network(tiny_net, kit, sim_cache, tmp_path):
    kit.need("verilator")
    kit.need("icarus")
    d, golden, g = tiny_net(["int8"] * 6, lanes=2, pe=2)
    design = matrix.Design(model="tiny", point="int8", manifest=load_manifest(d), qgraph=g,
                           bundle=None, golden=golden, rebuilt=True)
    c, h, w = g.input.in_shape
    fs = kit.frame_set(seed=31, n=4, height=h, width=w, channels=c)
    frames = fs[7:] + fs[:7]  # data frames first, then the 7 special ones (as Design.frames)
    rows = matrix.compare_simulators(design, frames=frames,
                                     expected=expected_frames(frames, golden), n_special=7,
                                     stall=0.3, cache_dir=sim_cache, work_root=tmp_path)
    v, i = rows
    assert (v["sim"], i["sim"]) == ("verilator", "icarus")
    assert v["mismatches"] == i["mismatches"] == 0 and not v["deadlock"] and not i["deadlock"]
    assert i["outputs_identical"] is True and i["cycles_identical"] is True
    assert v["total_cycles"] == i["total_cycles"] > 0
    assert v["frames"] == len(frames) and v["data_frames"] == len(frames) - 7
    # unstalled, a cell also compares its data frames' periods with the cycle model
    row, r = matrix.run_cell(design, frames=frames, expected=expected_frames(frames, golden),
                             n_special=7, stall=0.0, cache_dir=sim_cache,
                             work_dir=tmp_path / "s0")
    assert r.ok and row["formula_frames"] == len(frames) - 7 - 1
    assert 0.9 <= row["formula_ratio_min"] <= row["formula_ratio_mean"] <= \
        row["formula_ratio_max"] <= 1.3
