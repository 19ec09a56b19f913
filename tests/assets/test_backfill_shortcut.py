"""``shard_backfill`` skips a partition without starting a worker only when the worker's own rule agrees: done before
from the same snapshot (UUID, not name) into the target index that is there now."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
import pytest
from opensearchpy import OpenSearch

import assets.backfill
from assets.backfill import shard_backfill
from assets.partitions import SHARDS
from migration_pipeline.sandbox.state import SandboxState
from migration_pipeline.sandbox.workflow_file import sandbox_workflow
from resources.shard_worker import ShardWorkerResource, worker_request
from resources.workflow import WorkflowResource
from tests.conftest import unique
from tests.workers.rfs.helpers import named_snapshot
from workers.rfs.worker import run_shard
from workers.snapshot.blobstore import open_blob_store

SNAPSHOT = "rfs_snapshot"


class RecordingWorker(ShardWorkerResource):
    """Records the shards it was asked to run instead of starting a worker."""

    calls: ClassVar[list[str]] = []

    def run(self, context: Any, config: Any, request: Any) -> dg.MaterializeResult:
        RecordingWorker.calls.append(f"{request.index}:{request.shard}")
        return dg.MaterializeResult(metadata={"status": "completed"})


def test_the_asset_skips_only_what_the_worker_would_skip(sandbox: SandboxState, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    source, target = sandbox.engines["source"], sandbox.engines["target"]
    index = unique("shortcut")
    snap = named_snapshot(source.url, source.repo_path, index, SNAPSHOT, "es", 3)
    path = tmp_path / "workflow.yaml"
    path.write_text(sandbox_workflow(sandbox, existing=SNAPSHOT, location=snap.repo_uri.removeprefix("file://"),
                                     backfill={"coordination_index": unique(".mws"),
                                               "dead_letter": str(tmp_path / "dead")}))
    workflow = WorkflowResource(config_path=str(path))
    key = f"{index}:0"
    value: dict[str, Any] = {"snapshot": SNAPSHOT, "snapshot_uuid": snap.uuid, "uri": snap.repo_uri,
                             "shard_keys": [key], "indices": {index: 1}}
    request = worker_request(workflow.load(), value, workflow.dead_letter_dir(), index, 0)
    client = OpenSearch(hosts=[target.url], timeout=60)
    monkeypatch.setattr(assets.backfill, "require_approval", lambda *_: {})
    RecordingWorker.calls.clear()
    try:
        # The worker really ran once, and the asset recorded it done from this snapshot.
        assert run_shard(open_blob_store(snap.repo_uri), SNAPSHOT, index, 0, request.options).status == "completed"
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions(str(SHARDS.name), [key])
            instance.report_runless_asset_event(dg.AssetMaterialization(
                asset_key=shard_backfill.key, partition=key,
                metadata={"status": "completed", "snapshot": SNAPSHOT, "snapshot_uuid": snap.uuid, "documents": 3}))

            def materialize(snapshot_value: dict[str, Any]) -> dict[str, Any]:
                context = dg.build_asset_context(partition_key=key, instance=instance)
                result = shard_backfill(context, source_snapshot=snapshot_value, workflow=workflow,
                                        shard_worker=RecordingWorker())
                assert isinstance(result, dg.MaterializeResult)
                return {k: getattr(v, "value", v) for k, v in (result.metadata or {}).items()}

            # Same snapshot, same target index: skipped, no worker started.
            done = materialize(value)
            assert done["status"] == "already-completed" and done["documents"] == 3
            assert RecordingWorker.calls == []

            # Another snapshot of the same name (another UUID): the worker decides, it is not skipped.
            materialize({**value, "snapshot_uuid": "another-snapshot-uuid"})
            assert RecordingWorker.calls == [key]

            # The target index deleted and recreated since: not skipped either, and why is logged.
            client.indices.delete(index=index)
            client.indices.create(index=index)
            capfd.readouterr()
            materialize(value)
            assert RecordingWorker.calls == [key, key]
            # (context.log goes to Dagster's console logger, on stderr)
            assert "backfilled before, but target index recreated since completion" in capfd.readouterr().err
    finally:
        client.indices.delete(index=index, params={"ignore_unavailable": "true"})
