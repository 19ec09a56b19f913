"""The metadata assets in a real (temporary) Dagster instance against the sandbox: snapshot, evaluate, gate, migrate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from assets import (
    GATE_ASSETS,
    metadata_evaluation,
    migrated_metadata,
    no_blocking_incompatibilities,
    source_snapshot,
)
from migration_pipeline.definitions import defs
from migration_pipeline.sandbox.state import SandboxState
from migration_pipeline.sandbox.workflow_file import sandbox_workflow
from resources.workflow import WorkflowResource
from sensors.gates import approval_run_config
from tests.conftest import unique
from tests.workers.metadata.scenario import Scenario, build_es7, cleanup, client
from workflow_model.steps import Step

metadata_approval = GATE_ASSETS[Step.METADATA_APPROVAL]

ASSETS = [source_snapshot, metadata_evaluation, no_blocking_incompatibilities, metadata_approval, migrated_metadata]
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@pytest.fixture(scope="module")
def scenario(sandbox: SandboxState) -> Iterator[Scenario]:
    source, target = sandbox.engines["source"], sandbox.engines["target"]
    prefix = unique("mddg")
    try:
        yield build_es7(source.url, target.url, prefix)
    finally:
        cleanup(source.url, prefix)
        cleanup(target.url, prefix)


def _workflow(sandbox: SandboxState, s: Scenario, tmp_path: Path, **metadata: Any) -> WorkflowResource:
    mine = [f"regex:{s.prefix}.*"]
    path = tmp_path / "workflow.yaml"
    path.write_text(sandbox_workflow(
        sandbox, repository=unique(s.prefix), indices=[f"{s.prefix}-*"],
        metadata={"index_allowlist": mine, "index_template_allowlist": mine, "component_template_allowlist": mine,
                  **metadata}))
    return WorkflowResource(config_path=str(path))


def _materialize(selection: list[str], workflow: WorkflowResource, instance: dg.DagsterInstance,
                 run_config: dict[str, Any] | None = None) -> dg.ExecuteInProcessResult:
    return dg.materialize(ASSETS, selection=selection, resources={"workflow": workflow}, instance=instance,
                          run_config={**QUIET, **(run_config or {})}, raise_on_error=False)


def test_definitions_hold_the_metadata_assets_and_check() -> None:
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"source_snapshot", "metadata_evaluation", "metadata_approval", "migrated_metadata"} <= keys
    checks = defs.resolve_asset_graph().asset_check_keys
    assert dg.AssetCheckKey(dg.AssetKey("metadata_evaluation"), "no_blocking_incompatibilities") in checks


def test_evaluate_check_approve_and_migrate(sandbox: SandboxState, scenario: Scenario, tmp_path: Path) -> None:
    p = scenario.prefix
    workflow = _workflow(sandbox, scenario, tmp_path, transformations={"replicas": 0})
    with dg.instance_for_test() as instance:
        result = _materialize(["source_snapshot", "metadata_evaluation"], workflow, instance)
        assert result.success
        [check] = result.get_asset_check_evaluations()
        assert check.passed
        approved = _materialize(["metadata_approval"], workflow, instance,
                                approval_run_config("metadata_approval", "tester"))
        assert approved.success
        assert _materialize(["migrated_metadata"], workflow, instance).success
        evaluation = instance.fetch_materializations(dg.AssetKey("metadata_evaluation"), limit=1).records[0]
        snapshot = instance.fetch_materializations(dg.AssetKey("source_snapshot"), limit=1).records[0]
        migrated = instance.fetch_materializations(dg.AssetKey("migrated_metadata"), limit=1).records[0]
    assert evaluation.asset_materialization is not None and migrated.asset_materialization is not None
    # The snapshot's start time, where the replay starts: in the asset's metadata and in its value.
    assert snapshot.asset_materialization is not None
    started = snapshot.asset_materialization.metadata["start_time_ms"].value
    assert isinstance(started, int) and started > 1_600_000_000_000
    assert result.output_for_node("source_snapshot")["start_time_ms"] == started
    meta = evaluation.asset_materialization.metadata
    table = str(meta["report"].value)
    assert table.startswith("| kind | name | action | transformations | notes |")
    assert f"| index | {p}-events-1 | create | strip-internal-settings, replica-override |" in table
    assert meta["create"].value == 6 and meta["blocked"].value == 0
    done = migrated.asset_materialization.metadata
    assert done["result_created"].value == 6 and done["approved_by"].value == "tester"
    assert f"| index | {p}-events-1 | create | created |" in str(done["report"].value)
    settings = client(scenario.target_url).indices.get_settings(index=f"{p}-events-1")
    assert settings[f"{p}-events-1"]["settings"]["index"]["number_of_replicas"] == "0"


def test_blocking_check_stops_the_migration(sandbox: SandboxState, scenario: Scenario, tmp_path: Path) -> None:
    p = scenario.prefix
    workflow = _workflow(sandbox, scenario, tmp_path, rename=[f"regex:{p}-(events|logs)-1={p}-same"])
    with dg.instance_for_test() as instance:
        result = _materialize(["source_snapshot", "metadata_evaluation"], workflow, instance)
        assert not result.success
        [check] = result.get_asset_check_evaluations()
        assert not check.passed and check.metadata["blocked"].value == 2
        assert "name collision" in str(check.metadata["blocked_objects"].value)
        # The gate refuses to approve a plan whose blocking check failed.
        gate = _materialize(["metadata_approval"], workflow, instance,
                            approval_run_config("metadata_approval", "tester"))
        assert not gate.success
        assert instance.fetch_materializations(dg.AssetKey("migrated_metadata"), limit=1).records == []
    assert not client(scenario.target_url).indices.exists(index=f"{p}-same")
