"""Where synth_ecp5 puts a memory (models.ops._price.libmap_choice, the rule the DSE prices ECP5
memories with) against real Yosys runs of benchmarks/memory_map.py's memories."""

import pytest
from helpers import load_benchmark

from dse.cost import resource_model
from models.ops._price import dual_port_memory, libmap_choice, memory


@pytest.fixture(scope="module")
def ecp5():
    return resource_model("dse/resource_model_ecp5.json")


@pytest.fixture(scope="module")
def memory_map():
    return load_benchmark("memory_map")


def test_the_rule_prices_each_side_as_yosys_does(ecp5):
    # a ROM: EBR when 128 per EBR (+14) is less than 1/16 per bit in logic, logic on a tie
    assert libmap_choice(ecp5, 36, 64, rom=True) == "bram"      # 144 > 142
    assert libmap_choice(ecp5, 16, 128, rom=True) == "logic"    # 128 < 142
    assert libmap_choice(ecp5, 576, 64, rom=True) == "bram"     # 16 EBR, not 2,304 LUT4
    assert libmap_choice(ecp5, 576, 48, rom=True) == "logic"
    # a RAM: LUT RAM cells with their read multiplexers against EBR
    assert libmap_choice(ecp5, 8, 128, rom=False) == "lutram"
    assert libmap_choice(ecp5, 8, 192, rom=False) == "bram"
    assert libmap_choice(ecp5, 64, 64, rom=False) == "bram"     # a wide line-buffer bank
    assert libmap_choice(ecp5, 64, 32, rom=False) == "lutram"
    # what the prices follow from it
    assert memory(ecp5, 576, 64, rom=True) == (0, 16)
    # ... a ROM in logic is a multiplexer tree over every address: 48 words as 64, 4 LUT4 a bit
    # (synth_ecp5: rom 4 x 48 in 16 LUT4, 8 x 48 in 32, reports/memory_map_ecp5.csv)
    assert memory(ecp5, 576, 48, rom=True) == (576 * 4, 0)
    assert dual_port_memory(ecp5, 64, 64) == (0, 2)
    # 32 TRELLIS_DPR16X4, 6 LUT4 each, and the read multiplexer over their two rows and the
    # write decode: 66 LUT4, as synth_ecp5 maps it (reports/memory_map_ecp5.csv, ram 64 x 32)
    assert dual_port_memory(ecp5, 64, 32) == (16 * 2 * 6 + 66, 0)


