"""Child processes die with the run that started them.

A simulator build (Verilator's ``make`` and the C++ compiler it starts) runs as grandchildren of
the ``codesign`` process. When that process is killed (``SIGKILL`` cannot be caught), they would go
on compiling into the build directory in the background. :func:`reap_children` starts a small
watchdog process beside the block it guards: it notes the descendants of the guarded process twice
a second and, once that process is gone, kills every process it last saw (and their descendants).
Linux only (``/proc``); elsewhere the block runs unguarded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

__all__ = ["reap_children", "descendants"]

_WATCHDOG = r"""
import os, signal, sys, time
sys.path.insert(0, sys.argv[2])
from common.procs import descendants
parent, me, seen = int(sys.argv[1]), os.getpid(), set()


def alive():
    try:
        os.kill(parent, 0)
        return os.getppid() == parent
    except OSError:
        return False


while True:
    if not alive():
        for pid in sorted(seen | descendants(seen)):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        sys.exit(0)
    now = descendants({parent}) - {me}
    # the parent's children move to init the moment it dies: a scan that ran after that sees
    # none of them, so it may only add to what was seen while the parent was alive
    seen = now if alive() else seen | now
    time.sleep(0.5)
"""


def _ppids() -> dict[int, int]:
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(d.name)] = int(fields[1])
    return out


def descendants(roots) -> set[int]:
    """Every live process below ``roots`` (pids), from ``/proc``."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _ppids().items():
        children.setdefault(ppid, []).append(pid)
    out, todo = set(), list(roots)
    while todo:
        for c in children.get(todo.pop(), ()):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


@contextmanager
def reap_children():
    """Run the block with a watchdog that kills its child processes if this process dies."""
    if not Path("/proc/self/stat").exists():
        yield
        return
    root = str(Path(__file__).resolve().parents[1])
    dog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), root],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield
    finally:
        dog.kill()
        dog.wait()
