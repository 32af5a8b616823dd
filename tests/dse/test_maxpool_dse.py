"""The DSE on networks with 2x2 max pools: the pool is priced as a stage of the layer that feeds it
(its cycles and resources), and the integer program explores them."""

import random

import torch
from helpers import maxpool_qgraph

from contract.point import LayerChoice
from dse import accuracy, devices, pareto, workload
from dse.cost import cycles, fill_cycles, resources
from dse.workload import LayerWork, from_qgraph
from models.ops.maxpool import maxpool2


def _stats(g, density, seed=0):
    c, h, w = g.input.in_shape
    rng = random.Random(seed)
    frames = []
    for _ in range(4):
        sites = [(y, x) for y in range(h) for x in range(w) if rng.random() < density]
        frames.append((sites, [[rng.randint(0, 127) for _ in range(c)] for _ in sites]))
    return workload.measure_activity(g, frames)


def test_pools_are_stages_of_their_producer():
    g = maxpool_qgraph(0, h=16, w=16)
    wl = from_qgraph(g, _stats(g, 0.4))
    stem, pw, fc = wl.layers
    assert [s["op"] for s in stem.stages] == ["maxpool"]
    assert [s["op"] for s in pw.stages] == ["maxpool", "gap"]
    mp = stem.stages[0]
    assert mp["in_shape"] == (4, 16, 16) and mp["out_shape"] == (4, 8, 8)
    assert 0 < mp["active_out"] <= mp["active_in"] == stem.active_out
    # round trip through JSON keeps the stage
    assert workload.Workload.from_json(wl.to_json()) == wl


def test_pool_on_the_input_is_priced_at_the_first_layers_lanes():
    g = maxpool_qgraph(0, h=12, w=14, pool_first=True, head="map")
    wl = from_qgraph(g, _stats(g, 0.5))
    stem = wl.layers[0]
    assert stem.stages[0]["op"] == "maxpool" and stem.stages[0]["at"] == "input"
    slow, fast = LayerChoice("int8", 1, 4), LayerChoice("int8", 2, 4)
    # at one lane the 2-channel input pool (2 beats per site) is the stage's bottleneck
    mp = stem.stages[0]
    want = 2 * (mp["active_in"] + mp["active_out"]) + 1
    assert cycles(stem, slow) == round(want + 0.4999)
    assert cycles(stem, fast) < cycles(stem, slow)


def test_pool_adds_cycles_fill_and_resources():
    g = maxpool_qgraph(0, h=16, w=16)
    stem = from_qgraph(g, _stats(g, 1.0)).layers[0]
    bare = LayerWork(**{**stem.to_dict(), "stages": ()})
    ch = LayerChoice("int8", 2, 4)
    # the pool at the stem's 4 output lanes: (256 + 64) beats and the end of frame
    assert cycles(stem, ch) == 256 + 64 + 1 > cycles(bare, ch)
    assert fill_cycles(stem, ch) > fill_cycles(bare, ch)
    with_pool, without = resources(stem, ch), resources(bare, ch)
    assert with_pool["lut"] > without["lut"] and with_pool["ff"] > without["ff"]


def test_explorer_finds_a_front_for_a_network_with_pools():
    g = maxpool_qgraph(2, h=16, w=16)
    wl = from_qgraph(g, _stats(g, 1.0))
    formats = ("int8", "int4", "dybit4")
    sens = accuracy.synthetic_sensitivity(wl, formats)
    cands, _ = pareto.price(wl, formats, sens)
    problem = pareto.make_problem(wl, cands, devices.budget("XC7Z020", 0.8))
    front, _, _ = pareto.timed_sweep(problem, points=3)
    assert front
    for _, sol in front:
        assert sol.ii >= max(min(c.cost.cycles for c in cs) for cs in problem.candidates)


def test_golden_pool_matches_torch_on_the_graphs_dense_map():
    g = maxpool_qgraph(4, h=8, w=8)
    x = torch.randint(0, 128, (64, 2))
    coords = torch.tensor([(y, xx) for y in range(8) for xx in range(8)])
    env = g.run_frame_all(coords, x)
    stem = env["stem"][1].t().reshape(4, 8, 8)
    assert torch.equal(env["mp1"][1].t().reshape(4, 4, 4),
                       torch.nn.functional.max_pool2d(stem[None].double(), 2)[0].long())
    assert torch.equal(env["mp1"][0], maxpool2(*env["stem"], height=8, width=8)[0])


def test_the_row_buffer_is_priced_as_lut_ram_with_its_two_read_ports():
    """hw.maxpool reads its row buffer asynchronously through two ports (the update's and the
    flush's): LUT RAM whatever its size, and on ECP5, whose TRELLIS_DPR16X4 has one read port,
    twice the cells (synth_ecp5 of the 32-channel 60 x 80 calibration at 4 lanes: 1,920 LUT4s in
    the cells); Xilinx' multi-port cells take both in one set."""
    from dse.cost import for_budget, resource_model
    from models import ops
    from models.ops import _price

    ecp5, xcup = for_budget(devices.budget("LFE5U-85F")), resource_model()
    assert _price.lutram_copies(ecp5, 2) == 2 and _price.lutram_copies(xcup, 2) == 1
    assert _price.lutram_copies(ecp5, 1) == 1
    stage = {"name": "p", "op": "maxpool", "in_shape": (32, 60, 80)}
    op = ops.get("maxpool")
    assert op.block_structural(stage, lanes=4, model=ecp5)["lut"] == 1920
    one = _price.lutram_luts(xcup, 32, 320)
    assert op.block_structural(stage, lanes=4, model=xcup)["lut"] == one
