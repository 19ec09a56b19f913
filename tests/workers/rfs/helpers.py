"""Shared pieces of the backfill tests: a snapshotted source index and target-side comparisons."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opensearchpy import OpenSearch, helpers

from migration_pipeline.sandbox import loader
from tests.conftest import unique
from workers.common.clusters import ClusterConnection
from workers.documents.reader import open_shard, read_snapshot_documents
from workers.rfs.options import BackfillOptions
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.create import create_snapshot, register_fs_repository
from workers.snapshot.repository import SnapshotRepository

Row = tuple[str, str | None, str]  # (id, routing, canonical JSON source)


@dataclass(frozen=True)
class SnapshotFixture:
    """A snapshotted source index and what the reader extracts from it."""

    repo_uri: str
    snapshot: str
    index: str
    shards: int
    expected: dict[str, Row]


@dataclass(frozen=True)
class NamedSnapshot:
    """A one-shard index snapshotted under a given name; its UUID and documents (id -> canonical source)."""

    repo_uri: str
    uuid: str
    docs: dict[str, str]


def named_snapshot(url: str, repo_path: str, index: str, name: str, prefix: str, count: int) -> NamedSnapshot:
    """Create one-shard ``index`` holding ``count`` small documents (ids ``prefix-i``) and snapshot it as ``name``
    into a repository of its own (on either cluster of the sandbox: both can take snapshots)."""
    client = OpenSearch(hosts=[url], timeout=120)
    client.indices.create(index=index, body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    docs = {f"{prefix}-{i}": {"who": prefix, "n": i} for i in range(count)}
    for doc_id, body in docs.items():
        client.index(index=index, id=doc_id, body=body)
    client.indices.refresh(index=index)
    location = str(Path(repo_path) / unique("named"))
    repository = unique("r-named")
    register_fs_repository(client, repository, location)
    create_snapshot(client, repository, name, indices=index)
    uuid = SnapshotRepository(open_blob_store(location)).snapshot(name).uuid
    return NamedSnapshot(Path(location).as_uri(), uuid, {k: canonical(v) for k, v in docs.items()})


def canonical(source: Any) -> str:
    return json.dumps(source, sort_keys=True, ensure_ascii=False)


def build_snapshot(url: str, repo_path: str, *, docs: int, shards: int, profile: str = "logs",
                   extra: Sequence[tuple[str, str | None, bytes]] = ()) -> SnapshotFixture:
    """Load ``docs`` generated documents (custom routing) plus ``extra`` raw documents, snapshot the index."""
    client = OpenSearch(hosts=[url], timeout=120)
    index = unique("bf")
    loader.load(url, index, docs, profile_name=profile, shards=shards, routing=True, seed=3)
    for doc_id, routing, body in extra:
        params = {"routing": routing} if routing else {}
        client.transport.perform_request("PUT", f"/{index}/_doc/{doc_id}", body=body, params=params,
                                         headers={"content-type": "application/json"})
    client.indices.refresh(index=index)
    location = str(Path(repo_path) / unique("repo"))
    register_fs_repository(client, "r-" + index, location)
    create_snapshot(client, "r-" + index, "snap", indices=index)
    expected = {d.id: (d.id, d.routing, canonical(json.loads(d.source)))
                for d in read_snapshot_documents(open_blob_store(location), "snap")}
    return SnapshotFixture(Path(location).as_uri(), "snap", index, shards, expected)


def target_rows(url: str, index: str) -> dict[str, Row]:
    """Every document of a target index: id, routing, source (as canonical JSON)."""
    client = OpenSearch(hosts=[url], timeout=120)
    client.indices.refresh(index=index)
    rows: dict[str, Row] = {}
    for hit in helpers.scan(client, index=index, query={"query": {"match_all": {}}}, size=1000,
                            request_timeout=120):
        assert hit["_id"] not in rows, f"duplicate id {hit['_id']}"
        rows[hit["_id"]] = (hit["_id"], hit.get("_routing"), canonical(hit["_source"]))
    return rows


def options(target_url: str, tmp_path: Path, **kwargs: Any) -> BackfillOptions:
    """Worker options for a test: its own coordination index and dead-letter folder."""
    kwargs.setdefault("coordination_index", unique(".mws"))
    kwargs.setdefault("dead_letter", str(tmp_path / "dead"))
    return BackfillOptions(target=ClusterConnection(endpoint=target_url), **kwargs)


def ids_before(snap: SnapshotFixture, shard: int, checkpoint: dict[str, Any]) -> list[str]:
    """Ids of the shard's documents before a checkpoint (``{"segment", "doc"}``), in the worker's reading order."""
    reader = open_shard(SnapshotRepository(open_blob_store(snap.repo_uri)), snap.snapshot, snap.index, shard)
    ids = []
    for position, doc in reader.positioned():
        if position.segment == checkpoint["segment"] and position.doc >= checkpoint["doc"]:
            break
        ids.append(doc.id)
    return ids
