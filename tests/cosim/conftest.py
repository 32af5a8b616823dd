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
    def feats(n):
        return [[rng.choice([-127, 127, 0, rng.randint(-127, 127)]) for _ in range(channels)]
                for _ in range(n)]
    full = [(y, x) for y in range(height) for x in range(width)]
    border = [(y, x) for y, x in full if y in (0, height - 1) or x in (0, width - 1)]
    frames = [([], []), (full, feats(len(full))), ([(0, 0)], feats(1)),
              ([(height - 1, width - 1)], feats(1)), ([(height // 2, width // 3)], feats(1)),
              (border, feats(len(border))), ([], [])]
    return frames


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
