"""The zoo's registry: model names to :class:`~models.spec.ModelSpec` objects.

The networks under :mod:`models.nets` do not register themselves: each defines a ``SPEC``, and the
registry imports them and collects their specs when a name is first looked up, so the dependency
runs one way (registry -> nets -> spec). Every module of :mod:`models.nets` that defines ``SPEC``
is a built-in network (no list to edit), and an installed package adds its own networks through
the ``codesign.models`` entry-point group (``name = "package.module:SPEC"``).
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib import metadata

from .spec import ModelSpec

__all__ = ["ModelError", "REGISTRY", "register", "spec", "model_names"]


class ModelError(ValueError):
    """Unknown model, missing or corrupt checkpoint."""


REGISTRY: dict[str, ModelSpec] = {}

#: Entry-point group of networks that installed packages add.
ENTRY_POINT_GROUP = "codesign.models"
_registered: set[str] = set()


def register(s: ModelSpec) -> ModelSpec:
    REGISTRY[s.name] = s
    return s


def _ensure_registered():
    # Each network module's SPEC is registered once, when a name is first looked up.
    from . import nets

    for info in pkgutil.iter_modules(nets.__path__):
        key = f"models.nets.{info.name}"
        if key in _registered or info.name.startswith("_"):
            continue
        net = importlib.import_module(key)
        if isinstance(getattr(net, "SPEC", None), ModelSpec):
            register(net.SPEC)
        _registered.add(key)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = f"entry-point:{ep.value}"
        if key in _registered:
            continue
        _registered.add(key)
        try:
            s = ep.load()
        except Exception as exc:  # noqa: BLE001  (a broken plug-in must not break the zoo)
            raise ModelError(f"network {ep.name!r} from entry point {ep.value} does not load: "
                             f"{type(exc).__name__}: {exc}") from None
        if not isinstance(s, ModelSpec):
            raise ModelError(f"entry point {ep.value} gives {type(s).__name__}, not a ModelSpec")
        register(s)


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
