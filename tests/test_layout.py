"""The design card's top-level packages import from this repository, and workers stay Dagster-free."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("package", ["assets", "resources", "jobs", "sensors", "workers", "migration_pipeline"])
def test_package_imports_from_this_repo(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None, f"{package} is a namespace package: something else shadows it"
    assert Path(module.__file__).resolve().parent == REPO / package


def test_workers_import_no_dagster_but_pipes() -> None:
    offenders = []
    for path in (REPO / "workers").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                root = name.split(".")[0]
                if root.startswith("dagster") and root != "dagster_pipes":
                    offenders.append(f"{path.relative_to(REPO)}: {name}")
                if root in ("assets", "resources", "jobs", "sensors", "migration_pipeline"):
                    offenders.append(f"{path.relative_to(REPO)}: {name}")
    assert offenders == []
