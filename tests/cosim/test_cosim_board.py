"""The board top's core over its UART pins in Verilator (cosim.board): a classifier and a map
network, bit-exact from the host's bytes to the board's, and a check that can fail."""

import json
import random

import numpy as np
import pytest

from codesign.cli import main
from codesign.commands.board import classify
from cosim.board import simulate_board

pytestmark = pytest.mark.rtl

MIXED = ["int8", "dybit4", "int4", "dybit8", "int4", "int8"]


def _np(frames, channels):
    out = []
    for coords, feats in frames:
        c = np.asarray(coords, dtype=np.int64).reshape(-1, 2)
        out.append((c, np.asarray(feats, dtype=np.int64).reshape(len(c), channels)))
    return out


@pytest.mark.parametrize("head", ["classifier", "map"])
def test_board_core_is_bit_exact_over_the_uart(tiny_net, kit, sim_cache, tmp_path, head):
    kit.need("verilator")
    d, golden, g = tiny_net(MIXED, lanes=2, pe=2, head=head)
    c, h, w = g.input.in_shape
    rng = random.Random(3)
    # empty, full, single-site and border frames, then random densities
    frames = _np(kit.special_frames(rng, height=h, width=w, channels=c)[:4]
                 + [kit.random_frame(rng, height=h, width=w, channels=c, density=0.4)], c)
    expected = [golden(co, f) for co, f in frames]
    res = simulate_board(d, frames, expected, divisor=8, work_dir=tmp_path / "b",
                         cache_dir=sim_cache)
    assert res["mismatches"] == 0 and not res["bad"] and res["stopped"] is None
    assert not res["lost_flag"] and not res["uart_errors"] and res["extra_frames"] == 0
    assert res["bytes_out"] > len(frames)  # every frame answered with at least its eof record
    # the same run against a golden output with one value changed fails on that frame
    wrong = [(np.asarray(co), np.array(f)) for co, f in expected]
    k = next(i for i, (co, f) in enumerate(wrong) if f.size)
    wrong[k][1].flat[0] += 1
    bad = simulate_board(d, frames, wrong, divisor=8, work_dir=tmp_path / "b",
                         cache_dir=sim_cache)
    assert bad["mismatches"] == 1 and bad["bad"][0]["frame"] == k
    assert bad["bytes_out_sha256"] == res["bytes_out_sha256"]  # the board said the same
    # the host loop of `codesign board --port`, on the bytes the simulated board sent
    board_bytes = bytes.fromhex(json.loads((tmp_path / "b" / "result.json").read_text())
                                ["received_hex"])
    man = json.loads((d / "manifest.json").read_text())
    assert classify(None, 115200, man, frames, expected,
                    serial_port=Replay(board_bytes))["mismatches"] == 0
    res = classify(None, 115200, man, frames, wrong, serial_port=Replay(board_bytes))
    assert res["mismatches"] == 1 and res["bad"][0]["frame"] == k
    assert res["bytes_out"] == len(board_bytes)


class Replay:
    """A serial port that answers each frame with the board's recorded bytes, a few at a time."""

    def __init__(self, data):
        self.data, self.pos, self.pending = data, 0, 0

    def write(self, data):
        self.pending += 1

    def read(self, n):
        if not self.pending or self.pos >= len(self.data):
            return b""
        chunk = self.data[self.pos:self.pos + min(n, 7)]
        self.pos += len(chunk)
        return chunk


def test_codesign_board_sim_at_the_boards_baud(tiny_net, kit, tmp_path, capsys):
    kit.need("verilator")
    d, golden, g = tiny_net(["int8"] * 6, lanes=1, pe=1)
    c, h, w = g.input.in_shape
    rng = np.random.default_rng(0)
    x = rng.integers(-127, 128, size=(2, c, h, w))
    active = rng.random((2, h, w)) < 0.6
    np.savez(tmp_path / "frames.npz", x=x, active=active)
    assert main(["board", "--build", str(d), "--sim", "--inputs", str(tmp_path / "frames.npz"),
                 "--baud", "1000000"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["mismatches"] == 0 and out["frames"] == 2 and out["divisor"] == 25
    assert json.loads((d / "board_sim.json").read_text())["checked"]["verilog_sha256"] == \
        json.loads((d / "manifest.json").read_text())["verilog_sha256"]


@pytest.mark.parametrize("argv, needle", [
    (["--baud", "10000000", "--sim"], "too fast"),
    (["--baud", "2200000", "--sim"], "off at 25 MHz"),
    (["--sim", "--port", "/dev/null"], "exclude each other"),
    # a port that is not there is refused before the bitstream is built (minutes of tools)
    (["--port", "/dev/ttyUSB-none", "--no-program"], "serial port /dev/ttyUSB-none does not exist"),
])
def test_codesign_board_bad_inputs_are_one_line(tiny_net, tmp_path, capsys, argv, needle):
    d, _, _ = tiny_net(["int8"] * 6, lanes=1, pe=1)

    def outputs():  # (the command's lock file is not an output: it stays, empty)
        return sorted(p.name for p in d.iterdir() if p.name != ".codesign.lock")

    before = outputs()
    assert main(["board", "--build", str(d), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert outputs() == before


@pytest.mark.slow
def test_codesign_board_builds_the_bitstream(tiny_net, capsys):
    # real Yosys, nextpnr-ecp5 and ecppack on the ULX3S's pins (about 4 minutes)
    d, _, _ = tiny_net(["int8"] * 6, lanes=1, pe=1)
    assert main(["board", "--build", str(d)]) == 0
    rec = json.loads((d / "board.json").read_text())
    assert rec["timing_met"] and rec["key"]["board"] == "ulx3s-85f"
    assert (d / rec["bitstream"]["file"]).stat().st_size == rec["bitstream"]["bytes"]
    lpf = (d / "board" / "implement" / "board_top.lpf").read_text()
    assert 'SITE "M1"' in lpf and 'SITE "L4"' in lpf and 'SITE "G2"' in lpf  # rx, tx, clock
    capsys.readouterr()
    assert main(["board", "--build", str(d)]) == 0  # unchanged: reused
    assert "up to date" in capsys.readouterr().err


@pytest.mark.slow
def test_board_core_on_icarus_sends_the_bytes_verilator_sends(tiny_net, kit, sim_cache, tmp_path):
    """The board top's FSMs (frame loader, result sender, UART) on the event-driven simulator,
    where a signal a process sets is undefined until one of its inputs changes: bit-exact, and
    byte for byte what Verilator's two-state run sends."""
    kit.need("icarus")
    kit.need("verilator")
    d, golden, g = tiny_net(MIXED, lanes=2, pe=2)
    c, h, w = g.input.in_shape
    rng = random.Random(5)
    frames = _np(kit.special_frames(rng, height=h, width=w, channels=c)[:4]
                 + [kit.random_frame(rng, height=h, width=w, channels=c, density=0.4)], c)
    expected = [golden(co, f) for co, f in frames]
    runs = [simulate_board(d, frames, expected, divisor=8, sim=sim, work_dir=tmp_path / sim,
                           cache_dir=sim_cache) for sim in ("icarus", "verilator")]
    for res in runs:
        assert res["mismatches"] == 0 and res["stopped"] is None and not res["uart_errors"]
    assert runs[0]["bytes_out_sha256"] == runs[1]["bytes_out_sha256"]
    assert runs[0]["bytes_out"] == runs[1]["bytes_out"] > len(frames)
