"""dse.latency: the lone-frame latency row by row."""

import pytest

from dse.latency import PIPE_CYCLES, Rows, lone_frame_latency, rows_of
from dse.workload import LayerWork


def _pw(name, h, producers=(), stride=1):
    return rows_of(LayerWork(name=name, op="conv", in_shape=(4, h, h),
                             out_shape=(4, -(-h // stride), -(-h // stride)), stride=stride),
                   producers)


def test_a_chain_of_1x1_stages_streams_site_by_site():
    # two 1x1 stages of 8 rows of 8 sites, 80 cycles a frame each: the second takes each row as
    # it streams in and ends a site's work (80 / 64 cycles) after the first
    rows = [_pw("a", 8), _pw("b", 8, (0,))]
    assert rows[1].streams
    assert lone_frame_latency(rows, [80, 80], pipe=0) == 82  # ceil(80 + 1.25)
    assert lone_frame_latency(rows, [80, 80]) == 82 + 2 * PIPE_CYCLES


def test_the_slow_stage_sets_the_pace():
    rows = [_pw("a", 8), _pw("b", 8, (0,))]
    assert lone_frame_latency(rows, [800, 80], pipe=0) == 802  # the fast one trails by a site
    # the slow second stage starts each row as the first begins sending it
    assert lone_frame_latency(rows, [80, 800], pipe=0) == 800


def test_a_window_waits_for_the_row_below_and_a_pool_for_every_row():
    w = LayerWork(name="w", op="conv", in_shape=(4, 8, 8), out_shape=(4, 8, 8), kernel=3)
    r = rows_of(w, (0,))
    assert r.need == (1, 2, 3, 4, 5, 6, 7, 7)
    s2 = rows_of(LayerWork(name="s", op="conv", in_shape=(4, 8, 8), out_shape=(4, 4, 4),
                           kernel=3, stride=2), (0,))
    assert s2.need == (1, 3, 5, 7)
    gap = LayerWork(name="g", op="conv", in_shape=(4, 8, 8), out_shape=(4, 8, 8),
                    stages=({"name": "p", "op": "gap", "in_shape": (4, 8, 8),
                             "out_shape": (4, 1, 1), "active_in": 64, "active_out": 1},))
    assert rows_of(gap, ()).out == (7,)
    # the window's row r waits for input row r + 1: its last two rows follow the producer's last
    got = lone_frame_latency([_pw("a", 8), r], [80, 80], pipe=0)
    assert got == 80 + 2 * 10


def test_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="one Rows"):
        lone_frame_latency([Rows(1, 1, (0,), (0,), ())], [])
