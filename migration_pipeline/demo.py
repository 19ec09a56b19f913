"""The README's main job on the embedded default: sandbox, realistic data, then the whole workflow in Dagster.

Gates are approved by the workflow config in the default mode; ``interactive`` starts ``dagster dev`` and leaves
them to a person in the UI (or ``workflow approve``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from migration_pipeline.config import save_active
from migration_pipeline.config.sandbox import sandbox_workflow
from migration_pipeline.config.store import dagster_home
from migration_pipeline.demo_data import load_demo_data
from migration_pipeline.sandbox import manager
from migration_pipeline.sandbox.paths import NAME_ENV, sandbox_name
from migration_pipeline.workflow.local import LocalWorkflow, WorkflowError
from workers.common.clusters import ClusterConnection, build_client

REPOSITORY = "migration_demo"
STEPS = ("source_snapshot", "metadata_evaluation", "migrated_metadata", "shard_backfill", "backfill_parity")


@dataclass
class DemoReport:
    """What the demo did, for the summary table."""

    source_url: str = ""
    target_url: str = ""
    snapshot: str = ""
    dagster_home: str = ""
    dagster_url: str = ""
    indices: list[str] = field(default_factory=list)
    source_counts: dict[str, int] = field(default_factory=dict)
    target_counts: dict[str, int | None] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    shards: int = 0
    backfill_docs: int = 0
    backfill_docs_per_s: float = 0.0
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def parity(self) -> bool:
        """True when every migrated index has as many documents on the target as on the source."""
        return bool(self.indices) and all(self.source_counts.get(i) == self.target_counts.get(i)
                                          for i in self.indices)


def _phase_times(instance: dg.DagsterInstance, since: float) -> dict[str, float]:
    """Wall time per phase from the runs' step stats: first step start to last step end."""
    spans: dict[str, list[float]] = {}
    for run in instance.get_run_records(dg.RunsFilter(created_after=_utc(since))):
        for stat in instance.get_run_step_stats(run.dagster_run.run_id):
            name = stat.step_key.split("[")[0]
            if name in STEPS and stat.start_time and stat.end_time:
                span = spans.setdefault(name, [stat.start_time, stat.end_time])
                span[0], span[1] = min(span[0], stat.start_time), max(span[1], stat.end_time)
    return {name: round(spans[name][1] - spans[name][0], 1) for name in STEPS if name in spans}


def _utc(ts: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)


def _clear_target(url: str, indices: list[str]) -> None:
    """A demo run starts from an empty target (the demo's own sandbox): its indices and coordination state go."""
    client = build_client(ClusterConnection(url))
    for name in [*indices, ".migrations_working_state"]:
        if client.indices.exists(index=name):
            client.indices.delete(index=name)


def run(scale: float = 1.0, name: str | None = None, interactive: bool = False,
        say: Callable[[str], None] = print) -> DemoReport:
    """Start the default sandbox, load the demo data and run the workflow in Dagster to the parity check."""
    report = DemoReport()
    name = sandbox_name(name)
    os.environ[NAME_ENV] = name

    began = time.monotonic()
    state = manager.up(manager.UpRequest(), name=name, progress=say)
    source, target = state.engines["source"], state.engines["target"]
    report.source_url, report.target_url = source.url, target.url
    report.phases["sandbox"] = round(time.monotonic() - began, 1)

    began = time.monotonic()
    datasets = load_demo_data(source.url, scale, say)
    report.indices = [d.index for d in datasets]
    report.phases["load"] = round(time.monotonic() - began, 1)
    _clear_target(target.url, report.indices)

    home = dagster_home()
    report.dagster_home = str(home)
    config = sandbox_workflow(state, repository=REPOSITORY, create="demo-{timestamp}",
                              indices=report.indices, skip_approvals=not interactive)
    save_active(config)
    say(f"workflow config: {home / 'migration' / 'workflow.yaml'}")
    started = time.time()
    began = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        workflow = LocalWorkflow(instance, say)
        workflow.reset()
        if interactive:
            _interactive(report, home, say)
        else:
            try:
                workflow.submit(new_snapshot=True)
            except WorkflowError as exc:
                say(f"workflow stopped: {exc}")
        report.phases["workflow"] = round(time.monotonic() - began, 1)
        report.phases.update(_phase_times(instance, started))
        status = workflow.status()
        report.status = status.to_dict()
        snapshot = workflow.facts().assets["source_snapshot"].metadata
        report.snapshot = str(snapshot.get("snapshot", ""))
        report.shards = int(snapshot.get("shards") or 0)
        report.backfill_docs = status.documents
        counts = workflow.facts().assets["backfill_parity"].metadata.get("counts") or {}
    report.source_counts = {i: c["source"] for i, c in counts.items()}
    report.target_counts = {i: c["target"] for i, c in counts.items()}
    seconds = report.phases.get("shard_backfill")
    report.backfill_docs_per_s = round(report.backfill_docs / seconds) if seconds else 0.0
    return report


def _interactive(report: DemoReport, home: Path, say: Callable[[str], None]) -> None:
    """Start ``dagster dev``, submit through it and wait while a person approves the gates."""
    from migration_pipeline.workflow import devserver
    from migration_pipeline.workflow.remote import RemoteWorkflow

    server = devserver.start(home)
    report.dagster_url = server.url
    say(f"Dagster UI: {server.url} (stop it with: kill -TERM -{server.pid})")
    remote = RemoteWorkflow(server.url, say)
    remote.submit(new_snapshot=True)
    say("approve each gate in the UI (asset → Materialize, fill approved_by) or with: "
        f".venv/bin/workflow approve GATE --by NAME --dagster-url {server.url}")
    while True:
        status = remote.status()
        if (status.finished and not status.running) or status.rejected_gates \
                or any(p.state == "failed" for p in status.phases):
            return
        time.sleep(3)
