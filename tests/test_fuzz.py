"""Fuzzing the inputs a user hands the tool (hypothesis, bounded time): option values, design points
and build manifests. Whatever the input, the answer is a value in range or one CodesignError line,
never another exception (a traceback) and never a silently wrong value."""

import json
import math

import pytest
from helpers import tiny_qgraph
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign import cli
from common.errors import CodesignError

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

#: Option text: numbers of every kind, their edge cases, and junk.
TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "-0", "0x10", "", " ", "1_0", "2**70",
                     "0.99999", "0.999995", "1.0", "4294967295", "-1", "abc", "1e-320"]),
    st.text(max_size=8),
)

#: (command argv before the option, option, predicate the parsed value must satisfy)
OPTIONS = [
    (["sim", "--build", "b"], "--stall", lambda v: 0 <= v < 1),
    (["sim", "--build", "b"], "--seed", lambda v: 0 <= v < 2**31),
    (["sim", "--build", "b"], "--frames", lambda v: v >= 1),
    (["sim", "--build", "b"], "--timeout", lambda v: v >= 1),
    (["flow"], "--stall", lambda v: 0 <= v < 1),
    (["flow"], "--max-drop", lambda v: 0 <= v <= 1),
    (["flow"], "--util", lambda v: 0 < v <= 1),
    (["flow"], "--clock-mhz", lambda v: 0 < v and math.isfinite(v)),
    (["dse", "--model", "m", "--device", "X", "--out", "o"], "--frames", lambda v: v >= 1),
    (["dse", "--model", "m", "--device", "X", "--out", "o"], "--max-par", lambda v: v >= 1),
    (["dse", "--model", "m", "--device", "X", "--out", "o"], "--time-limit",
     lambda v: 0 < v < math.inf),
    (["dse", "--model", "m", "--device", "X", "--out", "o"], "--points", lambda v: v >= 1),
    (["train", "--model", "m", "--out", "o"], "--epochs", lambda v: v >= 1),
    (["train", "--model", "m", "--out", "o"], "--abits", lambda v: v in (4, 8)),
    (["train", "--model", "m", "--out", "o"], "--seed", lambda v: 0 <= v < 2**31),
]


@pytest.mark.parametrize("argv, option, ok", OPTIONS, ids=[f"{a[0]}{o}" for a, o, _ in OPTIONS])
@FUZZ
@given(text=TEXT)
def test_option_values_parse_in_range_or_fail_in_one_line(argv, option, ok, text):
    parser = cli.build_parser()
    try:
        args = parser.parse_args([*argv, f"{option}={text}"])
    except CodesignError as exc:
        assert "\n" not in str(exc) and option in str(exc)
        return
    value = getattr(args, option.lstrip("-").replace("-", "_"))
    assert ok(value), (text, value)


#: JSON values a mutation puts in place of a field.
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)


def _mutate(doc, path, value, drop):
    """``doc`` with the field at ``path`` (indices into nested objects / lists) replaced or
    removed."""
    doc = json.loads(json.dumps(doc))
    node, keys = doc, []
    for i in path:
        if isinstance(node, dict) and node:
            keys.append(sorted(node)[i % len(node)])
        elif isinstance(node, list) and node:
            keys.append(i % len(node))
        else:
            break
        if isinstance(node[keys[-1]], (dict, list)) and len(keys) < len(path):
            node = node[keys[-1]]
        else:
            break
    if not keys:
        return value
    parent = doc
    for k in keys[:-1]:
        parent = parent[k]
    if drop and isinstance(parent, dict):
        del parent[keys[-1]]
    else:
        parent[keys[-1]] = value
    return doc


@pytest.fixture(scope="module")
def graph():
    return tiny_qgraph(0)


@FUZZ
@given(path=st.lists(st.integers(0, 50), min_size=1, max_size=4), value=JSON, drop=st.booleans())
def test_mutated_design_point_is_valid_or_one_line(graph, tmp_path_factory, path, value, drop):
    from contract.point import DesignPoint, load_point

    good = DesignPoint.default(graph, model="tiny").to_dict()
    f = tmp_path_factory.mktemp("p") / "point.json"
    f.write_text(json.dumps(_mutate(good, path, value, drop)))
    try:
        p = load_point(f, graph)
    except CodesignError as exc:
        assert "\n" not in str(exc)
        return
    # accepted: it is a point this network can be built with
    p.validate(graph)
    assert {c.name for c in p.layers} <= {n.name for n in graph.compute_nodes()}


@pytest.fixture(scope="module")
def toy_build(tmp_path_factory):
    from cosim.toy import write_toy_build

    d = tmp_path_factory.mktemp("toy")
    write_toy_build(d)
    return d


@FUZZ
@given(path=st.lists(st.integers(0, 50), min_size=1, max_size=4), value=JSON, drop=st.booleans())
def test_mutated_manifest_is_valid_or_one_line(toy_build, path, value, drop):
    from cosim.manifest import load_manifest

    good = json.loads((toy_build / "manifest.json").read_text())
    d = toy_build / "m"
    d.mkdir(exist_ok=True)
    (d / "verilog").mkdir(exist_ok=True)
    (d / "verilog" / "toy.v").write_bytes((toy_build / "verilog" / "toy.v").read_bytes())
    (d / "manifest.json").write_text(json.dumps(_mutate(good, path, value, drop)))
    try:
        m = load_manifest(d)
    except CodesignError as exc:
        assert "\n" not in str(exc)
        return
    assert m.verilog.is_file() and m.input.lanes >= 1 and m.output.lanes >= 1
