"""Failure paths of the workflow: a killed shard worker, a stale approval, bad configs, an S3 repository."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError

from migration_pipeline.sandbox import s3 as sandbox_s3
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.migration_pipeline.workflow.faults import KILL_AT_ENV, MARKER_ENV
from tests.migration_pipeline.workflow.helpers import build_migration, edit_config, target_rows
from workers.common.errors import ConfigurationError
from workers.snapshot.blobstore import s3_client, upload_directory
from workflow_model.store import parse


def _shard_runs(home: Path) -> dict[str, int]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.fetch_materializations(dg.AssetKey("shard_backfill"), limit=1000).records
    counts: dict[str, int] = {}
    for r in records:
        key = r.partition_key or ""
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_killed_shard_worker_then_submit_runs_only_the_missing_shard(sandbox: SandboxState, tmp_path: Path) -> None:
    marker = tmp_path / "kill-marker"
    marker.write_text("")
    m = build_migration(sandbox, tmp_path, docs=400, skip_approvals=True,
                        backfill={"transform": "tests.migration_pipeline.workflow.faults:kill_once",
                                  "lease_seconds": 5, "retries": 0})
    m.env[MARKER_ENV] = str(marker)
    first = m.run("submit")
    assert first.returncode == 1, first.stdout + first.stderr
    status = m.status()
    assert len(status["failed_shards"]) == 1 and status["shards"]["done"] == 2, status
    [killed] = status["failed_shards"]
    assert "failed with code -9" in status["shard_errors"][killed], status["shard_errors"]  # its last error
    assert f"{killed}: " in m.run("status").stdout
    assert not marker.exists()
    done_before = _shard_runs(m.home)
    assert killed not in done_before and len(done_before) == 2

    second = m.run("submit")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 shard(s) left to run" in second.stderr
    assert _shard_runs(m.home) == {**done_before, killed: 1}  # only the killed shard ran again
    status = m.status()
    assert status["shards"]["done"] == 3 and status["parity"]["mismatched"] == []
    for index in m.counts:
        assert target_rows(m.target, index) == target_rows(m.source, index)


def test_shard_killed_twice_completes_on_its_own_from_its_checkpoint(sandbox: SandboxState, tmp_path: Path) -> None:
    marker = tmp_path / "kill-marker"
    marker.write_text("2")
    # One shard (the orders index, 700 documents over several Lucene chunks, which are read whole), batches of 10
    # acknowledged one at a time: a kill at a worker's 300th document leaves a checkpoint behind it.
    m = build_migration(sandbox, tmp_path, docs=2100, skip_approvals=True,
                        backfill={"transform": "tests.migration_pipeline.workflow.faults:kill_once",
                                  "index_allowlist": ["regex:.*-orders"], "documents_per_bulk_request": 10,
                                  "max_connections": 1, "adaptive_concurrency": False, "retry_delay_s": 0.2})
    m.env[MARKER_ENV] = str(marker)
    m.env[KILL_AT_ENV] = "300"
    submitted = m.run("submit")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert not marker.exists()  # both kills happened
    status = m.status()
    assert status["finished"] and status["failed_shards"] == [] and status["parity"]["mismatched"] == []
    [key] = [k for k in _shard_runs(m.home)]
    with dg.DagsterInstance.from_config(str(m.home)) as instance:
        [record] = instance.fetch_materializations(dg.AssetKey("shard_backfill"), limit=10).records
        assert record.run_id and record.asset_materialization is not None
        retries = instance.all_logs(record.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
        resumed = record.asset_materialization.metadata["resumed_from"].value
    assert len(retries) == 2, [e.message for e in retries]  # one run: the shard was retried twice in it
    assert resumed, "the last attempt started over instead of resuming from the checkpoint"
    index = key.split(":")[0]
    assert target_rows(m.target, index) == target_rows(m.source, index)


def test_stale_approval_is_refused(sandbox: SandboxState, tmp_path: Path) -> None:
    m = build_migration(sandbox, tmp_path, docs=30)
    m.run("submit", check=True)
    # Approve, then evaluate again behind the approval's back: the approval is now for an older evaluation.
    with dg.DagsterInstance.from_config(str(m.home)) as instance:
        from migration_pipeline.definitions import defs
        from sensors.gates import approval_run_config

        quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
        approve = defs.resolve_job_def("approve_metadata").execute_in_process(
            instance=instance, run_config={**quiet, **approval_run_config("metadata_approval", "dave")})
        assert approve.success
        defs_env = {"DAGSTER_HOME": str(m.home), "MIGRATION_WORKFLOW_CONFIG": str(m.home / "migration/workflow.yaml")}
        with pytest.MonkeyPatch.context() as mp:
            for k, v in defs_env.items():
                mp.setenv(k, v)
            assert defs.resolve_job_def("prepare_migration").execute_in_process(
                instance=instance, run_config=quiet).success
            migrate = defs.resolve_job_def("migrate_metadata").execute_in_process(
                instance=instance, run_config=quiet, raise_on_error=False)
    assert not migrate.success
    failure = next(e for e in migrate.all_events if e.is_step_failure)
    assert failure.step_failure_data is not None and failure.step_failure_data.error is not None
    assert "stale approval: metadata_approval approved metadata_evaluation" in failure.step_failure_data.error.message
    assert m.states()["metadata_approval"] == "waiting for approval"


def test_config_errors_name_the_key(sandbox: SandboxState, tmp_path: Path) -> None:
    m = build_migration(sandbox, tmp_path, docs=3)
    bad = tmp_path / "bad.yaml"
    bad.write_text(edit_config(m.config, backfill={"max_conections": 4}, target={"tls": {"verfy": False}}))
    loaded = m.run("configure", "--load", str(bad))
    assert loaded.returncode == 2  # a configuration error is a usage error
    assert "backfill.max_conections: unknown key" in loaded.stderr
    assert "target.tls.verfy: unknown key" in loaded.stderr
    with pytest.raises(ConfigurationError, match=r"snapshot: Value error, set exactly one of 'create'"):
        parse(edit_config(m.config, snapshot={"existing": "x"}), "both.yaml")
    variable = unique("PW").upper().replace("-", "_")
    secret = tmp_path / "secret.yaml"
    secret.write_text(edit_config(m.config, source={"auth": {"kind": "basic", "username": "mig",
                                                             "password_env": variable}}))
    m.run("configure", "--load", str(secret), check=True)
    submitted = m.run("submit")
    assert submitted.returncode == 2
    assert f"source.auth.password_env: environment variable {variable} is not set" in submitted.stderr
    view = m.run("configure", "view", check=True)
    assert variable in view.stdout and "is not set" in view.stderr
    sample = m.run("configure", "sample", check=True).stdout
    parse(sample, "sample")  # the documented sample is itself valid


@pytest.mark.usefixtures("aws_env")
def test_snapshot_read_from_s3(sandbox: SandboxState, tmp_path: Path) -> None:
    """A filesystem snapshot uploaded to the sandbox's S3 (its ES source has no S3 plugin), used as existing."""
    assert sandbox.s3 is not None
    m = build_migration(sandbox, tmp_path, docs=200, skip_approvals=True)
    taken = m.run("submit")  # takes the snapshot on the filesystem (and migrates it; the S3 run overwrites)
    assert taken.returncode == 0, taken.stderr
    fs_status = m.status()
    snapshot = next(p["detail"] for p in fs_status["phases"] if p["name"] == "source_snapshot").split()[0]
    bucket = unique("snap")
    client = s3_client(endpoint=sandbox.s3.endpoint, region=sandbox_s3.REGION)
    client.create_bucket(Bucket=bucket)
    repo_dir = Path(sandbox.engines["source"].repo_path) / m.prefix
    assert upload_directory(repo_dir, client, bucket, "repo") > 0
    s3_config = tmp_path / "s3.yaml"
    s3_config.write_text(edit_config(
        m.config, snapshot={"existing": snapshot, "create": None,
                            "repository": {"name": m.prefix, "location": f"s3://{bucket}/repo",
                                           "s3": {"endpoint": sandbox.s3.endpoint, "region": sandbox_s3.REGION}}},
        backfill={"coordination_index": f".mws-{m.prefix}-s3"}))
    m.run("configure", "--load", str(s3_config), check=True)
    m.run("reset", "--yes", check=True)
    ran = m.run("submit")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    status = m.status()
    assert status["shards"] == {"done": 3, "failed": 0, "running": 0, "pending": 0}
    assert status["parity"]["mismatched"] == []
    with dg.DagsterInstance.from_config(str(m.home)) as instance:
        record = instance.fetch_materializations(dg.AssetKey("source_snapshot"), limit=1).records[0]
        assert record.asset_materialization is not None
        assert record.asset_materialization.metadata["repository"].value == f"{m.prefix} at s3://{bucket}/repo"
    for index in m.counts:
        assert target_rows(m.target, index) == target_rows(m.source, index)


