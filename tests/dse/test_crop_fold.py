"""The DSE side of a crop folded into its conv (models.ops.crop.folded_margin): the workload
carries the margin, prices the conv and its crop at the inner sites, and round-trips through
JSON."""

import math

import pytest
from helpers import valid_qgraph

from contract.cycles import window_cycles
from contract.point import LayerChoice
from dse.cost import cycles
from dse.workload import LayerWork, Workload, from_qgraph


def test_workload_has_the_margin_and_the_crops_inner_sites():
    g = valid_qgraph(0, h=11, w=12)
    w = from_qgraph(g)
    layers = {x.name: x for x in w.layers}
    assert (layers["c1"].margin, layers["c2"].margin, layers["dw"].margin, layers["fc"].margin) \
        == (1, 2, 1, 0)
    crop = next(s for s in layers["c2"].stages if s["op"] == "crop")
    assert crop["active_in"] == crop["active_out"] == 5 * 6   # (9 - 4) x (10 - 4)
    back = Workload.from_json(w.to_json())
    assert back == w
    assert "margin" not in w.layers[-1].to_dict()        # 0: the workload files of before
    sparse = from_qgraph(valid_qgraph(0, dense=False))
    assert all(x.margin == 0 for x in sparse.layers)


def test_folded_conv_cycles_are_the_contracts_and_below_the_full_maps():
    g = valid_qgraph(0, h=11, w=12)
    c2 = {x.name: x for x in from_qgraph(g).layers}["c2"]
    ch = LayerChoice("int8", 4, 1)                      # 6 output groups a beat
    got = cycles(c2, ch)
    c, h, w = c2.in_shape
    want = window_cycles(height=h, width=w, channels=c, lanes=4, stride=1, active_sites=h * w,
                         cycles_per_beat=6, margin=2, burst=True)
    full = window_cycles(height=h, width=w, channels=c, lanes=4, stride=1, active_sites=h * w,
                         cycles_per_beat=6)
    assert got == math.ceil(want) and got < 0.6 * full


@pytest.mark.parametrize("kw,match", [
    ({"margin": 1, "stride": 2}, "margin must be 0"),
    ({"margin": 1, "dense": False}, "margin must be 0"),
    ({"margin": 4}, "margin must be 0"),
])
def test_bad_margin(kw, match):
    base = dict(name="x", op="conv", in_shape=(4, 8, 8), out_shape=(4, 8, 8), kernel=3,
                dense=True)
    with pytest.raises(ValueError, match=match):
        LayerWork(**{**base, **kw})
