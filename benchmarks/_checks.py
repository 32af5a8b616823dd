"""Checks a benchmark script makes on its arguments before any work, shared by the scripts that
take a `codesign build` directory and write a report (``frame_cycles.py``,
``latency_timeline.py``): each fails in one line before a simulation starts."""

from __future__ import annotations

from pathlib import Path

__all__ = ["not_a_build", "write_error"]


def not_a_build(build: Path) -> str | None:
    """The one-line reason ``build`` is not a `codesign build` directory, or None."""
    if (Path(build) / "manifest.json").is_file():
        return None
    return (f"{build} is not a `codesign build` directory (no manifest.json); run "
            "`codesign build` or `codesign flow` first")


def write_error(directory: Path, name: str) -> OSError | None:
    """Whether a file can be written in ``directory`` (made if missing): None, or the error of
    making the directory or a probe file ``.<name>.probe`` in it (removed again)."""
    try:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".{name}.probe"
        probe.touch()
        probe.unlink()
    except OSError as e:
        return e
    return None
