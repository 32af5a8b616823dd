"""The zoo networks end to end: hw.build designs of trained models against QGraph.run_frame.

Slow (whole-network Verilator builds, minutes each on 2 cores); a model that is not in the
checkpoint cache is skipped, not trained (``codesign train --model NAME`` first). Points: all-int8
and the mixed dybit4/int4/int8 point of :func:`cosim.matrix.point_formats`.
"""

import json

import pytest

from codesign.cli import main
from common.errors import CodesignError
from cosim import matrix
from cosim.session import simulate

pytestmark = [pytest.mark.rtl, pytest.mark.slow]

NETS = ["digits", "eventdigits", "eye"]


def _bundle(model):
    from models import zoo
    try:
        return zoo.load(model, train_if_missing=False, progress=False)
    except zoo.ModelError as exc:
        pytest.skip(f"model {model} is not trained here ({exc})")


@pytest.fixture(scope="module")
def zoo_build(tmp_path_factory):
    """``zoo_build(model, point) -> cosim.matrix.Design``, built once per module."""
    root = tmp_path_factory.mktemp("zoo")
    made = {}

    def make(model, point):
        if (model, point) not in made:
            try:
                made[model, point] = matrix.load_design(model, point, root)
            except CodesignError as exc:
                if "is not trained here" in str(exc):
                    pytest.skip(str(exc))
                raise
        return made[model, point]
    return make


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("point", ["int8", "mixed"])
@pytest.mark.parametrize("model", NETS)
def test_zoo_network_zero_mismatches(zoo_build, kit, sim_cache, model, point, stall):
    kit.need("verilator")
    d = zoo_build(model, point)
    frames, n_special = d.frames(20, seed=1)
    r = simulate(d.manifest, frames, d.golden, sim="verilator", stall_in=stall,
                 stall_out=stall, seed=3, cache_dir=sim_cache, timeout=1_000_000)
    assert r.ok, (r.mismatches[:3], r.stopped)
    assert r.frames == len(frames) == 20 + n_special


@pytest.mark.parametrize("stall", [0.0, 0.7])
@pytest.mark.parametrize("point", ["int8", "mixed"])
@pytest.mark.parametrize("model", ["digits", "eventdigits"])
def test_zoo_special_frames(zoo_build, kit, sim_cache, model, point, stall):
    """Empty, full, single-site (corners and inside) and border-only frames, alone; a dense
    network (digits) takes only full frames: its specials are extreme values."""
    kit.need("verilator")
    d = zoo_build(model, point)
    frames, n_special = d.frames(0, seed=4)
    c, h, w = d.qgraph.input.in_shape
    sites = [len(coords) for coords, _ in frames]
    want = [h * w] * 5 if d.qgraph.dense else [0, h * w, 1, 1, 1, 2 * (h + w) - 4, 0]
    assert sites == want and n_special == len(frames)
    r = simulate(d.manifest, frames, d.golden, sim="verilator", stall_in=stall,
                 stall_out=stall, seed=5, cache_dir=sim_cache, timeout=1_000_000)
    assert r.ok, (r.mismatches[:3], r.stopped)
    assert len(r.cycles_per_frame) == len(frames)


def test_cli_build_then_sim_digits(tmp_path, capsys):
    _bundle("digits")
    assert main(["build", "--model", "digits", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["sim", "--build", str(tmp_path), "--frames", "20", "--stall", "0.3"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["frames"] == 20 and line["mismatches"] == 0
