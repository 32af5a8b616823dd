"""One writer per output directory: an advisory lock file that names its holder.

Every command that writes a directory (``train``, ``dse``, ``build``, ``sim`` on its build,
``flow``) holds :func:`dir_lock` on it for the whole run. A second writer fails at once with one
line naming the holder's PID and command, instead of the two mixing their files (two simulations
sharing one simulator build, two flows with different configurations in one ``--out``). The lock is
``fcntl.flock`` on ``DIR/.codesign.lock``: the kernel releases it when the holder exits, however it
exits, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from .errors import CodesignError

__all__ = ["LOCK_NAME", "dir_lock"]

LOCK_NAME = ".codesign.lock"


@contextmanager
def dir_lock(path, *, what: str | None = None):
    """Hold the lock of directory ``path`` (created if missing) while the block runs.

    Raises :class:`CodesignError` at once when another process holds it. A directory this call
    created and that is still empty afterwards (the command failed before writing) is removed
    again, so a refused run leaves nothing behind.
    """
    path = Path(path)
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CodesignError(f"{path} exists and is not a directory; choose another output "
                            "directory") from None
    lock = path / LOCK_NAME
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
            raise CodesignError(f"{path} is in use by {holder}; wait for it to finish or use "
                                "another directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({_command()})".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
        # the lock file stays (removing it would let a late opener lock a stale inode), unless
        # this call made the directory and the command wrote nothing into it
        if created and [p.name for p in path.iterdir()] == [LOCK_NAME]:
            try:
                lock.unlink()
                path.rmdir()
            except OSError:
                pass


def _command() -> str:
    argv = [Path(sys.argv[0]).name, *sys.argv[1:3]] if sys.argv else ["python"]
    return " ".join(argv)
