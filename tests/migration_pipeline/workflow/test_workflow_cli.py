"""The workflow end to end through the ``workflow`` CLI, in-process against a Dagster home of the test's own."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError

from migration_pipeline.sandbox.state import SandboxState
from tests.migration_pipeline.workflow.helpers import build_migration, target_rows


def test_submit_approve_each_gate_then_parity(sandbox: SandboxState, tmp_path: Path) -> None:
    m = build_migration(sandbox, tmp_path)
    submitted = m.run("submit")
    assert submitted.returncode == 0, submitted.stderr
    assert "waiting for metadata_approval" in submitted.stdout
    states = m.states()
    assert states["source_snapshot"] == "done" and states["metadata_approval"] == "waiting for approval"
    assert states["migrated_metadata"] == "pending"
    assert m.run("approve", "--list", check=True).stdout.strip() == "metadata_approval"
    # Nothing was written to the target before the approval.
    target = OpenSearch(hosts=[m.target])
    assert not target.indices.exists(index=f"{m.prefix}-logs")

    m.run("approve", "metadata_approval", "--by", "alice", "--ticket", "CHG-7", check=True)
    states = m.states()
    assert states["migrated_metadata"] == "done" and states["migrated_metadata_approval"] == "waiting for approval"
    assert target.indices.exists(index=f"{m.prefix}-logs")
    assert target.count(index=f"{m.prefix}-logs")["count"] == 0
    # Each gate shows what it decides on: here the migrated objects as the target holds them.
    status = m.status()
    evidence = status["gate_evidence"]["migrated_metadata_approval"]
    assert evidence.startswith("2/2 indices") and "missing" not in evidence, evidence

    m.run("approve", "migrated_metadata_approval", "--by", "bob", check=True)
    states = m.states()
    assert states["snapshot_registration"] == "done" and states["backfill_approval"] == "waiting for approval"
    assert states["shard_backfill"] == "pending" and target.count(index=f"{m.prefix}-logs")["count"] == 0
    evidence = m.status()["gate_evidence"]["backfill_approval"]
    assert evidence.startswith(f"2 indices, 3 shards, {sum(m.counts.values())} source documents"), evidence
    assert evidence.endswith(": fits"), evidence
    coordination = f".mws-{m.prefix}"
    assert target.indices.exists(index=coordination)  # the registration is recorded there

    m.run("approve", "backfill_approval", "--by", "bob", check=True)
    status = m.status()
    assert status["pending_gates"] == ["validation_approval"] and not status["finished"]
    assert status["shards"] == {"done": 3, "failed": 0, "running": 0, "pending": 0}
    assert status["documents"] == sum(m.counts.values()) and status["parity"]["mismatched"] == []
    printed = m.run("status", check=True).stdout
    # The last gate's evidence is the validation report (content fingerprints and all), not just the counts.
    assert "waiting for validation_approval" in printed and "evidence: clean," in printed

    m.run("approve", "validation_approval", "--by", "carol", check=True)
    status = m.status()
    # The gate sequence as `workflow status` prints it.
    assert [(p["name"], p["kind"]) for p in status["phases"]] == [
        ("source_snapshot", "phase"), ("metadata_evaluation", "phase"), ("metadata_approval", "gate"),
        ("migrated_metadata", "phase"), ("migrated_metadata_approval", "gate"), ("snapshot_registration", "phase"),
        ("backfill_approval", "gate"), ("shard_backfill", "phase"), ("backfill_parity", "phase"),
        ("replay_catchup", "phase"), ("validation_report", "phase"), ("cutover_approval", "gate"),
        ("cutover", "phase"), ("validation_approval", "gate"), ("migration_cleanup", "phase")]
    assert {p["state"] for p in status["phases"]} == {"done"} and status["finished"]
    # The cleanup removed the coordination state and the repository registration it made, and kept the data.
    assert not target.indices.exists(index=coordination)
    with pytest.raises(NotFoundError):
        OpenSearch(hosts=[m.source]).snapshot.get_repository(repository=m.prefix)
    for index in m.counts:
        assert target_rows(m.target, index) == target_rows(m.source, index)
    with dg.DagsterInstance.from_config(str(m.home)) as instance:
        gate = instance.fetch_materializations(dg.AssetKey("metadata_approval"), limit=1).records[0]
        assert gate.asset_materialization is not None
        meta = gate.asset_materialization.metadata
        assert meta["approved_by"].value == "alice" and meta["ticket"].value == "CHG-7"
    # Submitting again with the same snapshot settings runs nothing new.
    again = m.run("submit", check=True)
    assert "nothing to rerun" in again.stderr
    log = m.run("log", "--limit", "500", check=True).stdout
    assert "shard_backfill" in log and "backfill_parity" in log and "migration_cleanup" in log


def test_rejected_gate_stops_the_workflow(sandbox: SandboxState, tmp_path: Path) -> None:
    m = build_migration(sandbox, tmp_path, docs=30)
    m.run("submit", check=True)
    rejected = m.run("approve", "metadata_approval", "--by", "carol", "--reject", "--ticket", "too early")
    assert rejected.returncode == 1
    assert "metadata_approval was rejected by carol (ticket too early)" in rejected.stderr + rejected.stdout
    status = m.status()
    states = {p["name"]: p["state"] for p in status["phases"]}
    assert states["metadata_approval"] == "rejected" and status["rejected_gates"] == ["metadata_approval"]
    assert states["migrated_metadata"] == "failed" and states["shard_backfill"] == "pending"
    assert not OpenSearch(hosts=[m.target]).indices.exists(index=f"{m.prefix}-logs")
    # A later approval of the same evaluation lets it go on.
    m.run("approve", "metadata_approval", "--by", "carol", check=True)
    assert m.states()["migrated_metadata"] == "done"
