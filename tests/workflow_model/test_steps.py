"""The workflow's steps and gates are declared once (``workflow_model/steps.py``); the code location and every
other module derive from that declaration."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster as dg
import pytest

from assets.approvals import BLOCKING_CHECKS
from migration_pipeline.definitions import defs
from workflow_model.steps import GATE_NAMES, GATES, PHASES, SHARD_POOL, Gate, Step, gate, is_gate
from workflow_model.store import sample_text

REPO = Path(__file__).resolve().parents[2]
STEPS_MODULE = REPO / "workflow_model" / "steps.py"
# Where a step's name must not be typed again: every package of the control plane (workers/ knows no steps).
SCANNED = ("assets", "jobs", "sensors", "resources", "migration_pipeline", "workflow_model")


def _graph() -> dg.AssetGraph:
    return defs.resolve_asset_graph()


def test_every_step_is_an_asset_and_every_asset_a_step() -> None:
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert keys == {step.value for step in Step}


def test_phases_and_gates_are_steps() -> None:
    assert set(PHASES) <= set(Step)
    assert len(set(PHASES)) == len(PHASES)
    assert {g.step for g in GATES} <= set(PHASES)
    assert tuple(g.step.value for g in GATES) == GATE_NAMES
    assert all(is_gate(name) for name in GATE_NAMES) and not is_gate(Step.SHARD_BACKFILL)
    for g in GATES:
        assert gate(g.name) is g
        # A person follows them in order: what a gate approves comes before it, what it releases after it.
        assert PHASES.index(g.approves) < PHASES.index(g.step) < PHASES.index(g.releases)


@pytest.mark.parametrize("g", GATES, ids=lambda g: g.name)
def test_each_gate_has_its_job_and_sits_between_what_it_approves_and_releases(g: Gate) -> None:
    job = defs.resolve_job_def(g.job_name)
    assert job.asset_layer.executable_asset_keys == {dg.AssetKey(g.name)}
    graph = _graph()
    assert dg.AssetKey(g.approves.value) in graph.get(dg.AssetKey(g.name)).parent_keys
    assert dg.AssetKey(g.name) in graph.get(dg.AssetKey(g.releases.value)).parent_keys


def test_blocking_checks_a_gate_honours_exist() -> None:
    graph = _graph()
    for step, names in BLOCKING_CHECKS.items():
        for name in names:
            key = dg.AssetCheckKey(dg.AssetKey(step.value), name)
            assert key in graph.asset_check_keys, f"{key} is not an asset check of the code location"
            assert graph.get_check_spec(key).blocking
    assert set(BLOCKING_CHECKS) <= {g.approves for g in GATES}


def test_the_shard_asset_uses_the_shard_pool() -> None:
    assert defs.resolve_assets_def(Step.SHARD_BACKFILL.value).op.pool == SHARD_POOL


def test_the_sample_config_names_every_gate() -> None:
    text = sample_text()
    assert [name for name in GATE_NAMES if name not in text] == []


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants (module, class, function)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _all_names(tree: ast.AST) -> set[int]:
    """ids of the constants of ``__all__ = [...]``: they name Python objects, not steps."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            found |= {id(c) for c in ast.walk(node.value) if isinstance(c, ast.Constant)}
    return found


def test_no_step_name_is_typed_outside_the_declaration() -> None:
    names = {step.value for step in Step}
    offenders = []
    for package in SCANNED:
        for path in sorted((REPO / package).rglob("*.py")):
            if path == STEPS_MODULE:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            allowed = _docstrings(tree) | _all_names(tree)
            offenders += [f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
                          if isinstance(node, ast.Constant) and node.value in names and id(node) not in allowed]
    assert offenders == []
