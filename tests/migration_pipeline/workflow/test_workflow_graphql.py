"""The workflow through the GraphQL API of a real, headless ``dagster dev``: its daemon runs the phases."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from migration_pipeline.sandbox.state import SandboxState
from migration_pipeline.workflow import devserver
from tests.migration_pipeline.workflow.helpers import Migration, build_migration, target_rows


def _until(m: Migration, url: str, done: Callable[[dict[str, str]], bool], timeout_s: float = 300) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = m.states("--dagster-url", url)
        if done(states):
            return states
        assert "failed" not in states.values(), states
        time.sleep(3)
    raise AssertionError(f"not reached within {timeout_s}s: {states}")


def test_workflow_through_graphql(sandbox: SandboxState, tmp_path: Path) -> None:
    m = build_migration(sandbox, tmp_path, docs=150)
    server = devserver.start(m.home, env={"MIGRATION_SANDBOX_NAME": sandbox.name})
    try:
        url = server.url
        submitted = m.run("submit", "--dagster-url", url, "--wait", "--json", check=True)
        assert '"waiting for approval"' in submitted.stdout
        assert m.run("approve", "--list", "--dagster-url", url, check=True).stdout.strip() == "metadata_approval"
        m.run("approve", "metadata_approval", "--by", "erin", "--dagster-url", url, check=True)
        # The automation sensor releases each gated step; the next gate then waits.
        _until(m, url, lambda s: s["migrated_metadata_approval"] == "waiting for approval")
        m.run("approve", "step", "migrated_metadata_approval", "--by", "erin", "--dagster-url", url, check=True)
        _until(m, url, lambda s: s["backfill_approval"] == "waiting for approval")
        m.run("approve", "step", "backfill_approval", "--by", "erin", "--dagster-url", url, check=True)
        states = _until(m, url, lambda s: s["validation_approval"] == "waiting for approval")
        assert states["shard_backfill"] == "done" and states["backfill_parity"] == "done"
        m.run("approve", "step", "validation_approval", "--by", "erin", "--dagster-url", url, check=True)
        _until(m, url, lambda s: s["migration_cleanup"] == "done")
        status = m.status("--dagster-url", url)
        assert status["shards"]["done"] == 3 and status["documents"] == sum(m.counts.values())
        assert status["parity"]["mismatched"] == []
        log = m.run("log", "--dagster-url", url, "--limit", "1000", check=True).stdout
        assert "backfill_parity" in log
        # Outputs and phase logs through the webserver; a shard's worker log is its run's captured stderr here.
        evaluation = m.run("output", "metadata_evaluation", "--dagster-url", url, check=True).stdout
        assert f"| index | {m.prefix}-logs | create |" in evaluation
        shard = f"{m.prefix}-logs:0"
        worker_log = m.run("output", shard, "--dagster-url", url, check=True)
        assert re.search(r": done: \d+ documents", worker_log.stdout), worker_log.stdout + worker_log.stderr
        shard_events = m.run("log", f"shard_backfill[{shard}]", "--dagster-url", url, check=True).stdout
        assert f"shard_backfill[{shard}]" in shard_events and f"{m.prefix}-logs:1" not in shard_events
    finally:
        server.stop()
    for index in m.counts:
        assert target_rows(m.target, index) == target_rows(m.source, index)