def _shard_outcomes(home: Path) -> dict[str, str]:
    """Partition → the status of its newest shard_backfill materialization."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.fetch_materializations(dg.AssetKey("shard_backfill"), limit=1000).records
    outcomes: dict[str, str] = {}
    for r in records:  # newest first
        if r.partition_key and r.partition_key not in outcomes and r.asset_materialization is not None:
            outcomes[r.partition_key] = str(r.asset_materialization.metadata["status"].value)
    return outcomes


def test_reset_removes_what_the_cleanup_removes(sandbox: SandboxState, tmp_path: Path) -> None:
    m = build_migration(sandbox, tmp_path, docs=60, approvals={
        "skip": ["metadata_approval", "migrated_metadata_approval", "backfill_approval"]})
    m.run("submit", check=True)
    status = m.status()
    assert status["pending_gates"] == ["validation_approval"] and status["shards"]["done"] == 3
    target, source = OpenSearch(hosts=[m.target]), OpenSearch(hosts=[m.source])
    coordination = f".mws-{m.prefix}"
    records = target.count(index=coordination, params={"expand_wildcards": "all"})["count"]
    assert records == 4  # three shards and the snapshot's registration
    source.snapshot.get_repository(repository=m.prefix)  # registered by the workflow
    snapshot = next(p["detail"] for p in status["phases"] if p["name"] == "source_snapshot").split()[0]

    reset = m.run("reset", "--yes", check=True)
    assert "4 coordination record(s) removed" in reset.stdout and "deregistered" in reset.stdout, reset.stdout
    assert not target.indices.exists(index=coordination)
    with pytest.raises(NotFoundError):
        source.snapshot.get_repository(repository=m.prefix)
    # The same snapshot again: no completion record is left to skip a shard; each is written again.
    same = tmp_path / "same.yaml"
    same.write_text(edit_config(m.config, snapshot={"existing": snapshot, "create": None},
                                approvals={"skip_all": True}))
    m.run("configure", "--load", str(same), check=True)
    m.run("submit", check=True)
    assert set(_shard_outcomes(m.home).values()) == {"completed"}
    assert m.status()["finished"]
