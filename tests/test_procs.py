"""Children die with the run (common.procs): a process SIGKILLed inside ``reap_children`` takes its
child processes (Verilator's make and compiler, here a sleep) with it."""

import os
import signal
import subprocess
import sys
import time

import pytest

from common.procs import descendants

RUN = """
import subprocess, sys, time
from common.procs import reap_children
with reap_children():
    child = subprocess.Popen(["sleep", "120"])
    grandchild = subprocess.Popen(["sh", "-c", "sleep 120 & wait"])
    time.sleep(1.5)  # the watchdog sees them
    print(child.pid, grandchild.pid, flush=True)
    time.sleep(120)
"""


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie is dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_sigkill_takes_the_children_along():
    p = subprocess.Popen([sys.executable, "-c", RUN], stdout=subprocess.PIPE, text=True)
    pids = [int(v) for v in p.stdout.readline().split()]
    under = descendants(pids)  # the sleep the shell started
    assert len(pids) == 2 and under and all(_alive(x) for x in pids + list(under))
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(x) for x in pids + list(under)):
        time.sleep(0.2)
    assert not any(_alive(x) for x in pids + list(under))


def test_children_outlive_nothing_on_a_normal_exit():
    from common.procs import reap_children

    with reap_children():
        out = subprocess.run(["echo", "ok"], capture_output=True, text=True).stdout
    assert out.strip() == "ok"
