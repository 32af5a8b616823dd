"""One module per op type, and the registry that maps a graph node to its op.

Everything the flow knows about a layer type lives in its op module: the integer golden function
and its output-site rule, validation, the cycle and fill model (through the formulas of
:mod:`contract.cycles`), the sites it holds in flight, the resource price (with the key of its
fitted coefficients), the candidate (format x parallelism) choices, and the hardware block with
its constructor arguments. ``models/``, ``dse/``, ``hw/`` and ``cosim/`` dispatch through
:func:`of` / :func:`get` instead of branching on op strings.

Adding an op: one module here with a class decorated by :func:`register` (subclass
:class:`~models.ops.base.ComputeOp` or :class:`~models.ops.base.StageOp`; every public module of
this package is imported, so registration needs no list), and its hardware block in ``hw/``
(docs/ARCHITECTURE.md).
"""

import importlib
import pkgutil

from .base import ComputeOp, Op, StageOp
from .registry import GraphError, OpError, get, kind_of, names, node_ops, of, register

__all__ = ["Op", "ComputeOp", "StageOp", "GraphError", "OpError", "register", "get", "of",
           "kind_of", "names", "node_ops"]

for _m in pkgutil.iter_modules(__path__):
    if not _m.name.startswith("_") and _m.name not in ("base", "registry"):
        importlib.import_module(f"{__name__}.{_m.name}")
