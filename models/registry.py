"""The zoo's registry: model names to :class:`~models.spec.ModelSpec` objects.

The networks under :mod:`models.nets` do not register themselves: each defines a ``SPEC``, and the
registry imports them and collects their specs when a name is first looked up, so the dependency
runs one way (registry -> nets -> spec).
"""

from __future__ import annotations

import importlib

from .spec import ModelSpec

__all__ = ["ModelError", "REGISTRY", "register", "spec", "model_names"]


class ModelError(ValueError):
    """Unknown model, missing or corrupt checkpoint."""


REGISTRY: dict[str, ModelSpec] = {}

#: The modules of :mod:`models.nets`, each defining a ``SPEC``.
_NETS = ("digits", "eventdigits", "eye")
_registered: set[str] = set()


def register(s: ModelSpec) -> ModelSpec:
    REGISTRY[s.name] = s
    return s


def _ensure_registered():
    # Each network module's SPEC is registered once, when a name is first looked up; digits is
    # always there, a missing eventdigits or eye module is left out of the registry.
    for mod in _NETS:
        if mod in _registered:
            continue
        try:
            net = importlib.import_module(f"models.nets.{mod}")
        except ImportError as exc:
            if mod == "digits" or getattr(exc, "name", "") != f"models.nets.{mod}":
                raise
            continue
        register(net.SPEC)
        _registered.add(mod)


def model_names() -> list[str]:
    _ensure_registered()
    return sorted(REGISTRY)


def spec(name: str) -> ModelSpec:
    _ensure_registered()
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; valid models: {', '.join(sorted(REGISTRY))} "
            "(or a checkpoint path)"
        ) from None