def test_lut_ram_logic_is_tabled_by_rows_of_cells(ecp5):
    """A LUT RAM's read multiplexer and write decode on ECP5: the grid's table (per read bit
    by rows of cells, plus one LUT4 a row), exact where Yosys was run, interpolated between its
    row counts and grown with the rows past its last; none for one row of cells, none where a
    model has no table (UltraScale+), and none in the cells-only count a pool's fitted read
    multiplexer term goes with."""
    from models.ops._price import lutram_logic, lutram_luts

    # synth_ecp5 (reports/memory_map_ecp5.csv): 8 x 128 (8 rows) 56 LUT4, 18 x 64 (4 rows) 76,
    # 4 x 96 (6 rows) 46, 9 x 48 (3 rows) 21
    assert [lutram_logic(ecp5, w, r) for w, r in ((8, 8), (18, 4), (4, 6), (9, 3))] == \
        [56, 76, 46, 21]
    assert lutram_logic(ecp5, 8, 1) == 0
    five = lutram_logic(ecp5, 8, 5)  # between 4 rows (36) and 6 rows (86)
    assert lutram_logic(ecp5, 8, 4) < five < lutram_logic(ecp5, 8, 6)
    t = ecp5.memory["lutram_logic"]
    assert lutram_logic(ecp5, 4, 32) == -(-(t["per_bit"][-1] * 31 / 15 * 4 + 32) // 1)
    assert lutram_luts(ecp5, 8, 128) == 16 * 6
    assert lutram_luts(ecp5, 8, 128, logic=True) == 16 * 6 + 56
    assert lutram_logic(resource_model(), 8, 8) == 0


def test_the_lut_ram_table_is_fitted_from_the_grid(memory_map):
    """memory_map.lutram_logic_fit recovers a table the samples were made from, one per_bit per
    row count and one per_row, and says what the cells alone would miss."""
    per, per_row = {2: 1.0, 4: 4.0, 8: 6.0}, 1.0
    rows = [{"kind": k, "width": w, "depth": 16 * r, "observed": "lutram",
             "lut": int(per[r] * w + per_row * r)}
            for k in ("ram", "ramnrw") for r in per for w in (4, 8, 16)]
    rows += [{"kind": "rom", "width": 8, "depth": 64, "observed": "logic", "lut": 500},
             {"kind": "ram", "width": 8, "depth": 16, "observed": "lutram", "lut": 0}]
    fit = memory_map.lutram_logic_fit(rows)
    assert fit["rows"] == [2, 4, 8] and fit["per_bit"] == [1.0, 4.0, 6.0]
    assert fit["per_row"] == 1.0 and fit["memories"] == 18 and fit["max_abs_error"] == 0
    assert fit["max_abs_error_without"] == 6 * 16 + 8


def test_xilinx_roms_keep_their_thresholds_and_rams_follow_the_rule():
    """UltraScale+: ROMs (weights, biases) by the depth thresholds; RAMs (FIFO storage) by
    Yosys' rule with the Xilinx costs (129 a RAMB18E2, 16 a 64 x 7 LUT RAM cell)."""
    xcup = resource_model()
    assert libmap_choice(xcup, 576, 64, rom=True) is None
    assert memory(xcup, 576, 128, rom=True) == (576 * 128 // xcup.memory["lutram_bits_per_lut"],
                                                0)
    assert memory(xcup, 576, 256, rom=True)[1] == 16
    # a FIFO before the global pool: LUT RAM to 64 words, block RAM from 76 (the thresholds
    # said LUT RAM below 256 words)
    assert memory(xcup, 69, 64)[1] == 0
    assert memory(xcup, 69, 76) == (0, 2)
    assert memory(xcup, 8, 256)[1] == 0     # narrow: 4 rows of LUT RAM cost less
    assert memory(xcup, 39, 152) == (0, 2)


@pytest.mark.parametrize("job", [("ram", 69, 64), ("ram", 69, 76), ("ram", 39, 128),
                                 ("ram", 39, 152), ("ram", 8, 256)])
def test_the_xilinx_ram_rule_names_what_synth_xilinx_does(memory_map, tmp_path, job):
    """Real synth_xilinx -family xcup runs on each side of the RAM rule's boundaries."""
    xcup = resource_model()
    _, width, depth = job
    r = memory_map.run_one(job, tmp_path, family="xcup")
    lut, bram = memory(xcup, width, depth)
    assert r["bram18"] == bram
    assert (r["observed"] == "bram") == (bram > 0)


@pytest.mark.parametrize("job", [("rom", 36, 64), ("rom", 36, 48), ("ram", 64, 64),
                                 ("ram", 64, 32), ("ram", 8, 192), ("ram", 8, 128)])
def test_the_rule_names_what_synth_ecp5_does(memory_map, ecp5, tmp_path, job):
    """Real synth_ecp5 runs on each side of the rule's boundaries."""
    r = memory_map.run_one(job, tmp_path)
    kind, width, depth = job
    assert r["observed"] == libmap_choice(ecp5, width, depth, rom=kind == "rom")
    if r["observed"] == "bram":
        assert r["bram18"] == memory(ecp5, width, depth, rom=kind == "rom")[1]
    if kind == "ram" and r["observed"] == "lutram":
        # every LUT4 of it: the cells and their read multiplexer and write decode
        assert dual_port_memory(ecp5, width, depth) == (r["lut_total"], 0)


#: Each side of the AMD RAM rule's LUT RAM / block RAM boundary, where the two families differ
#: (16 x 192 and 24 x 96: LUT RAM on xcup's 7- and 14-bit cells; block RAM and LUT RAM on xc7's
#: 3- and 6-bit ones) and where a line buffer's row memory sits (MobileNet-v1 0.25 at 96 x 96:
#: 8 bits x 384 words, block RAM on both, where the price had LUT RAM).
XILINX_BOUNDARY = [("xcup", 8, 256), ("xcup", 8, 384), ("xcup", 16, 192), ("xcup", 16, 256),
                   ("xc7", 16, 128), ("xc7", 16, 192), ("xc7", 24, 96), ("xc7", 24, 128)]


@pytest.mark.parametrize("family,width,depth", XILINX_BOUNDARY)
def test_the_xilinx_ram_rule_places_each_part_family_as_synth_xilinx_does(
        memory_map, tmp_path, family, width, depth):
    """Real synth_xilinx runs of a RAM read through a register (a line buffer's row memory, a
    FIFO's storage) against :func:`models.ops._price.dual_port_memory` under the part's model:
    the mapping and the block count."""
    from dse.cost import for_family

    model = for_family(family)
    r = memory_map.run_one(("ram", width, depth), tmp_path, family=family)
    lut, bram = dual_port_memory(model, width, depth)
    assert r["observed"] == ("bram" if bram else "lutram")
    assert r["bram18"] == bram

