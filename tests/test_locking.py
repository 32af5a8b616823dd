"""One writer per directory (common.lock): a second codesign command on a directory another process
is writing fails at once, in one line naming the holder; a refused run leaves nothing behind."""

import subprocess
import sys
import time

import pytest

from codesign.cli import main
from common.errors import CodesignError
from common.lock import LOCK_NAME, dir_lock

HOLD = """
import sys, time
from common.lock import dir_lock
with dir_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of ``tmp_path / "held"``."""
    d = tmp_path / "held"
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(d)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    yield d, p
    p.kill()
    p.wait()


@pytest.mark.parametrize("argv", [
    ["sim", "--build", "{d}"],
    ["build", "--model", "digits", "--out", "{d}"],
    ["dse", "--model", "digits", "--device", "XC7Z020", "--out", "{d}"],
    ["flow", "--out", "{d}"],
    ["train", "--model", "digits", "--out", "{d}"],
])
def test_second_writer_is_refused_in_one_line(holder, capsys, argv):
    d, p = holder
    before = sorted(x.name for x in d.iterdir())
    assert main([a.format(d=d) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{d} is in use by pid {p.pid}" in err and "another directory" in err
    assert sorted(x.name for x in d.iterdir()) == before


def test_lock_is_released_when_the_holder_dies(holder):
    d, p = holder
    with pytest.raises(CodesignError, match="in use"):
        with dir_lock(d):
            pass
    p.kill()
    p.wait()
    for _ in range(50):
        try:
            with dir_lock(d):
                break
        except CodesignError:
            time.sleep(0.1)
    else:
        pytest.fail("the lock of a killed holder was not released")


def test_refused_run_leaves_no_directory(tmp_path):
    out = tmp_path / "new"
    with pytest.raises(CodesignError):
        with dir_lock(out):
            raise CodesignError("bad input")
    assert not out.exists()
    with dir_lock(out):
        (out / "result.txt").write_text("x")
    assert sorted(x.name for x in out.iterdir()) == [LOCK_NAME, "result.txt"]


def test_an_out_path_that_is_a_file_is_one_line(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["dse", "--model", "digits", "--device", "XC7Z020", "--out", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a directory" in err
