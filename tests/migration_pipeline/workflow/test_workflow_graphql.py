"""The workflow through the GraphQL API of a real, headless ``dagster dev``: its daemon runs the phases."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from migration_pipeline.sandbox.state import SandboxState
from migration_pipeline.workflow import devserver
from migration_pipeline.workflow.remote import RemoteWorkflow
from sensors.gates import GATES_INTERVAL_ENV
from tests.migration_pipeline.workflow.helpers import Migration, build_migration, target_rows

_FAST_QUEUE = """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""


def _until(m: Migration, url: str, done: Callable[[dict[str, str]], bool], timeout_s: float = 300) -> dict[str, str]:
    """The CLI's phase states once ``done`` holds for them. The waiting polls the same GraphQL status in-process
    every second (a ``workflow`` subprocess costs ~2.5 s of CPU on a 2-core machine that also runs the daemon and
    the runs); the states returned, and ``done`` on them, are the CLI's."""
    remote = RemoteWorkflow(url, say=lambda _: None)
    deadline = time.monotonic() + timeout_s
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {p.name: p.state for p in remote.status().phases}
        assert "failed" not in states.values(), states
        if done(states):
            states = m.states("--dagster-url", url)
            assert "failed" not in states.values(), states
            if done(states):
                return states
        time.sleep(1)
    raise AssertionError(f"not reached within {timeout_s}s: {states}")


def test_workflow_through_graphql(sandbox: SandboxState, tmp_path: Path) -> None:
    m = build_migration(sandbox, tmp_path, docs=150)
    # Each step here is a run the daemon starts: the queue is checked every second instead of every 5 (a setting
    # of Dagster's QueuedRunCoordinator), and the gates' sensors on every loop of the daemon (about every 5 seconds)
    # instead of every 15; the order of the steps and every gate are unchanged.
    with open(m.home / "dagster.yaml", "a") as instance_yaml:
        instance_yaml.write(_FAST_QUEUE)
    server = devserver.start(m.home, env={"MIGRATION_SANDBOX_NAME": sandbox.name, GATES_INTERVAL_ENV: "1"})
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
        # The read-only commands below are independent: run at once, they cost one CLI start-up instead of five.
        shard = f"{m.prefix}-logs:0"
        commands = {"status": ("status", "--json"), "log": ("log", "--limit", "1000"),
                    "evaluation": ("output", "metadata_evaluation"), "worker_log": ("output", shard),
                    "shard_events": ("log", f"shard_backfill[{shard}]")}
        with ThreadPoolExecutor(len(commands)) as pool:
            futures = {name: pool.submit(m.run, *args, "--dagster-url", url, check=True)
                       for name, args in commands.items()}
            done = {name: future.result() for name, future in futures.items()}
        status = json.loads(done["status"].stdout)
        assert status["shards"]["done"] == 3 and status["documents"] == sum(m.counts.values())
        assert status["parity"]["mismatched"] == []
        assert "backfill_parity" in done["log"].stdout
        # Outputs and phase logs through the webserver; a shard's worker log is its run's captured stderr here.
        assert f"| index | {m.prefix}-logs | create |" in done["evaluation"].stdout
        worker_log = done["worker_log"]
        assert re.search(r": done: \d+ documents", worker_log.stdout), worker_log.stdout + worker_log.stderr
        shard_events = done["shard_events"].stdout
        assert f"shard_backfill[{shard}]" in shard_events and f"{m.prefix}-logs:1" not in shard_events
    finally:
        server.stop()
    for index in m.counts:
        assert target_rows(m.target, index) == target_rows(m.source, index)
