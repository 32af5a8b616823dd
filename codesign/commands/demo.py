"""``codesign demo``: the main job on the built-in example (what ``make demo`` runs)."""

from __future__ import annotations

NAME = "demo"
HELP = "run the flow on the built-in example (digits CNN)"


def locks(args) -> list:
    """The directories this command writes (held locked while it runs)."""
    return [args.out]


def add_arguments(p):
    p.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")


def run(args) -> int:
    from . import flow

    return flow.run(flow.defaults(out=args.out))
