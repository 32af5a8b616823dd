"""The op registry: a graph node's op, looked up by its ``op`` string and geometry."""

from __future__ import annotations

__all__ = ["register", "get", "of", "kind_of", "names", "node_ops", "OpError", "GraphError"]

_BY_NAME: dict = {}
_BY_NODE_OP: dict = {}


class GraphError(ValueError):
    """A malformed quantized graph or frame."""


class OpError(GraphError):
    """A node that no registered op takes."""


def register(cls):
    """Class decorator: register one instance of an :class:`~models.ops.base.Op` subclass."""
    op = cls()
    if not op.name or op.name in _BY_NAME:
        raise ValueError(f"op {cls.__name__}: name {op.name!r} is empty or taken")
    _BY_NAME[op.name] = op
    _BY_NODE_OP.setdefault(op.node_op, []).append(op)
    return cls


def names() -> tuple[str, ...]:
    """Every registered op (hardware kind)."""
    return tuple(_BY_NAME)


def node_ops() -> tuple[str, ...]:
    """Every QNode ``op`` string some op takes."""
    return tuple(_BY_NODE_OP)


def get(name: str):
    """The op named ``name`` (a hardware kind such as ``"conv3x3"``)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise OpError(f"unknown op {name!r}; valid: {', '.join(_BY_NAME)}") from None


def of(node):
    """The op of a graph node (anything with ``op`` and, for convs, ``kernel``/``groups``)."""
    cands = _BY_NODE_OP.get(node.op)
    if not cands:
        raise OpError(f"unknown op {node.op!r}; valid: {', '.join(_BY_NODE_OP)}")
    for op in cands:
        if op.matches(node):
            return op
    kinds = ", ".join(op.name for op in cands)
    raise OpError(f"no {node.op} op takes kernel {getattr(node, 'kernel', '?')}, groups "
                  f"{getattr(node, 'groups', '?')} (supported: {kinds})")


def kind_of(node) -> str:
    """The hardware kind of a node: ``of(node).name``."""
    return of(node).name
