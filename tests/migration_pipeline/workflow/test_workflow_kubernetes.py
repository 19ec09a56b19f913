"""Shard workers as pods on the sandbox's real Kubernetes control plane (its node runs pods' commands as local
processes): a pod deleted under a run is retried in a new pod that resumes from the checkpoint; a pod the scheduler
cannot place fails its run with the scheduler's reason instead of waiting."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg
import kubernetes

from migration_pipeline.sandbox.kubernetes import launcher
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.migration_pipeline.workflow.helpers import build_migration, target_rows
from workers.common.clusters import ClusterConnection, build_client


def _pods_section(state: SandboxState, **kube: Any) -> tuple[dict[str, Any], str]:
    assert state.kubernetes is not None
    namespace = unique("mig")
    kubeconfig = launcher.prepare(state.kubernetes, namespace)
    return {"worker_mode": "kubernetes", "kubernetes": {
        "kubeconfig": str(kubeconfig), "namespace": namespace, "cpu": "250m", "memory": "512Mi",
        "service_account": launcher.WORKER_ACCOUNT, **kube}}, namespace


def _admin(state: SandboxState) -> Any:
    assert state.kubernetes is not None
    return kubernetes.client.CoreV1Api(launcher.admin_api(state.kubernetes))


def _step_events(home: Path, kind: dg.DagsterEventType | None = None) -> list[str]:
    """The messages of the runs' events of ``kind`` (None: every log line, events or not)."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        messages = []
        for record in instance.get_run_records():
            messages += [e.user_message or "" for e in instance.all_logs(record.dagster_run.run_id, of_type=kind)]
    return messages


def test_shard_pod_deleted_mid_run_is_retried_in_a_new_pod_from_its_checkpoint(
        kube_sandbox: SandboxState, tmp_path: Path) -> None:
    section, namespace = _pods_section(kube_sandbox)
    m = build_migration(kube_sandbox, tmp_path, docs=2100, skip_approvals=True, backfill={
        **section, "transform": "tests.migration_pipeline.workflow.faults:slow_down",
        "index_allowlist": ["regex:.*-orders"], "documents_per_bulk_request": 10, "max_connections": 1,
        "adaptive_concurrency": False, "retry_delay_s": 0.2})
    api = _admin(kube_sandbox)
    target = build_client(ClusterConnection(endpoint=m.target))
    index = next(i for i in m.counts if i.endswith("-orders"))
    deleted: list[str] = []

    def delete_first_pod_after_a_checkpoint() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            pods = api.list_namespaced_pod(namespace).items
            running = [p for p in pods if p.status.phase == "Running"]
            written = 0
            if running and target.indices.exists(index=index):
                target.indices.refresh(index=index)
                written = int(target.count(index=index)["count"])
            # Batches of 10, one in flight: with 100 acknowledged, the checkpoint is well past the start.
            if running and written >= 100:
                api.delete_namespaced_pod(running[0].metadata.name, namespace)  # a graceful delete, as kubectl's
                deleted.append(running[0].metadata.name)
                return
            time.sleep(0.3)

    killer = threading.Thread(target=delete_first_pod_after_a_checkpoint, daemon=True)
    killer.start()
    submitted = m.run("submit", timeout=600)
    killer.join(timeout=5)
    assert deleted, "no shard pod was seen running with a checkpoint behind it"
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    retries = _step_events(m.home, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert len(retries) == 1, retries
    why = [line for line in _step_events(m.home) if "attempt 1 of" in line]
    assert why and f"{deleted[0]} was deleted while its worker ran" in why[0], why
    with dg.DagsterInstance.from_config(str(m.home)) as instance:
        [record] = instance.fetch_materializations(dg.AssetKey("shard_backfill"), limit=10).records
        assert record.asset_materialization is not None
        meta = record.asset_materialization.metadata
    assert meta["resumed_from"].value, "the new pod started over instead of resuming from the checkpoint"
    pod = str(meta["pod"].value)
    assert pod.startswith(f"{namespace}/") and pod != f"{namespace}/{deleted[0]}"
    assert meta["node"].value == kube_sandbox.kubernetes.node_name  # type: ignore[union-attr]
    status = m.status()
    assert status["finished"] and status["parity"]["mismatched"] == []
    assert target_rows(m.target, index) == target_rows(m.source, index)
    assert api.list_namespaced_pod(namespace).items == []  # every pod deleted once its run ended


def test_unschedulable_shard_pod_fails_with_the_schedulers_reason(kube_sandbox: SandboxState,
                                                                  tmp_path: Path) -> None:
    section, namespace = _pods_section(kube_sandbox, cpu="64", unschedulable_timeout_s=3)
    m = build_migration(kube_sandbox, tmp_path, docs=30, skip_approvals=True,
                        backfill={**section, "index_allowlist": ["regex:.*-orders"]})
    started = time.monotonic()
    submitted = m.run("submit", timeout=300)
    assert submitted.returncode == 1, submitted.stdout + submitted.stderr
    assert time.monotonic() - started < 120  # not PipesK8sClient's day-long wait
    status = m.status()
    [failed] = status["failed_shards"]
    error = status["shard_errors"][failed]
    assert "could not be scheduled for 3 s" in error and "Insufficient cpu" in error, error
    assert _step_events(m.home, dg.DagsterEventType.STEP_UP_FOR_RETRY) == []  # no point in another attempt
    assert _admin(kube_sandbox).list_namespaced_pod(namespace).items == []


def test_demo_runs_every_shard_as_a_pod_to_parity(kube_sandbox: SandboxState, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run([str(Path(sys.executable).parent / "migration"), "demo", "--kubernetes", "--scale", "0.02",
                           "--json", "--name", kube_sandbox.name], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["parity"] is True and report["backfill_docs"] == 4000
    pods = report["pods"]
    assert sorted(p["partition"] for p in pods) == sorted(
        f"{index}:{shard}" for index, shards in (("logs-2024.01", 3), ("logs-2024.02", 2), ("products", 2),
                                                 ("orders", 2)) for shard in range(shards))
    assert len({p["pod"] for p in pods}) == 9 and all(p["pod"].startswith("migration/") for p in pods)
    assert {p["node"] for p in pods} == {kube_sandbox.kubernetes.node_name}  # type: ignore[union-attr]
    assert _admin(kube_sandbox).list_namespaced_pod("migration").items == []
    # The pods' log lines (their `kubectl logs`) went to the shard log files, not into the JSON on stdout.
    assert "orders[1]: done:" in (tmp_path / "migration" / "logs" / "shards" / "orders-1.log").read_text()
