import json

import pytest
from helpers import tiny_qgraph

from common.errors import CodesignError
from contract.point import DesignPoint, LayerChoice, load_point


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
                                "datapath": "shift-add", "pred_cycles": 123, "pred_dsp": 0}
    assert out["clock_mhz"] == 150 and out["fifo_depth"] == 8
    assert DesignPoint.from_dict(json.loads(json.dumps(out))) == p


def _edit(p, name, **kw):
    layers = tuple(LayerChoice(kw.get("format", c.format), kw.get("lanes", c.lanes),
                               kw.get("pe", c.pe), name=c.name) if c.name == name else c
                   for c in p.layers)
    return DesignPoint(model=p.model, layers=layers)


@pytest.mark.parametrize("edit,msg", [
    (lambda p: _edit(p, "pw1", lanes=3), "layer pw1: lanes 3 does not divide its 4 input"),
    (lambda p: _edit(p, "pw2", pe=3), "layer pw2: pe 3 does not divide its 4 output"),
    (lambda p: DesignPoint(model="t", layers=p.layers[:-1]), "no entry for layer fc"),
    (lambda p: DesignPoint(model="t", layers=p.layers + (LayerChoice("int8", name="zz"),)),
     "layer zz: no such compute layer"),
    (lambda p: _edit(p, "dw", pe=2, lanes=1), "depthwise conv needs pe dividing lanes"),
])
def test_validation_names_layer_and_problem(edit, msg):
    g = tiny_qgraph()
    with pytest.raises(CodesignError, match=msg):
        edit(DesignPoint.default(g)).validate(g)


def test_bad_format_and_json_are_one_line_errors(tmp_path):
    with pytest.raises(CodesignError, match="layer stem: unknown weight format 'int3'"):
        LayerChoice("int3", name="stem")
    bad = tmp_path / "p.json"
    bad.write_text("{not json")
    with pytest.raises(CodesignError, match="not valid JSON"):
        load_point(bad)
    with pytest.raises(CodesignError, match="does not exist"):
        load_point(tmp_path / "missing.json")
    with pytest.raises(CodesignError, match="more than once"):
        DesignPoint(model="m", layers=(LayerChoice("int8", name="a"),
                                       LayerChoice("int4", name="a")))


def test_load_point_default_and_file(tmp_path):
    g = tiny_qgraph()
    p = load_point("default", g, model="tiny")
    f = tmp_path / "p.json"
    f.write_text(p.to_json())
    assert load_point(f, g) == p


def test_datapath_defaults_round_trips_and_is_checked():
    from contract.point import LayerChoice, PointError

    assert LayerChoice("int8", 4, 2).datapath == "dsp"
    assert LayerChoice("dybit4", 4, 2).datapath == "shift-add"
    assert LayerChoice("int8", 4, 2) == LayerChoice("int8", 4, 2, "dsp")
    for ch in (LayerChoice("int8", 4, 2, "dsp2"), LayerChoice("int4", 1, 3, "lut"),
               LayerChoice("int4", 2, 4, "dsp2")):
        assert LayerChoice.from_dict(ch.to_dict()) == ch
    # a point written before datapaths existed means the format's default
    assert LayerChoice.from_dict({"format": "int4", "lanes": 1, "pe": 1}).datapath == "dsp"
    for bad, what in (({"format": "int8", "datapath": "lut"}, "cannot use"),
                      ({"format": "dybit4", "datapath": "dsp"}, "cannot use"),
                      ({"format": "int8", "pe": 3, "datapath": "dsp2"}, "pe must be even"),
                      ({"format": "int8", "datapath": "fpga"}, "unknown datapath")):
        with pytest.raises(PointError, match=what):
            LayerChoice.from_dict(bad)


def test_kfold_round_trips_and_only_window_convs_fold():
    """A full window conv folds its kh rows, a depthwise 3x3 its 3 rows or 9 taps; a 1x1 has no
    rows to fold."""
    from contract.point import LayerChoice, PointError
    from dse.cost import candidates, cycles
    from dse.workload import LayerWork

    ch = LayerChoice("int8", 2, 4, "dsp2", 3)
    assert LayerChoice.from_dict(ch.to_dict()) == ch
    assert "kfold" not in LayerChoice("int8", 2, 4).to_dict()
    with pytest.raises(PointError, match="kfold"):
        LayerChoice("int8", kfold=0)
    conv = LayerWork(name="c", op="conv", in_shape=(8, 8, 8), out_shape=(8, 8, 8), kernel=3)
    pw = LayerWork(name="p", op="conv", in_shape=(8, 8, 8), out_shape=(8, 8, 8))
    dw = LayerWork(name="d", op="conv", in_shape=(8, 8, 8), out_shape=(8, 8, 8), kernel=3,
                   groups=8)
    folded, flat = LayerChoice("int8", 2, 4, kfold=3), LayerChoice("int8", 2, 4)
    assert cycles(conv, folded) > cycles(conv, flat)
    assert {c.kfold for c in candidates(conv, ["int8"])} == {1, 3}
    assert {c.kfold for c in candidates(pw, ["int8"])} == {1}
    assert {c.kfold for c in candidates(dw, ["int8"])} == {1, 3, 9}
    assert cycles(dw, LayerChoice("int8", 2, 2, kfold=3)) > cycles(dw, LayerChoice("int8", 2, 2))
    assert (cycles(dw, LayerChoice("int8", 2, 2, kfold=9))
            > cycles(dw, LayerChoice("int8", 2, 2, kfold=3)))
    for layer, k in ((pw, 3), (dw, 5)):
        with pytest.raises(ValueError, match="kfold"):
            cycles(layer, LayerChoice("int8", 2, 2, kfold=k))
