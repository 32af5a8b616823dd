import json

import numpy as np
import pytest

from common.errors import CodesignError
from hw.point import DesignPoint, LayerChoice, load_point
from models.qgraph import QGraph, QNode
from models.quant.formats import weight_format


def _conv(rng, name, inp, c_in, c_out, hw, *, k, groups=1, stride=1, relu=True, fmt="int8",
          S=12):
    levels = weight_format(fmt).levels.numpy()
    h, w = hw
    ho, wo = -(-h // stride), -(-w // stride)
    weight = rng.choice(levels, size=(c_out, c_in // groups, k, k)).astype(np.int64)
    return QNode(name=name, op="conv", inputs=(inp,), in_shape=(c_in, h, w),
                 out_shape=(c_out, ho, wo), kernel=k, stride=stride, groups=groups, relu=relu,
                 wformat=fmt, lo=0 if relu else -127, hi=127, S=S,
                 weight=weight, bias=rng.integers(-300, 300, size=c_out).astype(np.int64),
                 M=rng.integers(1 << 10, 1 << 12, size=c_out).astype(np.int64))


def tiny_qgraph(seed=0, *, fmt="int8", h=6, w=5, with_dw=True, classifier=True, stem_stride=1):
    """A small network with every node kind: 3x3 stem, 1x1, depthwise, residual add, gap, fc."""
    rng = np.random.default_rng(seed)
    nodes = [QNode(name="input", op="input", inputs=(), in_shape=(2, h, w), out_shape=(2, h, w))]
    nodes.append(_conv(rng, "stem", "input", 2, 4, (h, w), k=3, fmt=fmt, S=10,
                       stride=stem_stride))
    h, w = nodes[-1].out_shape[1:]
    nodes.append(_conv(rng, "pw1", "stem", 4, 8, (h, w), k=1, fmt=fmt))
    last = "pw1"
    if with_dw:
        nodes.append(_conv(rng, "dw", "pw1", 8, 8, (h, w), k=3, groups=8, fmt=fmt, S=11))
        last = "dw"
    nodes.append(_conv(rng, "pw2", last, 8, 4, (h, w), k=1, relu=False, fmt=fmt))
    nodes.append(QNode(name="add", op="add", inputs=("stem", "pw2"), in_shape=(4, h, w),
                       out_shape=(4, h, w), Ma=1 << 13, Mb=3 << 12, S=14, lo=0, hi=127))
    if classifier:
        nodes.append(QNode(name="gap", op="gap", inputs=("add",), in_shape=(4, h, w),
                           out_shape=(4, 1, 1)))
        levels = weight_format(fmt).levels.numpy()
        nodes.append(QNode(name="fc", op="linear", inputs=("gap",), in_shape=(4, 1, 1),
                           out_shape=(3, 1, 1), requant=False, wformat=fmt,
                           weight=rng.choice(levels, size=(3, 4)).astype(np.int64),
                           bias=rng.integers(-500, 500, size=3).astype(np.int64),
                           M=np.ones(3, dtype=np.int64)))
    return QGraph(name="tiny", nodes=tuple(nodes))


def test_default_point_is_valid_and_round_trips():
    g = tiny_qgraph()
    p = DesignPoint.default(g, model="tiny")
    assert [c.name for c in p.layers] == ["stem", "pw1", "dw", "pw2", "fc"]
    p.validate(g)
    q = DesignPoint.from_json(p.to_json())
    assert q == p
    assert p["dw"].lanes == p["dw"].pe


def test_pred_fields_kept_and_unknown_keys_ignored():
    d = {"model": "tiny", "clock_mhz": 150, "fifo_depth": 8,
         "layers": [{"name": "stem", "format": "dybit4", "lanes": 2, "pe": 4,
                     "pred_cycles": 123, "pred_dsp": 0, "colour": "red"}]}
    p = DesignPoint.from_dict(d)
    assert p["stem"].predictions == {"pred_cycles": 123, "pred_dsp": 0}
    out = p.to_dict()
    assert out["layers"][0] == {"name": "stem", "format": "dybit4", "lanes": 2, "pe": 4,
                                "pred_cycles": 123, "pred_dsp": 0}
    assert out["clock_mhz"] == 150 and out["fifo_depth"] == 8
    assert DesignPoint.from_dict(json.loads(json.dumps(out))) == p


def _edit(p, name, **kw):
    layers = tuple(LayerChoice(c.name, kw.get("format", c.format), kw.get("lanes", c.lanes),
                               kw.get("pe", c.pe)) if c.name == name else c for c in p.layers)
    return DesignPoint(model=p.model, layers=layers)


@pytest.mark.parametrize("edit,msg", [
    (lambda p: _edit(p, "pw1", lanes=3), "layer pw1: lanes 3 does not divide its 4 input"),
    (lambda p: _edit(p, "pw2", pe=3), "layer pw2: pe 3 does not divide its 4 output"),
    (lambda p: DesignPoint(model="t", layers=p.layers[:-1]), "no entry for layer fc"),
    (lambda p: DesignPoint(model="t", layers=p.layers + (LayerChoice("zz", "int8"),)),
     "layer zz: no such compute layer"),
    (lambda p: _edit(p, "dw", pe=1, lanes=2), "depthwise conv needs pe == lanes"),
])
def test_validation_names_layer_and_problem(edit, msg):
    g = tiny_qgraph()
    with pytest.raises(CodesignError, match=msg):
        edit(DesignPoint.default(g)).validate(g)


def test_bad_format_and_json_are_one_line_errors(tmp_path):
    with pytest.raises(CodesignError, match="layer stem: unknown format 'int3'"):
        LayerChoice("stem", "int3")
    bad = tmp_path / "p.json"
    bad.write_text("{not json")
    with pytest.raises(CodesignError, match="not valid JSON"):
        load_point(bad)
    with pytest.raises(CodesignError, match="does not exist"):
        load_point(tmp_path / "missing.json")
    with pytest.raises(CodesignError, match="more than once"):
        DesignPoint(model="m", layers=(LayerChoice("a", "int8"), LayerChoice("a", "int4")))


def test_load_point_default_and_file(tmp_path):
    g = tiny_qgraph()
    p = load_point("default", g, model="tiny")
    f = tmp_path / "p.json"
    f.write_text(p.to_json())
    assert load_point(f, g) == p
