"""``codesign`` command line: one module per subcommand under :mod:`codesign.commands`.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from common.errors import EXIT_ERROR, CodesignError

__all__ = ["main", "COMMANDS"]

#: Subcommands in the order of the flow; each is ``codesign.commands.<name>``, which must exist.
COMMANDS = ("train", "dse", "build", "sim", "implement", "board", "flow", "demo")


def _load(name):
    try:
        return importlib.import_module(f"codesign.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"codesign.commands.{name}":
            raise ImportError(f"command {name!r} is listed in codesign.cli.COMMANDS but "
                              f"codesign/commands/{name}.py does not exist",
                              name=exc.name) from exc
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="codesign",
        description="Quantized and sparse CNNs -> ILP design-space exploration -> Amaranth RTL -> "
        "cocotb co-simulation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        mod = _load(name)
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line (``error: codesign sim: argument --stall: ...``), exit code 2."""

    def error(self, message):
        raise CodesignError(f"{self.prog}: {message} (see `{self.prog} --help`)")

    def _get_values(self, action, arg_strings):
        # `--util=--`: argparse drops the "--" and, on the Pythons here, hands the option an
        # empty list instead of refusing it
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            self.error(f"argument {'/'.join(action.option_strings)}: expected one value, "
                       "not '--'")
        return super()._get_values(action, arg_strings)


def _limit_threads() -> None:
    # The networks are small: a second intra-op thread buys little, and when the other core is
    # busy (Yosys, a simulator) OpenMP spin-waiting made training 30x slower. CODESIGN_THREADS
    # overrides.
    import torch

    from .options import check_count

    text = os.environ.get("CODESIGN_THREADS", "1")
    torch.set_num_threads(check_count("CODESIGN_THREADS", text, high=1024))


def _os_error(exc: OSError) -> str:
    """One line for an OS error: the path(s), the cause, and what to check."""
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    cause = exc.strerror or type(exc).__name__
    where = f"{paths}: " if paths else ""
    return f"{where}{cause} (check that the path exists, is writable and the disk has space)"


def run_command(args) -> int:
    """Run a parsed command holding the lock of every directory it writes (its ``locks(args)``,
    :func:`common.lock.dir_lock`)."""
    from contextlib import ExitStack

    from common.lock import dir_lock

    mod = importlib.import_module(args._run.__module__)
    with ExitStack() as stack:
        for d in getattr(mod, "locks", lambda a: [])(args):
            stack.enter_context(dir_lock(d))
        return int(args._run(args) or 0)


class _Terminated(Exception):
    """``SIGTERM`` arrived: raised in the main thread so that every ``finally`` runs (a tool's
    process is killed, a directory lock released, a half-written output removed), as for Ctrl-C."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def main(argv=None) -> int:
    """Run one command; every failure the user can fix is one line on stderr and an exit code:
    2 for bad input or a failed step (and a deadlock), 1 for simulation mismatches
    (:mod:`common.errors`), 130 when interrupted, 143 when terminated (``SIGTERM``)."""
    import signal
    import threading

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        return _main(argv)
    finally:
        if main_thread:  # a handler not set from Python reads back as None
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _main(argv) -> int:
    try:
        _limit_threads()
        parser = build_parser()
        args = parser.parse_args(argv)
        return run_command(args)
    except CodesignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except OSError as exc:
        print(f"error: {_os_error(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("error: terminated (SIGTERM)", file=sys.stderr)
        return 143


if __name__ == "__main__":
    sys.exit(main())
