"""Registering a real snapshot against the real target, and cleaning the workflow's state up afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.rfs.helpers import build_snapshot, options
from workers.common.errors import MigrationError
from workers.lifecycle.cleanup import ShardsRunningError, clean_up
from workers.lifecycle.register import register
from workers.rfs.coordination import WorkCoordinator
from workers.rfs.status import read_status
from workers.rfs.worker import run_shard
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.repository import SnapshotRepository


def test_register_sizes_the_snapshot_and_clean_up_removes_only_its_records(sandbox: SandboxState,
                                                                          tmp_path: Path) -> None:
    source, target_url = sandbox.engines["source"], sandbox.engines["target"].url
    snap = build_snapshot(source.url, source.repo_path, docs=120, shards=2)
    target = OpenSearch(hosts=[target_url], timeout=60)
    target.indices.create(index=snap.index, body={"settings": {"number_of_shards": 2, "number_of_replicas": 0}})
    coordination = unique(".mws")
    repo = SnapshotRepository(open_blob_store(snap.repo_uri))

    registration = register(repo, snap.snapshot, {snap.index: 2}, {snap.index: [snap.index]}, target, coordination,
                            repository=snap.repo_uri, source_counts={snap.index: 120})
    assert registration.snapshot_uuid == repo.snapshot(snap.snapshot).uuid
    [scope] = registration.indices
    files = [f for shard in (0, 1) for f in repo.shard_snapshot(snap.snapshot, snap.index, shard).files]
    assert scope.snapshot_bytes == sum(f.length for f in files) > 0
    assert registration.estimated_bytes == scope.snapshot_bytes  # no replica on the target
    assert registration.capacity is not None and registration.fits is True
    assert "2 shards, 120 source documents" in registration.summary()
    record = target.get(index=coordination, id=f"registration:{registration.snapshot_uuid}")["_source"]
    assert record["registration"]["estimated_bytes"] == registration.estimated_bytes
    # The registration is not a shard: the backfill's status does not list it.
    assert read_status(target, coordination).shards == []

    opts = options(target_url, tmp_path, coordination_index=coordination)
    for shard in (0, 1):
        run_shard(open_blob_store(snap.repo_uri), snap.snapshot, snap.index, shard, opts)
    # Another snapshot's record in the same index stays, and so does the index.
    other = WorkCoordinator(target, coordination, "other-worker", 600, "other-snapshot", snap.index, 0)
    other.acquire()
    with pytest.raises(ShardsRunningError, match=r"other-snapshot/.*\(worker other-worker\)"):
        clean_up(target, coordination, "other-snapshot")
    report = clean_up(target, coordination, snap.snapshot)
    assert (report.records_removed, report.index_removed) == (3, False)
    assert [s.snapshot for s in read_status(target, coordination).shards] == ["other-snapshot"]
    target.indices.refresh(index=snap.index)
    assert target.count(index=snap.index)["count"] == 120  # the migrated data stays
    other.release()
    report = clean_up(target, coordination, "other-snapshot")
    assert (report.records_removed, report.index_removed) == (1, True)
    assert not target.indices.exists(index=coordination)


def test_register_names_an_unreadable_shard(sandbox: SandboxState, tmp_path: Path) -> None:
    source, target_url = sandbox.engines["source"], sandbox.engines["target"].url
    snap = build_snapshot(source.url, source.repo_path, docs=20, shards=1)
    repo = SnapshotRepository(open_blob_store(snap.repo_uri))
    shard_dir = Path(snap.repo_uri.removeprefix("file://")) / repo.shard_snapshot(snap.snapshot, snap.index, 0).path
    for blob in shard_dir.glob("snap-*.dat"):
        blob.unlink()
    with pytest.raises(MigrationError, match=rf"shard {snap.index}:0 cannot be read"):
        register(repo, snap.snapshot, {snap.index: 1}, {}, OpenSearch(hosts=[target_url]), unique(".mws"),
                 repository=snap.repo_uri)
