"""The adversarial cases of the reliability issue, kept as tests: every bad input to every command
fails before any work with one line (``error: ...``), exit code 2, no traceback, nothing written.
``CASES`` counts them per command."""

import json
import shutil
from collections import Counter

import pytest

from codesign.cli import main


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    """A real digits build (no simulation), copied per case that edits it."""
    d = tmp_path_factory.mktemp("b") / "build"
    assert main(["build", "--model", "digits", "--out", str(d)]) == 0
    return d


def _tamper_verilog(d):
    m = json.loads((d / "manifest.json").read_text())
    v = d / m["verilog"]
    v.write_text(v.read_text().replace("'h", "'h0", 1))


def _manifest(d, value):
    (d / "manifest.json").write_text(json.dumps(value))


def _point_with_list_format(d):
    m = json.loads((d / "manifest.json").read_text())
    p = m["point"]
    p["layers"][0]["format"] = ["int8"]
    (d / "p.json").write_text(json.dumps(p))


def _frames_file(**arrays):
    """An edit that writes ``frames.npz`` with ``arrays`` into the copied build."""
    def edit(d):
        import numpy as np

        np.savez(d / "frames.npz", **arrays)
    return edit


def _frames(kind):
    import numpy as np

    return {"nan": np.full((2, 1, 16, 16), np.nan), "none": np.zeros((0, 1, 16, 16))}[kind]


DSE = ["dse", "--model", "digits", "--device", "XC7Z020", "--out", "{out}"]
FLOW = ["flow", "--out", "{out}"]
TRAIN = ["train", "--model", "digits", "--out", "{out}"]
BUILD = ["build", "--model", "digits", "--out", "{out}"]
SIM = ["sim", "--build", "{build}"]

#: (argv, env, edit of a copy of the build, message fragment)
CASES = [
    (TRAIN + ["--epochs", "0"], {}, None, "--epochs: must be an integer in [1"),
    (TRAIN + ["--seed", str(2**70)], {}, None, "--seed: must be an integer in [0"),
    (TRAIN + ["--abits", "3"], {}, None, "--abits: must be one of 4, 8"),
    (TRAIN + ["--format", "int3"], {}, None, "int3"),
    (["train", "--model", "nope", "--out", "{out}"], {}, None, "unknown model 'nope'"),
    (TRAIN, {"CODESIGN_THREADS": "abc"}, None, "CODESIGN_THREADS must be an integer"),
    (DSE, {"CODESIGN_CACHE": "{file}"}, None, "(CODESIGN_CACHE) is not a directory"),
    (["train", "--model", "digits", "--out", "{file}"], {}, None, "is not a directory"),
    (DSE + ["--frames", "0"], {}, None, "--frames: must be an integer in [1"),
    (DSE + ["--frames", "-1"], {}, None, "--frames: must be an integer in [1"),
    (DSE + ["--max-par", "0"], {}, None, "--max-par: must be an integer in [1"),
    (DSE + ["--time-limit", "0"], {}, None, "--time-limit: must be a number of seconds"),
    (DSE + ["--clock-mhz", "inf"], {}, None, "--clock-mhz: must be a finite number"),
    (DSE + ["--util", "nan"], {}, None, "--util: must be a finite number"),
    (DSE + ["--util", "1.5"], {}, None, "--util: must lie in (0, 1]"),
    (DSE + ["--points", "0"], {}, None, "--points: must be an integer in [1"),
    (DSE + ["--util", "0.001"], {}, None, "infeasible: needs at least 9 DSP48E1"),
    (DSE + ["--formats", "int8,int3"], {}, None, "int3"),
    (["dse", "--model", "digits", "--device", "XC9999", "--out", "{out}"], {}, None, "XC9999"),
    (["dse", "--model", "{tmp}/missing.pt", "--device", "XC7Z020", "--out", "{out}"], {}, None,
     "missing.pt"),
    (["dse", "--model", "digits", "--device", "XC7Z020", "--out", "{file}"], {}, None,
     "is not a directory"),
    (BUILD + ["--format", "int3"], {}, None, "int3"),
    (BUILD + ["--point", "{tmp}/nope.json"], {}, None, "nope.json"),
    (BUILD + ["--point", "{build}/p.json"], {}, _point_with_list_format,
     "unknown weight format ['int8']"),
    (SIM + ["--split", "nope"], {}, None, "invalid choice: 'nope'"),
    (SIM + ["--stall", "1.0"], {}, None, "--stall: must be a probability in [0"),
    (SIM + ["--stall", "nan"], {}, None, "--stall: must be a finite number"),
    (SIM + ["--seed", "-1"], {}, None, "--seed: must be an integer in [0"),
    (SIM + ["--seed", "4294967295"], {}, None, "--seed: must be an integer in [0"),
    (SIM + ["--frames", "0"], {}, None, "--frames: must be an integer in [1"),
    (SIM + ["--timeout", "0"], {}, None, "--timeout: must be an integer in [1"),
    (SIM, {}, _tamper_verilog, "changed since `codesign build`"),
    (SIM, {}, lambda d: _manifest(d, []), "is not a build manifest"),
    (SIM, {}, lambda d: _manifest(d, {"ports": {}, "top": 1}), "'top' is malformed"),
    (SIM, {}, lambda d: (d / "manifest.json").unlink(), "no manifest at"),
    (SIM + ["--inputs", "{file}"], {}, None, "is unreadable"),
    (SIM + ["--inputs", "{build}/frames.npz"], {}, _frames_file(x=_frames("nan")),
     "x holds NaN or infinite values"),
    (SIM + ["--inputs", "{build}/frames.npz"], {}, _frames_file(x=_frames("none")),
     "x holds no frame"),
    (FLOW + ["--stall", "1.0"], {}, None, "--stall: must be a probability in [0"),
    (FLOW + ["--max-drop", "nan"], {}, None, "--max-drop: must be a finite number"),
    (FLOW + ["--frames", "0"], {}, None, "--frames: must be an integer in [1"),
    (FLOW + ["--time-limit", "-1"], {}, None, "--time-limit: must be a number of seconds"),
    (FLOW + ["--clock-mhz", "inf"], {}, None, "--clock-mhz: must be a finite number"),
    (FLOW + ["--model", "nope"], {}, None, "valid models"),
]

COUNTS = Counter(argv[0] for argv, *_ in CASES)


@pytest.mark.parametrize("argv, env, edit, msg", CASES,
                         ids=[f"{i}-{c[0][0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, monkeypatch, capsys, build_dir,
                                                      argv, env, edit, msg):
    f = tmp_path / "afile"
    f.write_text("not a directory and not a model")
    b = build_dir
    if edit is not None or "{build}/" in " ".join(argv):
        b = tmp_path / "build"
        shutil.copytree(build_dir, b)
        if edit is not None:
            edit(b)
    fill = {"out": tmp_path / "out", "file": f, "tmp": tmp_path, "build": b}
    for k, v in env.items():
        monkeypatch.setenv(k, v.format(**fill))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert msg in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before


def test_cases_cover_every_command():
    assert set(COUNTS) == {"train", "dse", "build", "sim", "flow"} and sum(COUNTS.values()) >= 41
