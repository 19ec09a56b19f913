"""The layers, as one sentence and the tests that hold the code to it.

``migration_pipeline`` (Definitions, CLIs, sandbox) is on top; below it ``sensors`` → ``jobs`` → ``assets`` →
``resources`` → ``workflow_model`` → ``workers``, and each package imports only packages below it (``workers``
imports none of them, and Dagster only as ``dagster_pipes``); the packages inside ``workers`` import each other
without cycles.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Top to bottom: a package may import the ones after it, never the ones before it.
LAYERS = ("migration_pipeline", "sensors", "jobs", "assets", "resources", "workflow_model", "workers")
DAGSTER_FREE = ("workflow_model", "workers")


def _imports(package: str) -> Iterator[tuple[str, str]]:
    """(file, module) for every absolute import in ``package``, functions' bodies included."""
    for path in sorted((REPO / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield str(path.relative_to(REPO)), alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield str(path.relative_to(REPO)), node.module


@pytest.mark.parametrize("package", LAYERS)
def test_package_imports_from_this_repo(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None, f"{package} is a namespace package: something else shadows it"
    assert Path(module.__file__).resolve().parent == REPO / package


@pytest.mark.parametrize("package", LAYERS)
def test_each_layer_imports_only_layers_below_it(package: str) -> None:
    above = set(LAYERS[:LAYERS.index(package)])
    offenders = [f"{file}: {module}" for file, module in _imports(package) if module.split(".")[0] in above]
    assert offenders == [], f"{package} may import only {', '.join(LAYERS[LAYERS.index(package) + 1:]) or 'none'}"


@pytest.mark.parametrize("package", DAGSTER_FREE)
def test_lower_layers_import_no_dagster_but_pipes(package: str) -> None:
    offenders = [f"{file}: {module}" for file, module in _imports(package)
                 if module.split(".")[0].startswith("dagster") and module.split(".")[0] != "dagster_pipes"]
    assert offenders == []


def _worker_package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for file, module in _imports("workers"):
        parts = Path(file).parts
        if len(parts) < 3:  # workers/__init__.py
            continue
        source, target = parts[1], module.split(".")
        if target[0] == "workers" and len(target) > 1 and target[1] != source:
            graph.setdefault(source, set()).add(target[1])
    return graph


def test_worker_packages_import_each_other_without_cycles() -> None:
    graph = _worker_package_graph()
    cycles: set[tuple[str, ...]] = set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                loop = path[path.index(nxt):]
                first = loop.index(min(loop))  # one spelling per cycle, whichever package it was entered from
                cycles.add(tuple(loop[first:] + loop[:first]))
            else:
                visit(nxt, [*path, nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert not cycles, "import cycles between workers packages: " + "; ".join(
        " → ".join([*c, c[0]]) for c in sorted(cycles))


def test_workers_common_is_the_bottom_of_the_data_plane() -> None:
    assert _worker_package_graph().get("common", set()) == set()
