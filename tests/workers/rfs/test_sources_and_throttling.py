"""Backfill from an Elasticsearch 6.8 source (typed), into a throttled target (real 429s), and under Pipes."""

# No postponed annotations here: Dagster inspects the asset function's annotations at definition time.

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster import AssetExecutionContext
from opensearchpy import OpenSearch

from migration_pipeline.sandbox import manager
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.rfs.helpers import Row, SnapshotFixture, build_snapshot, canonical, options, target_rows
from workers.common.clusters import ClusterConnection
from workers.documents.reader import ShardPosition, open_shard
from workers.rfs.options import BackfillOptions, ShardWorkerRequest, SnapshotSource
from workers.rfs.worker import run_shard
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.create import create_snapshot, register_fs_repository
from workers.snapshot.repository import SnapshotRepository


@pytest.fixture(scope="module")
def es68_snapshot() -> Iterator[SnapshotFixture]:
    """A typed index (type ``post``, custom routing) on a real Elasticsearch 6.8, snapshotted."""
    name = unique("es68")
    try:
        state = manager.up(manager.UpRequest(source="es:6.8.23", target=None), name=name)
        node = state.engines["source"]
        client = OpenSearch(hosts=[node.url], timeout=60)
        index = unique("posts")
        client.indices.create(index=index, body={
            "settings": {"number_of_shards": 2, "number_of_replicas": 0},
            "mappings": {"post": {"properties": {"title": {"type": "text"}, "n": {"type": "integer"}}}},
        })
        for i in range(300):
            client.transport.perform_request("PUT", f"/{index}/post/p{i}", params={"routing": f"user{i % 7}"},
                                             body={"title": f"post {i}", "n": i})
        client.indices.flush(index=index)
        client.transport.perform_request("DELETE", f"/{index}/post/p5", params={"routing": "user5"})
        client.transport.perform_request("POST", f"/{index}/post/p6/_update", params={"routing": "user6"},
                                         body={"doc": {"n": -6}})
        client.indices.refresh(index=index)
        location = str(Path(node.repo_path) / "repo")
        register_fs_repository(client, "r", location)
        create_snapshot(client, "r", "snap", indices=index)
        expected: dict[str, Row] = {
            f"p{i}": (f"p{i}", f"user{i % 7}", canonical({"title": f"post {i}", "n": -6 if i == 6 else i}))
            for i in range(300) if i != 5}
        yield SnapshotFixture(Path(location).as_uri(), "snap", index, 2, expected)
    finally:
        manager.down(name)


@pytest.mark.parametrize("type_mode", ["drop", "index-per-type"])
def test_typed_source_into_typeless_target(sandbox: SandboxState, es68_snapshot: SnapshotFixture, tmp_path: Path,
                                           type_mode: str) -> None:
    target = sandbox.engines["target"].url
    opts = options(target, tmp_path, type_mode=type_mode)
    store = open_blob_store(es68_snapshot.repo_uri)
    for shard in range(es68_snapshot.shards):
        assert run_shard(store, es68_snapshot.snapshot, es68_snapshot.index, shard, opts).dead_letters == 0
    # One type: the metadata migration keeps the index whole in either mode, and so does the backfill.
    assert target_rows(target, es68_snapshot.index) == es68_snapshot.expected
    assert not OpenSearch(hosts=[target]).indices.exists(index=f"{es68_snapshot.index}_post")


