"""The in-order scoreboard, the pause generators and the trace reader (no simulator)."""

import itertools

import pytest

from cosim.manifest import port_from_dict
from cosim.pause import bernoulli, make_pause, never, pattern
from cosim.scoreboard import Scoreboard
from cosim.wrapper import MAX_STALL, read_trace, stall_threshold
from hw.stream import TokenShape, payload_fields


def _port():
    layout = TokenShape(height=8, width=8, channels=2, lanes=2, data_width=8).layout()
    return port_from_dict({"valid": "o__valid", "ready": "o__ready", "payload": "o__payload",
                           "payload_width": layout.size, "lanes": 2, "channels": 4,
                           "height": 8, "width": 8, "fields": payload_fields(layout)})


FRAME = ([(0, 1), (2, 3)], [[1, 2, 3, 4], [5, 6, 7, 8]])


def _feed(sb, words):
    for i, w in enumerate(words):
        sb.receive(w, cycle=i)


def test_matching_frames_pass():
    p = _port()
    sb = Scoreboard(p)
    sb.expect(*FRAME)
    sb.expect([], [])
    _feed(sb, p.frame_beats(*FRAME) + p.frame_beats([], []))
    assert sb.finish() == [] and sb.complete


def test_wrong_value_names_frame_site_and_channel():
    p = _port()
    sb = Scoreboard(p)
    sb.expect([], [])
    sb.expect(*FRAME)
    bad = ([(0, 1), (2, 3)], [[1, 2, 3, 4], [5, 6, 7, 9]])
    _feed(sb, p.frame_beats([], []) + p.frame_beats(*bad))
    (mm,) = sb.finish()
    assert (mm.frame, mm.site, mm.channel, mm.got, mm.expected) == (1, (2, 3), 3, 9, 8)
    assert "frame 1 site (y=2, x=3) channel 3" in str(mm)


def test_wrong_site_early_eof_extra_and_missing():
    p = _port()
    sb = Scoreboard(p)
    for _ in range(4):
        sb.expect(*FRAME)
    moved = ([(0, 1), (2, 4)], FRAME[1])
    short = ([(0, 1)], FRAME[1][:1])
    longer = ([(0, 1), (2, 3), (4, 4)], FRAME[1] + [[0, 0, 0, 0]])
    _feed(sb, p.frame_beats(*moved) + p.frame_beats(*short) + p.frame_beats(*longer))
    kinds = [(m.frame, m.kind) for m in sb.finish()]
    assert kinds == [(0, "wrong site"), (1, "frame ended early"), (2, "extra data beat"),
                     (3, "frame never completed")]


def test_extra_beats_after_last_frame_reported_once():
    p = _port()
    sb = Scoreboard(p)
    sb.expect(*FRAME)
    _feed(sb, p.frame_beats(*FRAME) * 3)
    assert [m.kind for m in sb.finish()] == ["extra beat after the last frame"]


def test_pause_generators():
    assert list(itertools.islice(never(), 3)) == [False] * 3
    assert list(itertools.islice(pattern([1, 0]), 4)) == [True, False, True, False]
    a = list(itertools.islice(bernoulli(0.3, seed=5), 2000))
    assert a == list(itertools.islice(make_pause(0.3, seed=5), 2000))
    assert 0.25 < sum(a) / len(a) < 0.35
    with pytest.raises(ValueError):
        bernoulli(1.0)
    assert stall_threshold(0.5) == 2**31 and stall_threshold(0.0) == 0
    # 32 bits: probabilities close to 1 keep their resolution, none wraps to "never stall"
    assert stall_threshold(0.999995) == round(0.999995 * 2**32) < 2**32
    assert stall_threshold(MAX_STALL) == 2**32 - 2
    with pytest.raises(ValueError, match="stall probability"):
        stall_threshold(1.0)


def test_read_trace(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("I 0 0\nI 5 1\nO 7 1f\nI 6 1\nO 9 400000\nT 200 3 1 0 2 1\n")
    t = read_trace(f)
    assert t.frames_in == [(0, 5), (6, 6)]
    assert t.out == [(7, 0x1F), (9, 0x400000)]
    assert t.timeout == {"cycle": 200, "n_in": 3, "in_valid": 1, "in_ready": 0, "n_out": 2,
                         "frames_out": 1}
