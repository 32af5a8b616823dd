"""dse.latency: the lone-frame latency row by row."""

import dataclasses

import pytest

from dse.latency import (
    PIPE_CYCLES,
    Rows,
    Timing,
    layer_timing,
    lone_frame_latency,
    row_times,
    rows_of,
)
from dse.workload import LayerWork

#: no pipeline, no pass-through tails, the input present at once: the rows alone
BARE = Timing(pipe=0)


def _pw(name, h, producers=(), stride=1):
    return rows_of(LayerWork(name=name, op="conv", in_shape=(4, h, h),
                             out_shape=(4, -(-h // stride), -(-h // stride)), stride=stride),
                   producers)


def test_a_chain_of_1x1_stages_streams_site_by_site():
    # two 1x1 stages of 8 rows of 8 sites, 80 cycles a frame each: the second takes each row as
    # it streams in and ends a site's work (80 / 64 cycles) after the first
    rows = [_pw("a", 8), _pw("b", 8, (0,))]
    assert rows[1].streams
    assert lone_frame_latency(rows, [80, 80], [BARE] * 2) == 82  # ceil(80 + 1.25)
    assert lone_frame_latency(rows, [80, 80]) == 82 + 2 * PIPE_CYCLES


def test_the_slow_stage_sets_the_pace():
    rows = [_pw("a", 8), _pw("b", 8, (0,))]
    assert lone_frame_latency(rows, [800, 80], [BARE] * 2) == 802  # the fast one trails by a site
    # the slow second stage starts each row once the first has sent the row's first site (a
    # 1x1 block takes a whole site before it works on it): 800 + 80 / 64, rounded up
    assert lone_frame_latency(rows, [80, 800], [BARE] * 2) == 802


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
    got = lone_frame_latency([_pw("a", 8), r], [80, 80], [BARE] * 2)
    assert got == 80 + 2 * 10


def test_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="one Rows"):
        lone_frame_latency([Rows(1, 1, (0,), (0,), ())], [])


def test_the_input_arrives_a_beat_a_cycle_and_pass_through_stages_delay_every_row():
    """A layer fed by the network input waits for its rows at one beat a cycle (``in_row``
    cycles each); a stage's pass-through tails (``after``) delay each row of its output stream."""
    rows = [_pw("a", 8), _pw("b", 8, (0,))]
    # 8 input rows of 10 beats, a stage of 40 cycles (5 a row): input-bound, its last row 5
    # cycles after the input's last (80)
    assert lone_frame_latency(rows[:1], [40], [Timing(pipe=0, in_row=10)]) == 85
    assert lone_frame_latency(rows[:1], [40], [BARE]) == 40
    # and the pipe once more
    assert lone_frame_latency(rows[:1], [40], [Timing(pipe=7, in_row=10)]) == 92
    # a global pool's division after the first layer's rows reaches the second one
    after = Timing(pipe=0, after=50)
    assert lone_frame_latency(rows, [80, 80], [after, BARE]) == 82 + 50
    # row by row: the first layer's own rows at 10, 20, ..., its stream's 50 later, and the
    # second's last row is the latency
    t = row_times(rows, [80, 80], [after, BARE])
    assert t[0].own == tuple(10.0 * (i + 1) for i in range(8))
    assert t[0].done == tuple(x + 50 for x in t[0].own)
    assert t[1].own == t[1].done and t[1].done[-1] == 131.25  # the latency: 132


def test_a_dense_window_row_s_last_site_waits_for_the_next_row_s_input_rows():
    """The dense line buffer's emitter runs ``kw // 2`` steps behind its reader, which steps into
    the next output row's first columns only once that row's input rows are in: a row's last
    site leaves a site's work after the input row the next output row needs (row ``r + 2`` at
    3x3, stride 1); the last row drains without. A 1x1 stage after it starts a row once the
    row's first site is out, from when the row began, not from its delayed end."""
    import dataclasses

    a = _pw("a", 8)
    w = LayerWork(name="w", op="conv", in_shape=(4, 8, 8), out_shape=(4, 8, 8), kernel=3,
                  dense=True)
    r = rows_of(w, (0,))
    assert r.late == (2, 3, 4, 5, 6, 7, 7, -1) and r.late_sites == 1
    assert rows_of(dataclasses.replace(w, dense=False), (0,)).late == ()  # the sparse buffer
    s2 = dataclasses.replace(w, out_shape=(4, 4, 4), stride=2)
    assert rows_of(s2, (0,)).late == ()  # 3x3 at stride 2: the emitter does not lag
    # a slow producer (100 cycles a row) and a fast window (10 a row, 1.25 a site): the window's
    # row r is out a site after the producer's row r + 2 (100 (r + 3)); its last two rows need
    # no later input: a row's work each after the row before
    t = row_times([a, r], [800, 80], [BARE] * 2)
    assert t[1].own[:6] == tuple(100.0 * (i + 3) + 1.25 for i in range(6))
    assert t[1].own[6:] == (811.25, 821.25)
    # a slow 1x1 after it (200 a row): its row 0 ends 200 after the window's first site (the
    # window's row 0 began at 200), not 200 after its delayed end less a row
    c = _pw("c", 8, (1,))
    t = row_times([a, r, c], [800, 80, 1600], [BARE] * 3)
    assert t[2].own[0] == 200 + 1.25 + 200


def test_a_cropped_layer_spends_its_cycles_on_its_inner_rows():
    """A zero-padded conv computed on its inner sites (``margin``) skips its border rows: its
    cycles are spread over the rows it keeps (LeNet-5's 5x5 convs, 4 of 32 and of 14 rows)."""
    w = LayerWork(name="w", op="conv", in_shape=(4, 8, 8), out_shape=(4, 8, 8), kernel=3,
                  margin=1, dense=True)
    r = rows_of(w)
    assert r.margin == 1
    # the network input at once: 60 cycles over rows 1..6 (10 each), rows 0 and 7 free (the
    # dense buffer's lag adds nothing here: the input is all in at cycle 0)
    t = row_times([r], [60], [BARE])
    assert t[0].own == (0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 60.0)
    assert lone_frame_latency([rows_of(dataclasses.replace(w, margin=0))], [60], [BARE]) == 60


def test_layer_timing_counts_the_chosen_pipeline_the_stage_tails_and_the_input_beats():
    from contract.constants import FIFO_LATENCY, mac_latency
    from contract.point import LayerChoice
    from models import ops

    gap = {"name": "p", "op": "gap", "in_shape": (16, 8, 8), "out_shape": (16, 1, 1),
           "active_in": 64, "active_out": 1}
    pw = LayerWork(name="pw", op="conv", in_shape=(16, 8, 8), out_shape=(16, 8, 8),
                   acc_bits={"int8": 20}, stages=(gap,))
    t2 = layer_timing(pw, LayerChoice("int8", 2, 4))
    t8 = layer_timing(pw, LayerChoice("int8", 8, 4))
    # a deeper adder tree at 8 lanes
    assert t8.pipe - t2.pipe == mac_latency("int8", 8) - mac_latency("int8", 2) > 0
    assert t2.pipe == FIFO_LATENCY + ops.of(pw).pipeline(pw, LayerChoice("int8", 2, 4))
    # 8 sites of 16 channels a row, at 2 and 8 lanes
    assert (t2.in_row, t8.in_row) == (64, 16)
    # the global pool's division, at the layer's pe (4 output lanes: 4 beats a site) and its FIFO
    assert t2.after > FIFO_LATENCY + 4 * 2
    assert layer_timing(LayerWork(name="x", op="conv", in_shape=(16, 8, 8),
                                  out_shape=(16, 8, 8)), LayerChoice("int8", 2, 4)).after == 0
