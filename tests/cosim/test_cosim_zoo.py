"""The zoo networks end to end: hw.build designs of trained models against QGraph.run_frame.

Slow (whole-network Verilator builds, minutes each on 2 cores); a model that is not in the
checkpoint cache is skipped, not trained (``codesign train --model NAME`` first).
"""

import json
import random

import pytest

from codesign.cli import main
from cosim.session import simulate

pytestmark = [pytest.mark.rtl, pytest.mark.slow]

NETS = ["digits", "eventdigits", "eye"]
MIX = ["int8", "dybit4", "int4", "dybit8"]


def _bundle(model):
    from models import zoo
    try:
        return zoo.load(model, train_if_missing=False, progress=False)
    except zoo.ModelError as exc:
        pytest.skip(f"model {model} is not trained here ({exc})")


@pytest.fixture(scope="module")
def zoo_build(tmp_path_factory):
    made = {}

    def make(model, point):
        if (model, point) not in made:
            from cosim.golden import qgraph_golden
            from hw.build import build
            from hw.point import DesignPoint
            bundle = _bundle(model)
            formats = "int8" if point == "int8" else {
                name: MIX[i % len(MIX)] for i, name in enumerate(bundle.layer_names())}
            qgraph = bundle.qgraph(formats)
            d = tmp_path_factory.mktemp(f"{model}-{point}")
            build(qgraph, DesignPoint.default(qgraph, model=bundle.name), d, model=bundle.name)
            made[model, point] = (d, qgraph_golden(qgraph), bundle, qgraph)
        return made[model, point]
    return make


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("point", ["int8", "mixed"])
@pytest.mark.parametrize("model", NETS)
def test_zoo_network_zero_mismatches(zoo_build, kit, sim_cache, model, point, stall):
    kit.need("verilator")
    d, golden, bundle, qgraph = zoo_build(model, point)
    c, h, w = qgraph.input.in_shape
    frames = list(bundle.frames(20, seed=1))
    frames += kit.special_frames(random.Random(2), height=h, width=w, channels=c)
    r = simulate(d, frames, golden, sim="verilator", stall_in=stall, stall_out=stall, seed=3,
                 cache_dir=sim_cache, timeout=1_000_000)
    assert r.ok, (r.mismatches[:3], r.stopped)
    assert r.frames == len(frames) >= 26


def test_cli_build_then_sim_digits(tmp_path, capsys):
    _bundle("digits")
    assert main(["build", "--model", "digits", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["sim", "--build", str(tmp_path), "--frames", "20", "--stall", "0.3"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["frames"] == 20 and line["mismatches"] == 0
