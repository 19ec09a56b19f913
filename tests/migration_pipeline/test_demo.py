"""The README's main job as a newcomer runs it: a shell with nothing exported, its own cache, the whole workflow.

The demo starts its own sandbox here (in a fresh cache folder, moved by MIGRATION_CACHE_DIR, the one documented
variable for it), so nothing the test session set up or exported can hide a failure of a bare shell.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCALE_002 = {"logs-2024.01": 2000, "logs-2024.02": 1200, "products": 600, "orders": 200}


@pytest.fixture(scope="module")
def bare_env() -> Iterator[dict[str, str]]:
    """PATH and HOME only, plus a cache folder of its own; the demo's sandbox is stopped afterwards."""
    # mkdtemp makes a 0700 folder; as root the engines run as another user, who must reach their files.
    cache = Path(tempfile.mkdtemp(prefix="bare-demo-"))
    cache.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "MIGRATION_CACHE_DIR": str(cache)}
    try:
        yield env
    finally:
        subprocess.run([str(BIN / "migration"), "sandbox", "down"], env=env, capture_output=True, timeout=300)
        shutil.rmtree(cache, ignore_errors=True)


def _demo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # From a folder under the clone other than its root: the working directory must not matter.
    return subprocess.run([str(BIN / "migration"), "demo", "--scale", "0.02", *args], cwd=REPO / "tests", env=env,
                          capture_output=True, text=True, timeout=1200)


def test_demo_in_a_bare_shell_runs_the_workflow_to_parity(bare_env: dict[str, str]) -> None:
    proc = _demo(bare_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    # The parity table: one row per index, source and target counts equal.
    rows = {m[0]: (int(m[1]), int(m[2]), m[3]) for m in
            re.findall(r"│ (\S+)\s+│ (\d+)\s+│ (\d+)\s+│ (\w+)\s+│", proc.stdout)}
    assert rows == {index: (n, n, "yes") for index, n in SCALE_002.items()}, proc.stdout
    # One line per phase with its duration, and no library noise or worker log lines on the terminal.
    for phase in ("sandbox", "data", "snapshot", "metadata evaluation", "metadata migration",
                  "snapshot registration", "backfill", "parity check", "validation report", "cleanup"):
        assert re.search(rf"✓ {phase}\s+\d+\.\d s", output), f"no line for phase {phase!r}:\n{output}"
    assert "Warning" not in output and "Traceback" not in output
    # Every planned index and template (composable, component, legacy) is on the target after the migration.
    assert "7 created; 4/4 indices and 3/3 templates on the target" in output, output
    assert '"logger": "workers.rfs"' not in output and "documents written" not in output
    # The Dagster home is the cache's, and every phase is recorded there as Dagster runs.
    home = Path(bare_env["MIGRATION_CACHE_DIR"]) / "dagster_home"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        shards = instance.get_materialized_partitions(dg.AssetKey("shard_backfill"))
        assert len(shards) == 9 and "orders:1" in shards
        # All four gates were passed (the demo's config skips them, on the record), and the cleanup ran.
        for name in ("metadata_approval", "migrated_metadata_approval", "backfill_approval", "validation_approval"):
            gate = instance.fetch_materializations(dg.AssetKey(name), limit=1).records[0]
            assert gate.asset_materialization is not None
            assert gate.asset_materialization.metadata["approved_by"].value == "workflow config (approvals.skip)"
        assert instance.fetch_materializations(dg.AssetKey("migration_cleanup"), limit=1).records
        # Shard runs overlap, as under `dagster dev` with the pool's limit of 2, though in the demo's process.
        spans = sorted((r.start_time, r.end_time) for r in instance.get_run_records(
            dg.RunsFilter(job_name="backfill_shards")) if r.start_time and r.end_time)
        assert len(spans) == 9
        assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))
    # The workers' lines went to their log files, whose folder the demo printed.
    logs = home / "migration" / "logs"
    assert str(logs / "shards") in proc.stdout
    assert "orders[1]: done:" in (logs / "shards" / "orders-1.log").read_text()
    assert "phase backfill" in (logs / "demo.log").read_text()


def test_demo_runs_again_on_the_same_sandbox_and_reports_json(bare_env: dict[str, str]) -> None:
    proc = _demo(bare_env, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["parity"] is True
    assert report["indices"] == list(SCALE_002)
    assert report["source_counts"] == SCALE_002 and report["target_counts"] == SCALE_002
    assert report["shards"] == 9 and report["backfill_docs"] == 4000
    assert {"sandbox", "load", "source_snapshot", "metadata_evaluation", "migrated_metadata", "snapshot_registration",
            "shard_backfill", "backfill_parity", "migration_cleanup"} <= report["phases"].keys()
    assert report["backfill_worker_seconds"] > 0
    assert report["dagster_home"] == str(Path(report["log_file"]).parents[2])
