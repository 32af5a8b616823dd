"""Atomic writes: outputs appear whole or not at all."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "staged_dir", "write_json", "write_png", "write_text",
           "undo_new_on_failure"]


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; renamed over ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is for secrets, not for results
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def staged_dir(path):
    """Yield an empty work directory beside ``path`` (``.<name>.partial``); if the block succeeds
    it replaces ``path`` whole, so an interrupted or failed run leaves an earlier ``path`` (and
    whatever record names its files) as it was. A failed run's directory stays, under its
    ``.partial`` name, for its logs; the next run clears it."""
    import shutil

    path = Path(path)
    work = path.parent / f".{path.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    yield work
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    os.replace(work, path)


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_png(path, fig, *, dpi: int = 110) -> None:
    """Save a matplotlib figure as PNG atomically, then close it (figures are not reused)."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)


@contextmanager
def undo_new_on_failure(directory, *, keep=(".codesign.lock",)):
    """Run the block; if it raises, remove what it added to ``directory`` (new top-level files and
    folders, not ``keep``), so a failed command leaves the directory as it found it rather than
    half its outputs. Files it overwrote are not restored: write those atomically."""
    import shutil

    directory = Path(directory)
    before = {p.name for p in directory.iterdir()} if directory.is_dir() else set()
    try:
        yield
    except BaseException:
        if directory.is_dir():
            for p in directory.iterdir():
                if p.name in before or p.name in keep:
                    continue
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
        raise
