"""Workload records: validation, JSON round trip, extraction from a QGraph, the synthetic net."""

import dataclasses

import numpy as np
import pytest
import torch

from dse import workload
from dse.workload import LayerWork, Workload, from_qgraph, measure_activity, synthetic
from models.qgraph import QGraph, QNode


def _conv(name, src, c_in, c_out, h, *, k=1, stride=1, groups=1):
    ho = -(-h // stride)
    return QNode(name=name, op="conv", inputs=(src,), in_shape=(c_in, h, h),
                 out_shape=(c_out, ho, ho), kernel=k, stride=stride, groups=groups, relu=True,
                 wformat="int8", lo=0, hi=127, S=8,
                 weight=np.ones((c_out, c_in // groups, k, k), dtype=np.int64),
                 bias=np.zeros(c_out, dtype=np.int64), M=np.full(c_out, 1, dtype=np.int64))


def _graph():
    nodes = [
        QNode(name="in", op="input", inputs=(), in_shape=(2, 8, 8), out_shape=(2, 8, 8)),
        _conv("stem", "in", 2, 8, 8, k=3),
        _conv("dw", "stem", 8, 8, 8, k=3, groups=8),
        _conv("pw", "dw", 8, 8, 8),
        QNode(name="add", op="add", inputs=("pw", "stem"), in_shape=(8, 8, 8),
              out_shape=(8, 8, 8), Ma=1, Mb=1, S=1, lo=0, hi=127),
        _conv("down", "add", 8, 16, 8, k=3, stride=2, groups=1),
        QNode(name="gap", op="gap", inputs=("down",), in_shape=(16, 4, 4), out_shape=(16, 1, 1)),
        QNode(name="fc", op="linear", inputs=("gap",), in_shape=(16, 1, 1), out_shape=(4, 1, 1),
              requant=False, wformat="int8", weight=np.ones((4, 16), dtype=np.int64),
              bias=np.zeros(4, dtype=np.int64), M=np.ones(4, dtype=np.int64)),
    ]
    return QGraph("tiny", tuple(nodes))


def test_layerwork_round_trip_and_dense_default():
    layer = LayerWork(name="a", op="conv", in_shape=(4, 6, 6), out_shape=(8, 3, 3), kernel=3,
                      stride=2, neighbour_hist=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
                      stages=({"name": "g", "op": "gap", "in_shape": (8, 3, 3),
                               "active_in": 9},))
    assert layer.kind == "conv3x3"
    assert layer.active_in == 36 and layer.active_out == 9  # unmeasured means dense
    assert layer.weight_count == 8 * 4 * 9
    assert LayerWork.from_dict(layer.to_dict()) == layer
    w = Workload(name="n", layers=(layer,))
    assert Workload.from_json(w.to_json()) == w


def test_layerwork_rejects_bad_geometry():
    with pytest.raises(ValueError, match="groups"):
        LayerWork(name="a", op="conv", in_shape=(4, 6, 6), out_shape=(4, 6, 6), kernel=3, groups=2)
    with pytest.raises(ValueError, match="producer"):
        Workload(name="n", layers=(LayerWork(name="a", op="conv", in_shape=(4, 2, 2),
                                             out_shape=(4, 2, 2), producers=("zz",)),))


def test_from_qgraph_edges_stages_and_kinds():
    w = from_qgraph(_graph())
    assert [layer.name for layer in w.layers] == ["stem", "dw", "pw", "down", "fc"]
    assert [layer.kind for layer in w.layers] == [
        "conv3x3", "dwconv3x3", "conv1x1", "conv3x3", "linear"]
    down = w.layers[3]
    # the add merges pw and the stem skip: both stream into `down`
    assert down.producers == ("pw", "stem")
    assert [s["op"] for s in w.layers[2].stages] == ["add"]
    assert [s["op"] for s in down.stages] == ["gap"]
    assert w.layers[4].producers == ("down",)
    assert set(w.edges()) == {(0, 1), (1, 2), (2, 3), (0, 3), (3, 4)}


def test_converter_edges_convert_a_later_add_input_once_to_the_adds_width():
    """The stem enters the add as its second input: the composer converts it before the add, to
    the add's width (its first input's, pw's pe), not on the edge to the add's consumer
    (hw.compose); the add's output goes to down's lanes on pw's edge."""
    w = from_qgraph(_graph())
    assert [s.get("join_input") for s in w.layers[0].stages] == [1]
    assert w.converter_edges() == [(0, 1, False, 8), (1, 2, False, 8), (2, 3, False, 8),
                                   (3, 4, False, 8), (0, 2, True, 8)]
    assert Workload.from_json(w.to_json()) == w
    # a workload without the marks (written before them) keeps one converter per producer
    old = Workload.from_dict({**w.to_dict(), "layers": [
        {**d, "stages": [{k: v for k, v in s.items() if k != "join_input"} for s in d["stages"]]}
        for d in w.to_dict()["layers"]]})
    assert [(p, c) for p, c, _, _ in old.converter_edges()] == old.edges()


def test_measure_activity_sparse_frame():
    g = _graph()
    coords = torch.tensor([[0, 0], [0, 1], [5, 5]])
    feats = torch.ones((3, 2), dtype=torch.int64)
    stats = measure_activity(g, [(coords, feats)])
    assert stats["stem"]["active_sites_mean"] == 3  # submanifold: same sites
    # (0,0) and (0,1) see each other and themselves; (5,5) only itself
    assert stats["stem"]["neighbour_hist"][:3] == [0, 1, 2]
    # stride 2 (contract rule): (0,0),(0,1) make (0,0),(0,1); (5,5) makes (2|3, 2|3)
    assert stats["down"]["active_sites_mean"] == 6
    w = from_qgraph(g, stats)
    assert w.layers[0].active_in == 3 and w.layers[4].active_out == 1
    assert abs(sum(w.layers[0].neighbour_hist) - 1.0) < 1e-9


def test_synthetic_has_exact_layer_count():
    for n in (3, 10, 50, 51):
        w = synthetic(n)
        assert len(w) == n
        assert w.layers[-1].kind == "linear"
        assert len(w.edges()) == n - 1


@pytest.mark.parametrize("h, w", [(6, 5), (8, 12), (16, 16)])
def test_skip_sites_estimate_matches_the_composer(h, w):
    """The skip FIFO the DSE prices holds about the sites hw.compose sizes it for (within 10 %;
    the composer also counts each FIFO's exact hold at the chosen lanes)."""
    from helpers import tiny_qgraph

    from contract.point import DesignPoint
    from hw.compose import Network

    g = tiny_qgraph(0, h=h, w=w)
    net = Network(g, DesignPoint.default(g))
    (src, add_name), depth = next(iter(net.skip_depths.items()))
    shape = net.stages[src].o_shape
    sites = depth / (shape.channels // shape.lanes)
    est = workload.skip_sites(g, g.node(add_name))
    assert abs(est / sites - 1) <= 0.10, (est, sites)
    wl = workload.from_qgraph(g)
    owner, stage = next((layer, s) for layer in wl.layers for s in layer.stages
                        if s["op"] == "add" and "skip_sites" in s)
    assert stage["skip_sites"] == est
    # priced with the layer whose stream the skip FIFO holds (at its pe), as composed
    assert owner.name == src


def test_narrow_streams_are_priced_at_their_width():
    """A layer's input stream width comes from the graph (QGraph.stream_bits); its FIFO, line
    buffer and the stages on narrow streams are priced at that width, and the workload file of
    an int8 network is what it was (no in_bits key)."""
    import dataclasses

    from contract.point import LayerChoice
    from dse.cost import resources

    g = _graph()
    wide = from_qgraph(g)
    assert all(layer.in_bits == 8 for layer in wide.layers)
    assert all("in_bits" not in d for d in wide.to_dict()["layers"])
    narrow = dataclasses.replace(g, nodes=tuple(
        dataclasses.replace(n, lo=0, hi=15) if n.name in ("stem", "dw", "pw") else n
        for n in g.nodes))
    w = from_qgraph(narrow)
    by = {layer.name: layer for layer in w.layers}
    assert (by["stem"].in_bits, by["dw"].in_bits, by["pw"].in_bits, by["down"].in_bits) == \
        (8, 5, 5, 8)
    add = next(s for s in by["pw"].stages if s["name"] == "add")
    assert add.get("bits", 8) == 8  # the join's clamp [0, 127] keeps it at 8 bits
    assert Workload.from_dict(w.to_dict()) == w
    # the same 3x3 depthwise layer is cheaper on 5-bit lanes (line buffer, FIFO), and its
    # accumulator is narrower
    ch = LayerChoice("int8", 8, 8, name="dw")
    r8 = resources(dataclasses.replace(by["dw"], in_bits=8), ch)
    r5 = resources(by["dw"], ch)
    assert r5["lut"] < r8["lut"] and r5["dsp"] == r8["dsp"]
    assert dict(by["pw"].acc_bits)["int8"] < dict(wide.layers[2].acc_bits)["int8"]
    with pytest.raises(ValueError, match="in_bits"):
        dataclasses.replace(by["dw"], in_bits=1)


@pytest.mark.parametrize("seed", range(6))
def test_converter_edges_count_the_converters_the_composer_builds(seed):
    """Every stream the DSE prices a width converter on is one hw.compose builds one on, and no
    other: over random lanes / pe of a residual network (the add's later input converted before
    the add, never after it), the count of priced converters equals the composer's."""
    import random

    from helpers import tiny_qgraph

    from contract.point import DesignPoint
    from dse import devices
    from dse.cost import Cost
    from dse.ilp import Candidate, evaluate
    from dse.pareto import make_problem
    from hw.compose import Network
    from hw.width import WidthConverter

    g = tiny_qgraph(seed % 2, h=4, w=4)
    rng = random.Random(seed)
    default = DesignPoint.default(g)
    layers = []
    for c in default.layers:
        n = g.node(c.name)
        c_in, c_out = n.in_shape[0], n.out_shape[0]
        lanes = rng.choice([d for d in range(1, c_in + 1) if c_in % d == 0])
        if n.groups > 1:  # a depthwise conv: pe divides lanes
            pe = rng.choice([d for d in range(1, lanes + 1) if lanes % d == 0])
        else:
            pe = rng.choice([d for d in range(1, c_out + 1) if c_out % d == 0])
        layers.append(dataclasses.replace(c, lanes=lanes, pe=pe))
    point = DesignPoint(model="tiny", layers=tuple(layers), fifo_depth=default.fifo_depth)
    net = Network(g, point)
    built = sum(isinstance(comp, WidthConverter) for _, comp in net._subs)
    # priced the way the DSE prices a design: its problem's edges, counted by ilp.evaluate
    wl = from_qgraph(g)
    cost = Cost(cycles=1, fill=0, dsp=0, lut=0, ff=0, bram18=0)
    cands = tuple((Candidate(point.choice(layer.name), cost),) for layer in wl.layers)
    problem = make_problem(wl, cands, devices.budget("XCZU3EG", 0.8))
    priced = evaluate(problem, [0] * len(cands)).converters
    assert priced == built, (point.layers, priced, built)
