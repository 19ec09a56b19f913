"""The README's main job: a small demo run goes through the whole workflow in Dagster with matching counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from migration_pipeline.sandbox.state import SandboxState


def test_demo_runs_the_workflow_in_dagster_with_parity(sandbox: SandboxState, tmp_path: Path) -> None:
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "migration_pipeline.cli.main", "demo", "--scale", "0.02", "--json"],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["parity"] is True
    assert report["indices"] == ["logs-2024.01", "logs-2024.02", "products", "orders"]
    assert report["source_counts"] == {"logs-2024.01": 2000, "logs-2024.02": 1200, "products": 600, "orders": 200}
    assert report["target_counts"] == report["source_counts"]
    assert report["shards"] == 9 and report["backfill_docs"] == 4000
    assert {"sandbox", "load", "source_snapshot", "metadata_evaluation", "migrated_metadata", "shard_backfill",
            "backfill_parity"} <= report["phases"].keys()
    # Every phase ran as Dagster runs in the persistent instance the UI shows; the gates were approved on record.
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        shards = instance.get_materialized_partitions(dg.AssetKey("shard_backfill"))
        assert len(shards) == 9 and "orders:1" in shards
        gate = instance.fetch_materializations(dg.AssetKey("backfill_approval"), limit=1).records[0]
        assert gate.asset_materialization is not None
        assert gate.asset_materialization.metadata["approved_by"].value == "workflow config (approvals.skip)"
