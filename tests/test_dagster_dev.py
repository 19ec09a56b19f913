"""A real, headless ``dagster dev`` on a free loopback port: server info, GraphQL, clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox import loader
from migration_pipeline.sandbox.processes import free_port
from migration_pipeline.sandbox.state import SandboxState
from migration_pipeline.sandbox.workflow_file import sandbox_workflow
from tests.conftest import unique
from tests.workers.validate.helpers import migrate_snapshot
from workers.snapshot.create import create_snapshot, register_fs_repository
from workflow_model.validation import scope_dict

REPO = Path(__file__).resolve().parent.parent

ASSETS_QUERY = """
query { assetNodes { assetKey { path } groupName isObservable } }
"""


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read()


def _graphql(base: str, query: str) -> dict:
    req = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_dagster_dev_serves_assets(tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path))
    dagster = Path(sys.executable).parent / "dagster"
    log = open(tmp_path / "dev.log", "wb")  # noqa: SIM115 - closed in the finally below, after the stop
    proc = subprocess.Popen([str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        info = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                info = json.loads(_get(f"{base}/server_info"))
                break
            except OSError:
                time.sleep(0.5)
        assert info is not None, (tmp_path / "dev.log").read_text()[-3000:]
        assert "dagster_webserver_version" in info
        nodes: list[dict] = []
        while time.monotonic() < deadline:  # the code server may still be loading
            data = _graphql(base, ASSETS_QUERY)
            nodes = data.get("data", {}).get("assetNodes") or []
            if nodes:
                break
            time.sleep(1)
        by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        assert {"source_cluster", "target_cluster"} <= by_key.keys()
        assert by_key["source_cluster"]["groupName"] == "migration"
        assert by_key["source_cluster"]["isObservable"] is True
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    assert proc.returncode is not None
    # Nothing of the process group is left running once its children have wound down. A zombie
    # (exited, not yet reaped by the init process it was orphaned to) is dead and does not count.
    leftovers = _live_members(proc.pid)
    deadline = time.monotonic() + 60
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.5)
        leftovers = _live_members(proc.pid)
    if leftovers:
        os.killpg(proc.pid, signal.SIGKILL)  # leave nothing behind for the tests that follow
    assert leftovers == [], "\n".join(leftovers)


def _live_members(pgid: int) -> list[str]:
    """``pid stat etime args`` of the group's processes that have not exited."""
    listing = subprocess.run(["ps", "-e", "-o", "pgid=,pid=,stat=,etime=,args="], capture_output=True, text=True).stdout
    members = []
    for line in listing.splitlines():
        fields = line.split(None, 4)
        if len(fields) >= 4 and fields[0] == str(pgid) and not fields[2].startswith("Z"):
            members.append(" ".join(fields[1:]))
    return members


@pytest.mark.slow  # waits for a cron minute: about two minutes
def test_the_validation_schedule_fires_under_the_daemon_and_records_check_evaluations(
        sandbox: SandboxState, tmp_path: Path) -> None:
    """A report exists (its scope recorded), the workflow file turns the schedule on every minute: the daemon runs the
    checks alone, and each of the four is recorded as an asset check evaluation of ``validation_report``."""
    source, target = sandbox.engines["source"], sandbox.engines["target"]
    index = unique("sched")
    loader.load(source.url, index, 200, profile_name="logs", shards=1, seed=9)
    client = OpenSearch(hosts=[source.url], timeout=120)
    client.indices.refresh(index=index)
    location = Path(source.repo_path) / unique("srepo")
    register_fs_repository(client, "r-" + index, str(location))
    create_snapshot(client, "r-" + index, "snap", indices=index)
    migration = migrate_snapshot(location.as_uri(), "snap", target.url, tmp_path, indices=[index])
    home = tmp_path / "home"
    (home / "migration").mkdir(parents=True)
    (home / "migration" / "workflow.yaml").write_text(sandbox_workflow(
        sandbox, existing="snap", location=str(location),
        metadata={"index_allowlist": [index], "index_template_allowlist": ["none"],
                  "component_template_allowlist": ["none"]},
        backfill={"coordination_index": migration.backfill.coordination_index},
        validation={"schedule": {"cron": "* * * * *", "enabled": True}}))
    key = dg.AssetKey("validation_report")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=key, metadata={"scope": dg.MetadataValue.json(scope_dict(migration.scope))}))
    port = free_port()
    env = dict(os.environ, DAGSTER_HOME=str(home))
    env.pop("MIGRATION_WORKFLOW_CONFIG", None)
    dagster = Path(sys.executable).parent / "dagster"
    log = open(tmp_path / "dev.log", "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen([str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        records: dict[str, Any] = {}
        with dg.DagsterInstance.from_config(str(home)) as instance:
            while time.monotonic() < deadline and len(records) < 4 and proc.poll() is None:
                time.sleep(5)
                for name in ("counts", "fingerprints", "metadata", "queries"):
                    record = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(key, name))
                    if record is not None and record.status.value in ("SUCCEEDED", "FAILED"):
                        records[name] = record
            assert len(records) == 4, (tmp_path / "dev.log").read_text()[-3000:]
            assert {name: r.status.value for name, r in records.items()} == dict.fromkeys(records, "SUCCEEDED")
            runs = instance.get_run_records(dg.RunsFilter(job_name="validation_checks_job"))
            assert runs and runs[0].dagster_run.tags.get("dagster/schedule_name") == "validation_checks"
            evaluation = records["fingerprints"].event.dagster_event.event_specific_data
            assert evaluation.metadata["mode"].value == "sample"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
