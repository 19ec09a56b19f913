"""The README's main job: a small demo run migrates every index with matching counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from migration_pipeline.sandbox.state import SandboxState


def test_demo_migrates_with_parity(sandbox: SandboxState, tmp_path: Path) -> None:
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "migration_pipeline.cli.main", "demo", "--scale", "0.05", "--json"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["parity"] is True
    assert sorted(report["snapshot_indices"]) == ["logs-2024.01", "orders", "products"]
    assert report["backfill_docs"] == sum(report["source_counts"][i] for i in report["snapshot_indices"]) > 0
    assert report["dead_letters"] == 0
    assert {"sandbox", "load", "snapshot", "metadata", "backfill", "dagster"} <= report["phases"].keys()
    # The observations landed in the persistent Dagster instance the UI would show.
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.fetch_observations(dg.AssetKey("target_cluster"), limit=1).records
