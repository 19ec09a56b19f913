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
from rich.console import Console

from migration_pipeline.demo_data import load_demo_data
from migration_pipeline.demo_view import DemoView
from migration_pipeline.sandbox import manager
from migration_pipeline.sandbox.paths import NAME_ENV, sandbox_name
from migration_pipeline.sandbox.state import SandboxState
from migration_pipeline.sandbox.workflow_file import sandbox_workflow
from migration_pipeline.workflow.instance import open_local_instance
from migration_pipeline.workflow.local import LocalWorkflow, WorkflowError
from migration_pipeline.workflow.logs import logs_dir, shard_logs_dir
from workers.common.clusters import ClusterConnection, build_client
from workers.rfs.status import read_status
from workflow_model import WorkflowConfig, save_active
from workflow_model.home import use_dagster_home
from workflow_model.steps import PHASES, Step, is_gate
from workflow_model.store import parse

REPOSITORY = "migration_demo"
DEMO_NAMESPACE = "migration"
# The phases whose wall time the report shows (the gates are a person's, or the config's, decision).
STEPS: tuple[str, ...] = tuple(step.value for step in PHASES if not is_gate(step))


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
    backfill_worker_seconds: float = 0.0
    log_file: str = ""
    worker_logs: str = ""
    status: dict[str, Any] = field(default_factory=dict)
    # With ``kubernetes``: the pod each shard ran in (partition, pod, node), from the shards' materializations.
    pods: list[dict[str, str]] = field(default_factory=list)

    @property
    def parity(self) -> bool:
        """True when every migrated index has as many documents on the target as on the source."""
        return bool(self.indices) and all(self.source_counts.get(i) is not None
                                          and self.source_counts.get(i) == self.target_counts.get(i)
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
    client = build_client(ClusterConnection(endpoint=url))
    for name in [*indices, ".migrations_working_state"]:
        if client.indices.exists(index=name):
            client.indices.delete(index=name)


def _written_counter(config: WorkflowConfig) -> Callable[[str], int]:
    """Documents the shard workers recorded so far for a snapshot (their checkpoints in the coordination index)."""
    client = build_client(config.target.connection())
    index = config.backfill.coordination_index
    return lambda snapshot: read_status(client, index, snapshot).totals()["docs_written"]


def run(scale: float = 1.0, name: str | None = None, interactive: bool = False,
        view: DemoView | None = None, kubernetes: bool = False) -> DemoReport:
    """Start the default sandbox, load the demo data and run the workflow in Dagster to the parity check; with
    ``kubernetes``, on the sandbox's Kubernetes cluster too, every shard worker a pod."""
    report = DemoReport()
    name = sandbox_name(name)
    os.environ[NAME_ENV] = name
    home = use_dagster_home()  # before anything asks Dagster for its instance: a bare shell exports nothing
    report.dagster_home = str(home)
    logs = logs_dir()
    logs.mkdir(parents=True, exist_ok=True)
    report.log_file = str(logs / "demo.log")
    report.worker_logs = str(shard_logs_dir())
    with open(report.log_file, "a", encoding="utf-8") as log:
        view = view or DemoView(Console(stderr=True), log)
        view.log = log
        view.start_spinner()
        try:
            _run(report, name, scale, interactive, view, kubernetes)
        finally:
            view.stop_spinner()
    return report


def _kubernetes_section(state: SandboxState) -> dict[str, Any]:
    """Shard workers as pods on the sandbox's cluster, created with the launcher's own service account."""
    from migration_pipeline.sandbox.kubernetes import launcher

    assert state.kubernetes is not None
    kubeconfig = launcher.prepare(state.kubernetes, DEMO_NAMESPACE)
    # Sized for a 2-core machine shared with both clusters: requests the one node can grant to two pods at once.
    return {"worker_mode": "kubernetes", "kubernetes": {
        "kubeconfig": str(kubeconfig), "namespace": DEMO_NAMESPACE, "cpu": "500m", "memory": "1Gi",
        "service_account": launcher.WORKER_ACCOUNT}}


def _shard_pods(instance: dg.DagsterInstance, since: float) -> list[dict[str, str]]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(Step.SHARD_BACKFILL.value), after_timestamp=since),
        limit=1000).records
    pods = []
    for record in records:
        materialization = record.asset_materialization
        if materialization is None:
            continue
        meta = materialization.metadata
        if "pod" in meta:
            pods.append({"partition": str(materialization.partition), "pod": str(meta["pod"].value),
                         "node": str(meta["node"].value) if "node" in meta else ""})
    return sorted(pods, key=lambda p: p["partition"])


