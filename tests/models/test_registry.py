"""The zoo finds its networks: every models.nets module with a SPEC, and installed packages'
networks through the codesign.models entry-point group."""

import sys
from importlib import metadata

import pytest

from models import registry


def test_builtin_networks_are_discovered():
    assert {"digits", "eventdigits", "eye"} <= set(registry.model_names())


def test_entry_point_adds_a_network(tmp_path, monkeypatch):
    (tmp_path / "myzoo.py").write_text(
        "from models.spec import ClassifierSpec\n"
        "SPEC = ClassifierSpec('plugged', build=lambda: None, data=lambda split: None)\n"
        "NOT_A_SPEC = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [metadata.EntryPoint("plugged", "myzoo:SPEC", registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(registry.metadata, "entry_points",
                        lambda group: eps if group == registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(registry, "_registered", set(registry._registered))
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))
    assert registry.spec("plugged").name == "plugged"
    eps[:] = [metadata.EntryPoint("bad", "myzoo:NOT_A_SPEC", registry.ENTRY_POINT_GROUP)]
    with pytest.raises(registry.ModelError, match="gives int, not a ModelSpec"):
        registry.model_names()
    sys.modules.pop("myzoo", None)
