"""Failure paths of the workflow: a killed shard worker, a stale approval, bad configs, an S3 repository."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from migration_pipeline.sandbox import s3 as sandbox_s3
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.migration_pipeline.workflow.faults import MARKER_ENV
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
                                  "lease_seconds": 5})
    m.env[MARKER_ENV] = str(marker)
    first = m.run("submit")
    assert first.returncode == 1, first.stdout + first.stderr
    status = m.status()
    assert len(status["failed_shards"]) == 1 and status["shards"]["done"] == 2, status
    [killed] = status["failed_shards"]
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
