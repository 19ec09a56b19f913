"""The metadata assets in a real (temporary) Dagster instance against the sandbox: evaluate, check, migrate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

from assets.metadata import metadata_evaluation, migrated_metadata, no_blocking_incompatibilities
from migration_pipeline.definitions import defs
from migration_pipeline.sandbox.state import SandboxState
from resources.clusters import SearchClusterResource
from resources.metadata import MetadataMigrationResource
from tests.conftest import unique
from tests.workers.metadata.scenario import Scenario, build_es7, cleanup, client

ASSETS = [metadata_evaluation, no_blocking_incompatibilities, migrated_metadata]


@pytest.fixture(scope="module")
def scenario(sandbox: SandboxState) -> Iterator[Scenario]:
    source, target = sandbox.engines["source"], sandbox.engines["target"]
    prefix = unique("mddg")
    try:
        yield build_es7(source.url, target.url, prefix)
    finally:
        cleanup(source.url, prefix)
        cleanup(target.url, prefix)


def _resources(s: Scenario, **options: Any) -> dict[str, object]:
    mine = [f"regex:{s.prefix}.*"]
    return {
        "source": SearchClusterResource(endpoint=s.source_url),
        "target": SearchClusterResource(endpoint=s.target_url),
        "metadata_migration": MetadataMigrationResource(index_allowlist=mine, index_template_allowlist=mine,
                                                        component_template_allowlist=mine, **options),
    }


def test_definitions_hold_the_metadata_assets_and_check() -> None:
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"metadata_evaluation", "migrated_metadata"} <= keys
    checks = defs.resolve_asset_graph().asset_check_keys
    assert dg.AssetCheckKey(dg.AssetKey("metadata_evaluation"), "no_blocking_incompatibilities") in checks


def test_evaluate_check_and_migrate(scenario: Scenario) -> None:
    p = scenario.prefix
    with dg.instance_for_test() as instance:
        result = dg.materialize(ASSETS, resources=_resources(scenario, replicas=0), instance=instance)
        assert result.success
        [check] = result.get_asset_check_evaluations()
        assert check.passed
        evaluation = instance.fetch_materializations(dg.AssetKey("metadata_evaluation"), limit=1).records[0]
        migrated = instance.fetch_materializations(dg.AssetKey("migrated_metadata"), limit=1).records[0]
    assert evaluation.asset_materialization is not None and migrated.asset_materialization is not None
    meta = evaluation.asset_materialization.metadata
    table = str(meta["report"].value)
    assert table.startswith("| kind | name | action | transformations | notes |")
    assert f"| index | {p}-events-1 | create | strip-internal-settings, replica-override |" in table
    assert meta["create"].value == 6 and meta["blocked"].value == 0
    done = migrated.asset_materialization.metadata
    assert done["result_created"].value == 6
    assert f"| index | {p}-events-1 | create | created |" in str(done["report"].value)
    settings = client(scenario.target_url).indices.get_settings(index=f"{p}-events-1")
    assert settings[f"{p}-events-1"]["settings"]["index"]["number_of_replicas"] == "0"


def test_blocking_check_stops_the_migration(scenario: Scenario) -> None:
    p = scenario.prefix
    collide = [f"regex:{p}-(events|logs)-1={p}-same"]
    with dg.instance_for_test() as instance:
        result = dg.materialize(ASSETS, resources=_resources(scenario, rename=collide), instance=instance,
                                raise_on_error=False)
        assert not result.success
        [check] = result.get_asset_check_evaluations()
        assert not check.passed and check.metadata["blocked"].value == 2
        assert "name collision" in str(check.metadata["blocked_objects"].value)
        assert instance.fetch_materializations(dg.AssetKey("migrated_metadata"), limit=1).records == []
    assert not client(scenario.target_url).indices.exists(index=f"{p}-same")
