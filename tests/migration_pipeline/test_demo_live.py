"""`migration demo --live` on the session's sandbox (Elasticsearch 7.10, OpenSearch 2.19, Kafka, S3): a client writes
through the real capture proxy all along, the workflow backfills, replays, validates against the live source, cuts
over through the proxy's switch; the client writes to the target, the back-out moves it back, and both clusters are
compared document by document and for every acknowledged write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from migration_pipeline.sandbox.state import SandboxState

BIN = Path(sys.executable).parent


def test_live_demo_cuts_over_and_backs_out_losing_nothing(sandbox: SandboxState, tmp_path: Path) -> None:
    # A Dagster home of its own: the demo resets the instance it runs on.
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    env.pop("MIGRATION_WORKFLOW_CONFIG", None)
    proc = subprocess.run([str(BIN / "migration"), "demo", "--live", "--scale", "0.01", "--name", sandbox.name,
                           "--json"], env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads(proc.stdout)
    assert report["agree"] and report["stopped"] is None
    assert report["client_errors"] == [] and report["wrong_values"] == []
    phases = [name for name, _, _ in report["phases"]]
    assert phases == ["sandbox", "data", "capture", "workflow", "on the target", "back-out", "drain",
                      "final validation"], phases
    # Writes were acknowledged on both sides of both switches, and every index agrees on both clusters.
    assert report["writes"] > 100 and report["latency_ms"]["switches_writes"] > 0
    assert set(report["indices"]) >= {"live-counters", "orders"}
    for row in report["indices"].values():
        assert row["source"] == row["target"] and row["source_digest"] == row["target_digest"]
    print(f"live demo: {report['writes']} writes; latency ms {report['latency_ms']}")