def _run(report: DemoReport, name: str, scale: float, interactive: bool, view: DemoView,
         kubernetes: bool = False) -> None:
    began = time.monotonic()
    state = manager.up(manager.UpRequest(kubernetes=kubernetes), name=name, progress=view.detail)
    source, target = state.engines["source"], state.engines["target"]
    report.source_url, report.target_url = source.url, target.url
    backfill = _kubernetes_section(state) if kubernetes else {}
    report.phases["sandbox"] = round(time.monotonic() - began, 1)
    view.phase("sandbox", report.phases["sandbox"], f"{source.engine} {source.version} → {target.engine} "
               f"{target.version} on 127.0.0.1" + (f", Kubernetes {state.kubernetes.version} (one node)"
                                                   if state.kubernetes and kubernetes else ""))

    began = time.monotonic()
    datasets = load_demo_data(source.url, scale, view.detail)
    report.indices = [d.index for d in datasets]
    report.phases["load"] = round(time.monotonic() - began, 1)
    view.phase("data", report.phases["load"], f"{sum(d.docs for d in datasets):,} documents in "
               f"{len(datasets)} indices on the source")
    _clear_target(target.url, report.indices)

    text = sandbox_workflow(state, repository=REPOSITORY, create="demo-{timestamp}",
                            indices=report.indices, skip_approvals=not interactive,
                            backfill=backfill)
    view.detail(f"workflow config: {save_active(text)}")
    view.written = _written_counter(parse(text, "the demo's workflow config"))
    started = time.time()
    began = time.monotonic()
    with open_local_instance() as instance:
        workflow = LocalWorkflow(instance, view.detail, observer=view, worker_logs_on_stderr=view.verbose)
        workflow.reset()
        if interactive:
            _interactive(report, Path(report.dagster_home), view.detail)
        else:
            try:
                workflow.submit(new_snapshot=True)
            except WorkflowError as exc:
                view.console.print(f"[red]workflow stopped:[/] {exc}", highlight=False)
        report.phases["workflow"] = round(time.monotonic() - began, 1)
        report.phases.update(_phase_times(instance, started))
        status = workflow.status()
        report.status = status.to_dict()
        facts = workflow.facts()
        snapshot = facts.assets[Step.SOURCE_SNAPSHOT].metadata
        report.snapshot = str(snapshot.get("snapshot", ""))
        report.shards = int(snapshot.get("shards") or 0)
        report.backfill_docs = status.documents
        counts = facts.assets[Step.BACKFILL_PARITY].metadata.get("counts") or {}
        if kubernetes:
            report.pods = _shard_pods(instance, started)
    report.source_counts = {i: c["source"] for i, c in counts.items()}
    report.target_counts = {i: c["target"] for i, c in counts.items()}
    if view.backfill_seconds:
        # Wall time of the shard runs as this process saw them: the run bookkeeping between shards is included.
        report.phases[Step.SHARD_BACKFILL.value] = round(view.backfill_seconds, 1)
        report.backfill_worker_seconds = round(view.worker_seconds, 1)
    seconds = report.phases.get(Step.SHARD_BACKFILL)
    report.backfill_docs_per_s = round(report.backfill_docs / seconds) if seconds else 0.0


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
