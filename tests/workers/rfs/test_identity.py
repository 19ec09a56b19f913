"""Backfill records keyed by identity, not names: a completion or a checkpoint counts only for the same snapshot
(its UUID) written into the same target indices (their UUIDs).

Two real snapshots share a name: one taken by the sandbox's source (Elasticsearch) and one by its target
(OpenSearch), into two filesystem repositories, of an index with the same name and different documents.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.rfs.helpers import NamedSnapshot, named_snapshot, options, target_rows
from workers.documents.reader import ShardPosition
from workers.rfs.coordination import (
    LEGACY_RECORD,
    ShardIdentity,
    TargetIndexRecreatedError,
    WorkCoordinator,
    stale_reason,
    target_index_uuids,
)
from workers.rfs.deadletter import open_dead_letters
from workers.rfs.status import read_status
from workers.rfs.worker import recorded_completion, run_shard
from workers.snapshot.blobstore import open_blob_store

SNAPSHOT = "rfs_snapshot"


@dataclass(frozen=True)
class Twins:
    """Two snapshots of the same name holding an index of the same name, with different documents."""

    index: str
    first: NamedSnapshot  # the source's (Elasticsearch)
    second: NamedSnapshot  # the target's (OpenSearch)


@pytest.fixture(scope="module")
def twins(sandbox: SandboxState) -> Iterator[Twins]:
    source, target = sandbox.engines["source"], sandbox.engines["target"]
    index = unique("twin")
    first = named_snapshot(source.url, source.repo_path, index, SNAPSHOT, "es", 3)
    # The target's own snapshot of its own index; the index is then removed, as if it were another cluster's.
    second = named_snapshot(target.url, target.repo_path, index, SNAPSHOT, "os", 5)
    OpenSearch(hosts=[target.url]).indices.delete(index=index)
    assert first.uuid != second.uuid
    yield Twins(index, first, second)


def _docs(url: str, index: str) -> dict[str, str]:
    return {doc_id: src for doc_id, (_, _, src) in target_rows(url, index).items()}


def _recreate(client: OpenSearch, index: str) -> None:
    """Delete the target index and create it again, empty (as the metadata migration would)."""
    client.indices.delete(index=index)
    client.indices.create(index=index, body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}})


def test_a_different_snapshot_with_the_same_name_is_backfilled(
        sandbox: SandboxState, twins: Twins, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = sandbox.engines["target"].url
    client = OpenSearch(hosts=[target], timeout=60)
    opts = options(target, tmp_path)
    try:
        first = run_shard(open_blob_store(twins.first.repo_uri), SNAPSHOT, twins.index, 0, opts)
        assert (first.status, first.docs_written, first.snapshot_uuid) == ("completed", 3, twins.first.uuid)
        assert _docs(target, twins.index) == twins.first.docs
        _recreate(client, twins.index)

        with caplog.at_level(logging.WARNING, logger="workers.rfs"):
            second = run_shard(open_blob_store(twins.second.repo_uri), SNAPSHOT, twins.index, 0, opts)
        assert second.status == "completed", second
        assert second.docs_written == 5 and second.resumed_from is None
        assert second.restarted_because and "different snapshot with the same name" in second.restarted_because
        assert "different snapshot with the same name" in caplog.text
        assert _docs(target, twins.index) == twins.second.docs

        client.indices.refresh(index=opts.coordination_index)  # the status is read by a search
        [row] = read_status(client, opts.coordination_index, SNAPSHOT).shards
        assert row.snapshot_uuid == twins.second.uuid
        assert row.target_uuids == target_index_uuids(client, [twins.index])
        # Now it is done for the second snapshot, and only for it.
        again = run_shard(open_blob_store(twins.second.repo_uri), SNAPSHOT, twins.index, 0, opts)
        assert again.status == "already-completed" and again.docs_written == 5
    finally:
        client.indices.delete(index=twins.index, params={"ignore_unavailable": "true"})


def test_a_recreated_target_index_is_backfilled_again(sandbox: SandboxState, twins: Twins, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    target = sandbox.engines["target"].url
    client = OpenSearch(hosts=[target], timeout=60)
    opts = options(target, tmp_path)
    store = open_blob_store(twins.first.repo_uri)
    try:
        assert run_shard(store, SNAPSHOT, twins.index, 0, opts).status == "completed"
        done, reason = recorded_completion(store, SNAPSHOT, twins.index, 0, opts)
        assert done is not None and reason is None and done.status == "already-completed"
        _recreate(client, twins.index)
        done, reason = recorded_completion(store, SNAPSHOT, twins.index, 0, opts)
        assert done is None and reason and "target index recreated since completion" in reason

        with caplog.at_level(logging.WARNING, logger="workers.rfs"):
            again = run_shard(store, SNAPSHOT, twins.index, 0, opts)
        assert again.status == "completed" and again.docs_written == 3, again
        assert again.restarted_because and "target index recreated since completion" in again.restarted_because
        assert "target index recreated since completion" in caplog.text
        assert _docs(target, twins.index) == twins.first.docs

        # Deleted and not recreated: the same (the bulk requests create it again).
        client.indices.delete(index=twins.index)
        third = run_shard(store, SNAPSHOT, twins.index, 0, opts)
        assert third.status == "completed" and third.restarted_because
        assert "target index deleted since completion" in third.restarted_because
        assert _docs(target, twins.index) == twins.first.docs
    finally:
        client.indices.delete(index=twins.index, params={"ignore_unavailable": "true"})


def test_a_checkpoint_of_another_snapshot_is_not_resumed(sandbox: SandboxState, twins: Twins,
                                                         tmp_path: Path) -> None:
    target = sandbox.engines["target"].url
    client = OpenSearch(hosts=[target], timeout=60)
    opts = options(target, tmp_path)
    try:
        # A worker of the first snapshot stopped after the first documents of segment _0 (its lease released).
        other = WorkCoordinator(client, opts.coordination_index, "worker-a", 600, SNAPSHOT, twins.index, 0,
                                identity=ShardIdentity(twins.first.uuid, {twins.index: None}))
        other.ensure_index()
        other.acquire()
        other.checkpoint(ShardPosition("_0", 2), docs_written=2, bytes_written=100)
        other.release()

        result = run_shard(open_blob_store(twins.second.repo_uri), SNAPSHOT, twins.index, 0, opts)
        assert result.status == "completed" and result.resumed_from is None and result.docs_written == 5
        assert result.restarted_because and "different snapshot with the same name" in result.restarted_because
        assert _docs(target, twins.index) == twins.second.docs  # nothing skipped
    finally:
        client.indices.delete(index=twins.index, params={"ignore_unavailable": "true"})


def test_a_record_without_uuids_is_run_again(sandbox: SandboxState, twins: Twins, tmp_path: Path) -> None:
    target = sandbox.engines["target"].url
    client = OpenSearch(hosts=[target], timeout=60)
    opts = options(target, tmp_path)
    try:
        # A completion as the earlier version wrote it: names only.
        legacy = WorkCoordinator(client, opts.coordination_index, "old-worker", 600, SNAPSHOT, twins.index, 0)
        legacy.ensure_index()
        legacy.acquire()
        legacy.complete(3, 300, {})
        result = run_shard(open_blob_store(twins.first.repo_uri), SNAPSHOT, twins.index, 0, opts)
        assert result.status == "completed" and result.restarted_because == LEGACY_RECORD
        assert _docs(target, twins.index) == twins.first.docs
    finally:
        client.indices.delete(index=twins.index, params={"ignore_unavailable": "true"})


def test_an_index_recreated_during_the_run_is_not_completed(sandbox: SandboxState, twins: Twins,
                                                            tmp_path: Path) -> None:
    target = sandbox.engines["target"].url
    client = OpenSearch(hosts=[target], timeout=60)
    opts = options(target, tmp_path)
    try:
        client.indices.create(index=twins.index)
        identity = ShardIdentity(twins.first.uuid, target_index_uuids(client, [twins.index]))
        worker = WorkCoordinator(client, opts.coordination_index, "worker-a", 600, SNAPSHOT, twins.index, 0,
                                 identity=identity)
        worker.ensure_index()
        worker.acquire()
        worker.checkpoint(ShardPosition("_0", 3), docs_written=3, bytes_written=300)
        _recreate(client, twins.index)
        with pytest.raises(TargetIndexRecreatedError, match=r"was recreated .* while the shard was written"):
            worker.complete(3, 300, {})
        worker.release()  # as the worker does on any failure
        recorded = WorkCoordinator(client, opts.coordination_index, "probe", 600, SNAPSHOT, twins.index, 0).read()
        assert recorded is not None and recorded.status == "in_progress"
        # The next run starts from zero: the checkpoint was into the index that is gone.
        result = run_shard(open_blob_store(twins.first.repo_uri), SNAPSHOT, twins.index, 0, opts)
        assert result.resumed_from is None and result.restarted_because
        assert "target index recreated since the checkpoint" in result.restarted_because
        assert _docs(target, twins.index) == twins.first.docs
    finally:
        client.indices.delete(index=twins.index, params={"ignore_unavailable": "true"})


# Unit-level: the rule and the dead-letter location, no engine.

def test_stale_reason() -> None:
    now = ShardIdentity("snap-b", {"logs": "idx-2", "logs_extra": None})
    done = {"status": "completed", "snapshot_uuid": "snap-b", "target_uuids": {"logs": "idx-2", "logs_extra": None}}
    assert stale_reason(done, now) is None
    assert stale_reason({**done, "snapshot_uuid": "snap-a"}, now) == (
        "different snapshot with the same name (recorded for snapshot uuid snap-a, this one is snap-b)")
    assert stale_reason({**done, "target_uuids": {"logs": "idx-1", "logs_extra": None}}, now) == (
        "target index recreated since completion (logs: uuid idx-1 then, idx-2 now)")
    checkpoint = {**done, "status": "in_progress", "target_uuids": {"logs": "idx-1", "logs_extra": None}}
    assert "target index recreated since the checkpoint" in str(stale_reason(checkpoint, now))
    gone = ShardIdentity("snap-b", {"logs": None, "logs_extra": None})
    assert stale_reason(done, gone) == "target index deleted since completion (logs, uuid idx-2)"
    # An index that did not exist when recorded held none of the recorded work: created since, it is no reason.
    assert stale_reason(done, ShardIdentity("snap-b", {"logs": "idx-2", "logs_extra": "idx-9"})) is None
    assert "rename rules or the type mode changed" in str(stale_reason(done, ShardIdentity("snap-b", {"other": "x"})))
    assert stale_reason({"status": "completed", "snapshot": "snap"}, now) == LEGACY_RECORD


def test_dead_letters_of_same_named_snapshots_do_not_share_a_location(tmp_path: Path) -> None:
    a = open_dead_letters(str(tmp_path), SNAPSHOT, "logs", 0, snapshot_uuid="uuid-a")
    b = open_dead_letters(str(tmp_path), SNAPSHOT, "logs", 0, snapshot_uuid="uuid-b")
    assert a.location == str(tmp_path / SNAPSHOT / "uuid-a" / "logs" / "0.jsonl")
    assert a.location != b.location
    s3 = open_dead_letters("s3://bucket/letters", SNAPSHOT, "logs", 3, snapshot_uuid="uuid-a",
                           s3_endpoint="http://127.0.0.1:1", s3_region="us-east-1")
    assert s3.location == f"s3://bucket/letters/{SNAPSHOT}/uuid-a/logs/3/"


def test_dead_letter_records_carry_the_uuids(tmp_path: Path) -> None:
    from workers.rfs.bulk import BulkItem
    from workers.rfs.sender import Rejection

    store = open_dead_letters(str(tmp_path), SNAPSHOT, "logs", 0, snapshot_uuid="uuid-a")
    item = BulkItem(ShardPosition("_0", 1), "logs-new", "d1", None, b'{"index":{}}', b'{"a":1}')
    store.write([Rejection(item, 400, "mapper_parsing_exception", "bad")],
                {"snapshot": SNAPSHOT, "snapshot_uuid": "uuid-a", "index": "logs", "shard": 0},
                {"logs-new": "idx-7"})
    [record] = [json.loads(line) for line in Path(store.location).read_text().splitlines()]
    assert (record["snapshot_uuid"], record["target_index"], record["target_index_uuid"]) == \
        ("uuid-a", "logs-new", "idx-7")