def test_throttled_target_gets_everything(sandbox: SandboxState, tmp_path: Path) -> None:
    node = sandbox.engines["source"]
    snap = build_snapshot(node.url, node.repo_path, docs=1500, shards=3, profile="products")
    name = unique("throttle")
    try:
        # One write thread and a one-slot queue: concurrent bulk requests are refused with real 429s.
        state = manager.up(manager.UpRequest(source=None, target="os:2.19.x", target_settings={
            "thread_pool.write.size": "1", "thread_pool.write.queue_size": "1"}), name=name)
        target = state.engines["target"].url
        opts = options(target, tmp_path, max_connections=8, documents_per_bulk_request=10, initial_backoff_s=0.05,
                       max_backoff_s=1.0, max_retries=100)
        results = [run_shard(open_blob_store(snap.repo_uri), snap.snapshot, snap.index, s, opts) for s in range(3)]
        assert sum(r.retries for r in results) > 0
        reasons = {reason for r in results for reason in r.retry_reasons}
        assert any("429" in reason or "es_rejected_execution_exception" in reason for reason in reasons), reasons
        assert sum(r.docs_written for r in results) == 1500
        assert target_rows(target, snap.index) == snap.expected
        # Only the items the target refused were sent again: a whole batch resent would leave version 2s.
        hits = OpenSearch(hosts=[target]).search(index=snap.index, body={
            "size": 10000, "version": True, "_source": False})["hits"]["hits"]
        versions = {h["_id"]: h["_version"] for h in hits}
        assert len(versions) == 1500
        assert {i: v for i, v in versions.items() if v != 1} == {}
        # The throttled target made the worker send fewer requests at once (adaptive concurrency).
        assert min(r.concurrency["lowest"] for r in results) < 8, [r.concurrency for r in results]
        assert sum(r.concurrency["cuts"] for r in results) > 0
    finally:
        manager.down(name)


def test_worker_under_dagster_pipes(sandbox: SandboxState, tmp_path: Path) -> None:
    node, target = sandbox.engines["source"], sandbox.engines["target"].url
    snap = build_snapshot(node.url, node.repo_path, docs=120, shards=1, profile="nested")
    coordination = unique(".mws")

    @dg.asset(partitions_def=dg.StaticPartitionsDefinition([f"{snap.index}:0"]))
    def shard_copy(context: AssetExecutionContext, pipes: dg.PipesSubprocessClient) -> dg.MaterializeResult:
        return pipes.run(
            context=context, command=[sys.executable, "-m", "workers.rfs"],
            extras=ShardWorkerRequest(
                SnapshotSource(snap.repo_uri, snap.snapshot), snap.index, 0,
                BackfillOptions(target=ClusterConnection(endpoint=target), coordination_index=coordination,
                                dead_letter=str(tmp_path / "dead"))).to_extras(),
        ).get_materialize_result()

    with dg.instance_for_test() as instance:
        result = dg.materialize([shard_copy], resources={"pipes": dg.PipesSubprocessClient()}, instance=instance,
                                partition_key=f"{snap.index}:0")
        assert result.success
        mat = result.asset_materializations_for_node("shard_copy")[0]
    meta: dict[str, Any] = {key: value.value for key, value in mat.metadata.items()}
    assert set(meta) >= {"status", "documents", "bytes", "dead_letters", "dead_letters_by_type", "retries",
                         "duration_s", "concurrency", "checkpoint", "snapshot"}, sorted(meta)
    assert meta["documents"] == 120 and meta["status"] == "completed" and meta["snapshot"] == snap.snapshot
    assert meta["dead_letters"] == 0 and meta["dead_letters_by_type"] == {} and meta["retries"] == 0
    assert isinstance(meta["duration_s"], float) and meta["duration_s"] > 0
    # The worker's own record on the target is the independent account of what it wrote.
    record = OpenSearch(hosts=[target]).get(index=coordination, id=f"{snap.snapshot}/{snap.index}/0")["_source"]
    assert record["status"] == "completed" and record["docs_written"] == meta["documents"]
    assert meta["bytes"] > 0 and meta["bytes"] == record["bytes_written"]
    assert meta["checkpoint"] == record["checkpoint"] and set(meta["checkpoint"]) == {"segment", "doc"}
    # The reported checkpoint is the shard's end: nothing is left to read after it.
    reader = open_shard(SnapshotRepository(open_blob_store(snap.repo_uri)), snap.snapshot, snap.index, 0)
    assert list(reader.positioned(ShardPosition(**meta["checkpoint"]))) == []
    concurrency = meta["concurrency"]
    assert set(concurrency) == {"max", "highest", "lowest", "final", "cuts"}
    # One request, so nothing to cut: "lowest" stays at the maximum (it records decreases only).
    assert (concurrency["max"], concurrency["cuts"], concurrency["lowest"]) == (10, 0, 10)
    assert 1 <= concurrency["final"] <= concurrency["highest"] <= 10
    assert target_rows(target, snap.index) == snap.expected
