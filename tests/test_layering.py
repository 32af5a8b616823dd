"""The import contracts of pyproject.toml ([tool.importlinter]): layering and no cycles.

The real tree is checked as CI's ``make lint`` checks it; a fake tree of empty packages with the
same names, under the same contracts, shows that a forbidden import (inside a function, too) and a
cycle are caught and named.
"""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    # lint-imports finds the root packages from its working directory (it puts it first on
    # sys.path, ahead of the installed project).
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def _fake_tree(tmp_path: Path) -> Path:
    """Empty packages named as the root packages, and pyproject.toml's contracts without their
    ``ignore_imports`` (those name real modules the fake tree does not have)."""
    cfg = _config()
    for pkg in cfg["root_packages"]:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    lines = ["[tool.importlinter]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in cfg.items() if k != "contracts"]
    for contract in cfg["contracts"]:
        lines.append("[[tool.importlinter.contracts]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in contract.items() if k != "ignore_imports"]
    (tmp_path / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_contract_lists_every_root_package_in_order():
    cfg = _config()
    layers = next(c for c in cfg["contracts"] if c["type"] == "layers")
    assert layers["layers"] == ["codesign", "reports", "cosim", "hw", "dse", "models", "contract",
                                "common"]
    assert sorted(cfg["root_packages"]) == sorted(layers["layers"])
    assert not cfg.get("include_external_packages", False)


def test_tree_keeps_the_import_contracts():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_fake_tree_without_violations_passes(tmp_path):
    tree = _fake_tree(tmp_path)
    (tree / "models" / "zoo.py").write_text("from common import errors\n")
    (tree / "common" / "errors.py").write_text("")
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr


def test_back_import_inside_a_function_breaks_the_layers(tmp_path):
    tree = _fake_tree(tmp_path)
    (tree / "models" / "zoo.py").write_text("")
    (tree / "common" / "fsutil.py").write_text("def write():\n    from models import zoo\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "common is not allowed to import models" in result.stdout
    assert "common.fsutil -> models.zoo (l.2)" in result.stdout


def test_cycle_between_modules_of_a_package_is_caught(tmp_path):
    tree = _fake_tree(tmp_path)
    (tree / "dse" / "ilp.py").write_text("def optimise():\n    from dse import greedy\n")
    (tree / "dse" / "greedy.py").write_text("from dse.ilp import optimise\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "No cycles are allowed in dse" in result.stdout
