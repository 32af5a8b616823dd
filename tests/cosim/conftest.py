"""Fixtures for the cosim tests: toy designs (built once per session) and a shared build cache."""

from __future__ import annotations

import random

import pytest

from cosim.runner import simulator_missing
from cosim.toy import write_toy_build


@pytest.fixture(scope="session")
def sim_cache(tmp_path_factory):
    """One simulator build cache for the session: identical Verilog is built once."""
    return tmp_path_factory.mktemp("sim_build")


@pytest.fixture(scope="session")
def toy(tmp_path_factory):
    """``toy(**params) -> (build_dir, golden)``; each distinct design is written once."""
    made = {}

    def make(**params):
        key = tuple(sorted(params.items()))
        if key not in made:
            d = tmp_path_factory.mktemp("toy")
            made[key] = (d, write_toy_build(d, **params))
        return made[key]
    return make


def need(sim: str) -> None:
    reason = simulator_missing(sim)
    if reason:
        pytest.skip(reason)


def any_sim() -> str:
    """Icarus when present (sub-second builds), else Verilator."""
    return "icarus" if simulator_missing("icarus") is None else "verilator"


def random_frame(rng, *, height=8, width=8, channels=4, density=0.5):
    coords = [(y, x) for y in range(height) for x in range(width) if rng.random() < density]
    feats = [[rng.randint(-127, 127) for _ in range(channels)] for _ in coords]
    return coords, feats


def special_frames(rng, *, height=8, width=8, channels=4):
    """Empty, full, single-site (first, last, middle) and border-only frames."""
    from cosim.matrix import special_frames as frames
    return frames(rng, height=height, width=width, channels=channels)


def frame_set(seed=1, n=20, **geom):
    rng = random.Random(seed)
    frames = special_frames(rng, **geom)
    frames += [random_frame(rng, density=d, **geom)
               for d in [0.1, 0.3, 0.6, 0.9] * (n // 4)]
    return frames


@pytest.fixture(scope="session")
def kit():
    """The helpers above, as a fixture (test modules cannot import a conftest by name safely)."""
    import types
    return types.SimpleNamespace(need=need, any_sim=any_sim, random_frame=random_frame,
                                 special_frames=special_frames, frame_set=frame_set)


def tiny_qgraph(formats, *, seed=0, h=6, w=5, c_in=2):
    """A small classifier with every node kind (3x3 stem, depthwise stride 2, 1x1, residual add,
    global pool, raw-logit linear); ``formats`` is one weight format per compute layer (6)."""
    import numpy as np
    import torch

    from models import reference as ref
    from models.qgraph import QGraph, QNode
    from models.quant.formats import weight_format

    rng = np.random.default_rng(seed)
    fmts = iter(formats)
    # a dense calibration activation per node, so that each S keeps outputs mostly unsaturated
    acts = {"input": torch.from_numpy(rng.integers(-127, 128, size=(1, c_in, h, w)))}

    def w_of(fmt, shape):
        return rng.choice(weight_format(fmt).levels.numpy(), size=shape).astype(np.int64)

    def conv(name, src, ci, co, hw, *, k, groups=1, stride=1, relu=True, S=None):
        fmt = next(fmts)
        ho, wo = -(-hw[0] // stride), -(-hw[1] // stride)
        weight = w_of(fmt, (co, ci // groups, k, k))
        M = rng.integers(1 << 10, 1 << 13, size=co).astype(np.int64)
        acc = ref.conv2d(acts[src], torch.from_numpy(weight), None, stride=stride,
                         padding=k // 2, groups=groups)
        spread = float(acc.abs().double().median()) * float(M.mean()) / 40
        S = max(1, round(np.log2(max(spread, 2.0))))
        bias = rng.integers(-1, 2, size=co).astype(np.int64) * int(acc.abs().max() // 8)
        lo = 0 if relu else -127
        acts[name] = ref.requant(acc + torch.from_numpy(bias)[:, None, None],
                                 torch.from_numpy(M), S, lo, 127)
        return QNode(name=name, op="conv", inputs=(src,), in_shape=(ci, *hw),
                     out_shape=(co, ho, wo), kernel=k, stride=stride, groups=groups,
                     relu=relu, wformat=fmt, lo=lo, hi=127, S=S, weight=weight, bias=bias,
                     M=M)

    h2, w2 = -(-h // 2), -(-w // 2)
    nodes = [QNode(name="input", op="input", inputs=(), in_shape=(c_in, h, w),
                   out_shape=(c_in, h, w)),
             conv("stem", "input", c_in, 4, (h, w), k=3)]
    nodes.append(conv("dw", "stem", 4, 4, (h, w), k=3, groups=4, stride=2))
    nodes.append(conv("pw1", "dw", 4, 8, (h2, w2), k=1))
    nodes.append(conv("pw2", "pw1", 8, 4, (h2, w2), k=1, relu=False))
    nodes.append(QNode(name="add", op="add", inputs=("dw", "pw2"), in_shape=(4, h2, w2),
                       out_shape=(4, h2, w2), Ma=1 << 13, Mb=3 << 12, S=14, lo=0, hi=127))
    acts["add"] = ref.add_requant(acts["dw"], acts["pw2"], 1 << 13, 3 << 12, 14, 0, 127)
    nodes.append(conv("pw3", "add", 4, 8, (h2, w2), k=1))
    nodes.append(QNode(name="gap", op="gap", inputs=("pw3",), in_shape=(8, h2, w2),
                       out_shape=(8, 1, 1)))
    fmt = next(fmts)
    nodes.append(QNode(name="fc", op="linear", inputs=("gap",), in_shape=(8, 1, 1),
                       out_shape=(5, 1, 1), requant=False, wformat=fmt, weight=w_of(fmt, (5, 8)),
                       bias=rng.integers(-500, 500, size=5).astype(np.int64),
                       M=np.ones(5, dtype=np.int64)))
    return QGraph(name="tiny", nodes=tuple(nodes))


@pytest.fixture(scope="session")
def tiny_net(tmp_path_factory):
    """``tiny_net(formats, lanes=4, pe=4, head="classifier"|"map") -> (build_dir, golden,
    qgraph)`` built by hw.build; ``"map"`` stops after the last 1x1 conv (no pool, no fc)."""
    made = {}

    def make(formats, *, lanes=4, pe=4, seed=0, head="classifier"):
        key = (tuple(formats), lanes, pe, seed, head)
        if key not in made:
            from contract.point import DesignPoint
            from cosim.golden import qgraph_golden
            from hw.build import build
            from models.qgraph import QGraph
            g = tiny_qgraph(formats, seed=seed)
            if head == "map":
                g = QGraph(name="tiny", nodes=g.nodes[:7])
            d = tmp_path_factory.mktemp("tiny")
            build(g, DesignPoint.default(g, model="tiny", lanes=lanes, pe=pe), d, model="tiny")
            made[key] = (d, qgraph_golden(g), g)
        return made[key]
    return make


@pytest.fixture(scope="session")
def tiny_graph():
    """:func:`tiny_qgraph` itself, for tests that change the graph before building it."""
    return tiny_qgraph
