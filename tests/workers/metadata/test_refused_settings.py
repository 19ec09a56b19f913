"""Settings the target refuses at index creation, on the session sandbox (Elasticsearch 7.10 → OpenSearch 2.19):
soft deletes turned off (which the target's simulation does not catch), the fallback for settings no rule knows,
and the target's answers about setting values."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.metadata.scenario import bulk, cleanup, client
from workers.common.clusters import ClusterConnection
from workers.metadata import objects
from workers.metadata.apply import migrate
from workers.metadata.capabilities import LiveSettings
from workers.metadata.model import SourceMetadata
from workers.metadata.options import MigrationOptions
from workers.metadata.plan import evaluate
from workers.metadata.report import Report, Row
from workers.metadata.source import SnapshotLocation, read_source
from workers.metadata.versions import EngineVersion
from workers.snapshot.create import create_snapshot, register_fs_repository

SOFT_DELETES_OFF = {"index.soft_deletes.enabled": False, "index.merge.policy.max_merge_at_once_explicit": 30,
                    "index.translog.retention.size": "512mb"}


@pytest.fixture
def prefix(sandbox: SandboxState) -> Iterator[str]:
    p = unique("mdrs")
    yield p
    cleanup(sandbox.engines["source"].url, p)
    cleanup(sandbox.engines["target"].url, p)


def _options(p: str) -> MigrationOptions:
    mine = [f"regex:{p}.*"]
    return MigrationOptions.build(index_allowlist=mine, index_template_allowlist=mine,
                                  component_template_allowlist=mine)


def _mine(report: Report, p: str) -> dict[str, Row]:
    return {r.name: r for r in report.rows if r.source_name.startswith(p)}


def test_soft_deletes_off_is_removed_before_the_target_refuses_it(sandbox: SandboxState, prefix: str) -> None:
    source, target = sandbox.engines["source"], sandbox.engines["target"]
    sc, tc = client(source.url), client(target.url)
    sc.indices.put_template(name=f"{prefix}-lt", body={"index_patterns": [f"{prefix}-lt-*"],
                                                       "settings": SOFT_DELETES_OFF})
    sc.indices.create(index=f"{prefix}-hard", body={"settings": {**SOFT_DELETES_OFF, "number_of_replicas": 0}})
    assert not bulk(sc, f"{prefix}-hard", [{"n": i} for i in range(3)])["errors"]
    repo = f"{source.repo_path}/{prefix}"
    register_fs_repository(sc, prefix, repo)
    create_snapshot(sc, prefix, "snap", indices=f"{prefix}-*", include_global_state=True)
    options = _options(prefix)
    snap = evaluate(read_source(snapshot=SnapshotLocation(repo, "snap")), tc, target.url, options)
    live = evaluate(read_source(cluster=ClusterConnection(endpoint=source.url)), tc, target.url, options)
    for report in (snap, live):
        rows = _mine(report, prefix)
        assert {n: r.action for n, r in rows.items()} == {f"{prefix}-lt": "create", f"{prefix}-hard": "create"}
        for row in rows.values():
            assert "drop-removed-settings" in row.transformations
            assert any(w.startswith("removed index.soft_deletes.enabled=false: OpenSearch 2 and later always keep "
                                    "soft deletes") for w in row.warnings), row.warnings
            assert row.body is not None and "index.soft_deletes.enabled" not in row.body["settings"]
            assert "index.merge.policy.max_merge_at_once_explicit" not in row.body["settings"]
            # Deprecated on the target, not refused: kept.
            assert row.body["settings"]["index.translog.retention.size"] == "512mb"
    migrated = migrate(live, tc, target.url)
    assert {n: r.result for n, r in _mine(migrated, prefix).items()} == {f"{prefix}-lt": "created",
                                                                         f"{prefix}-hard": "created"}
    created = tc.indices.get_settings(index=f"{prefix}-hard", params={"flat_settings": "true"})
    assert created[f"{prefix}-hard"]["settings"].get("index.soft_deletes.enabled", "true") == "true"
    # The migrated template creates indices on the target too (it would not with soft deletes off).
    tc.indices.create(index=f"{prefix}-lt-1")
    second = evaluate(read_source(cluster=ClusterConnection(endpoint=source.url)), tc, target.url, options)
    assert {r.action for r in _mine(second, prefix).values()} == {"exists-identical"}


def test_settings_no_rule_knows_are_dropped_by_evaluate_and_by_migrate(sandbox: SandboxState, prefix: str) -> None:
    target = sandbox.engines["target"]
    tc = client(target.url)
    source = SourceMetadata(EngineVersion.parse("es:7.10.2"), "test", [
        objects.index(f"{prefix}-odd", {"index.some_plugin.mode": "fast", "index.number_of_shards": "1"}, {}, {}),
        objects.index(f"{prefix}-plain", {"index.number_of_shards": "1"}, {}, {}),
    ])
    report = evaluate(source, tc, target.url, _options(prefix))
    rows = _mine(report, prefix)
    odd = rows[f"{prefix}-odd"]
    assert odd.action == "create" and odd.transformations == ["drop-unknown-settings"]
    assert odd.warnings == ["removed index.some_plugin.mode=fast: the target does not know it, so it has no effect "
                            "there; if a plugin provides it, install the plugin on the target and set it again"]
    assert odd.body == {"settings": {"index.number_of_shards": "1"}}
    assert "drop-unknown-settings" in report.transformations
    # A setting the target refuses only at creation (here: added after evaluate) gets the same fallback, once.
    plain = rows[f"{prefix}-plain"]
    assert plain.body is not None
    plain.body["settings"]["index.other_plugin.level"] = "3"
    migrate(report, tc, target.url)
    assert plain.result == "created" and plain.transformations == ["drop-unknown-settings"]
    assert plain.warnings[0].startswith("removed index.other_plugin.level=3: the target does not know it")
    assert odd.result == "created" and report.exit_code() == 0
    # Evaluated again, the target's index lacks the dropped setting: the fallback drops it again, so it is identical.
    again = _mine(evaluate(source, tc, target.url, _options(prefix)), prefix)
    assert {n: r.action for n, r in again.items()} == {f"{prefix}-odd": "exists-identical",
                                                        f"{prefix}-plain": "exists-identical"}
    assert again[f"{prefix}-odd"].transformations == ["drop-unknown-settings"]


def test_the_target_answers_about_setting_values(sandbox: SandboxState) -> None:
    live = LiveSettings(client(sandbox.engines["target"].url), "target")
    # The sandbox's OpenSearch has no custom-codecs plugin and no store-smb plugin.
    assert live.refuses("index.codec", "zstd") and live.refuses("index.codec", "qat_lz4")
    assert live.refuses("index.store.type", "smb_mmap_fs")
    assert not live.refuses("index.codec", "best_compression") and not live.refuses("index.store.type", "niofs")
    # Soft deletes off passes the simulation and fails only at creation: why a rule removes it unconditionally.
    assert not live.refuses("index.soft_deletes.enabled", "false")
