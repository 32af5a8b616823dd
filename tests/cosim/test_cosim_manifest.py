"""Stream packing and manifest loading (no simulator)."""

import json

import pytest

from common.errors import CodesignError
from cosim.manifest import load_manifest, port_from_dict
from hw.stream import TokenShape, payload_fields


def _port(lanes=2, channels=4, bits=8, height=8, width=8):
    layout = TokenShape(height=height, width=width, channels=lanes, lanes=lanes,
                        data_width=bits).layout()
    return port_from_dict({"valid": "i__valid", "ready": "i__ready", "payload": "i__payload",
                           "payload_width": layout.size, "lanes": lanes, "channels": channels,
                           "height": height, "width": width, "fields": payload_fields(layout)})


def test_fields_follow_the_struct_layout():
    f = payload_fields(TokenShape(height=16, width=16, channels=3, lanes=3, data_width=8).layout())
    assert f == [{"name": "y", "offset": 0, "width": 4, "signed": False},
                 {"name": "x", "offset": 4, "width": 4, "signed": False},
                 {"name": "data", "offset": 8, "width": 8, "signed": True, "count": 3},
                 {"name": "eof", "offset": 32, "width": 1, "signed": False}]


def test_frame_beats_split_channels_into_lanes_and_end_with_eof():
    p = _port(lanes=2, channels=4)
    beats = [p.unpack(w) for w in p.frame_beats([(1, 2), (3, 0)], [[1, -2, 3, -4], [127, -127,
                                                                                     0, 5]])]
    assert [(b.y, b.x, b.data, b.eof) for b in beats] == [
        (1, 2, (1, -2), 0), (1, 2, (3, -4), 0), (3, 0, (127, -127), 0), (3, 0, (0, 5), 0),
        (0, 0, (0, 0), 1)]


def test_wide_payload_round_trip():
    p = _port(lanes=16, channels=32, bits=32, height=64, width=64)
    vals = [(-1) ** i * (2**31 - 1 - i) for i in range(16)]
    w = p.pack(63, 5, vals)
    assert w.bit_length() > 64
    assert p.unpack(w) == (63, 5, tuple(vals), 0)


def test_empty_frame_is_one_eof_beat():
    p = _port()
    assert [p.unpack(w).eof for w in p.frame_beats([], [])] == [1]


@pytest.mark.parametrize("coords, feats, msg", [
    ([(0, 1), (0, 0)], [[0] * 4, [0] * 4], "raster order"),
    ([(0, 0), (0, 0)], [[0] * 4, [0] * 4], "raster order"),
    ([(8, 0)], [[0] * 4], "outside"),
    ([(0, 0)], [[0] * 3], "channels"),
    ([(0, 0)], [[200, 0, 0, 0]], "does not fit"),
])
def test_bad_frames_are_named(coords, feats, msg):
    with pytest.raises(CodesignError, match=msg):
        _port().frame_beats(coords, feats)


def test_load_manifest_errors(tmp_path):
    with pytest.raises(CodesignError, match="codesign build"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(CodesignError, match="not valid JSON"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"top": "t", "verilog": "v.v"}))
    with pytest.raises(CodesignError, match="not a build manifest"):
        load_manifest(tmp_path)


def test_load_toy_manifest(tmp_path):
    from cosim.toy import write_toy_build
    write_toy_build(tmp_path, channels=6, lanes=3)
    m = load_manifest(tmp_path)
    assert m.top == "toy" and m.verilog.is_file()
    assert m.input.beats_per_token == 2 and m.output.lanes == 3
    bad = json.loads((tmp_path / "manifest.json").read_text())
    bad["ports"]["input"]["lanes"] = 4
    (tmp_path / "manifest.json").write_text(json.dumps(bad))
    with pytest.raises(CodesignError, match="lanes"):
        load_manifest(tmp_path)


def test_missing_simulator_is_a_clear_cli_error(tmp_path, monkeypatch, capsys):
    import cosim.runner
    from codesign.cli import main
    from cosim.toy import write_toy_build
    write_toy_build(tmp_path)
    monkeypatch.setattr(cosim.runner.shutil, "which", lambda tool: None)
    reason = cosim.runner.simulator_missing("icarus")
    assert reason and "iverilog" in reason
    assert cosim.runner.simulator_missing("questa").startswith("unknown simulator")
    assert main(["sim", "--build", str(tmp_path), "--sim", "icarus"]) == 2
    assert "Icarus Verilog not found" in capsys.readouterr().err


def test_manifest_paths_are_absolute(tmp_path, monkeypatch):
    from cosim.toy import write_toy_build

    write_toy_build(tmp_path / "b", height=4, width=4, channels=2, lanes=1, ii=1)
    monkeypatch.chdir(tmp_path)
    m = load_manifest("b")
    assert m.root.is_absolute() and m.verilog.is_absolute() and m.root == tmp_path / "b"


def test_tampered_or_unrecorded_verilog_is_refused(tmp_path):
    """The manifest holds the Verilog's SHA-256: an edited Verilog file (or a manifest without the
    digest) is refused in one line before anything simulates it."""
    from cosim.toy import write_toy_build

    write_toy_build(tmp_path)
    load_manifest(tmp_path)
    v = tmp_path / "verilog" / "toy.v"
    v.write_text(v.read_text().replace("1'h1", "1'h0", 1))
    with pytest.raises(CodesignError,
                       match=r"toy\.v changed since `codesign build`.*run `codesign build` again"):
        load_manifest(tmp_path)
    raw = json.loads((tmp_path / "manifest.json").read_text())
    del raw["verilog_sha256"]
    (tmp_path / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(CodesignError, match="records no verilog_sha256"):
        load_manifest(tmp_path)
