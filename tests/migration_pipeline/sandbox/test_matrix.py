"""Every supported engine version starts, indexes, searches and snapshots (opt-in: pytest -m matrix)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox import loader, manager
from migration_pipeline.sandbox import s3 as sandbox_s3
from migration_pipeline.sandbox.catalog import RELEASES, EngineRelease
from tests.conftest import unique
from workers.common.cluster_info import server_version
from workers.metadata.read_snapshot import snapshot_version
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.create import create_snapshot, register_fs_repository
from workers.snapshot.repository import SnapshotRepository


@pytest.mark.matrix
@pytest.mark.parametrize("release", RELEASES, ids=[r.spec for r in RELEASES])
def test_release_starts_indexes_and_snapshots(release: EngineRelease) -> None:
    name = unique("matrix")
    try:
        state = manager.up(manager.UpRequest(source=release.spec, target=None), name=name)
        node = state.engines["source"]
        client = OpenSearch(hosts=[node.url], timeout=60)
        version = server_version(client)
        assert (version.engine, version.number) == (release.engine, release.version)

        index = unique("m")
        result = loader.load(node.url, index, 500, profile_name="nested", shards=2, routing=True, seed=1)
        assert result.docs == 500 and client.count(index=index)["count"] == 500
        hits = client.search(index=index, body={"query": {"term": {"status": "paid"}}})["hits"]["hits"]
        assert hits and all(h["_source"]["status"] == "paid" for h in hits)

        location = str(Path(node.repo_path) / "repo")
        register_fs_repository(client, "r", location)
        snap = create_snapshot(client, "r", "s1", indices=index)
        assert snap.state == "SUCCESS" and snap.shards_total == 2
        assert list(Path(location).glob("index-*")) and (Path(location) / "indices").is_dir()
        # The writer read back from the repository: its engine and release (8.11+ record index-format ids).
        repository = SnapshotRepository(open_blob_store(location))
        major, minor = (int(part) for part in release.version.split(".")[:2])
        writer = snapshot_version(repository, "s1")
        assert writer is not None and (writer.engine, writer.major, writer.minor) == (release.engine, major, minor)
        ref = repository.snapshot("s1")
        if ref.release is not None:  # Elasticsearch before 7.6 does not record it in the repository data
            assert (ref.engine, ref.release[:2]) == (release.engine, (major, minor)), ref

        info = manager.status(name)["source"]
        assert {m.name for m in release.modules if m.folder == "modules"} <= set(info["modules"])
        assert {m.name for m in release.modules if m.folder == "plugins"} <= set(info["plugins"])
        assert "transport-netty4" in info["modules"]
    finally:
        manager.down(name)


S3_RELEASES = [r for r in RELEASES if any(m.name == "repository-s3" for m in r.modules)]


@pytest.mark.matrix
@pytest.mark.parametrize("release", S3_RELEASES, ids=[r.spec for r in S3_RELEASES])
def test_release_snapshots_to_s3(release: EngineRelease) -> None:
    name = unique("matrix-s3")
    try:
        state = manager.up(manager.UpRequest(source=release.spec, target=None, s3=True), name=name)
        node, server = state.engines["source"], state.s3
        assert server is not None
        s3 = boto3.client("s3", endpoint_url=server.endpoint, region_name=sandbox_s3.REGION,
                          aws_access_key_id=sandbox_s3.ACCESS_KEY, aws_secret_access_key=sandbox_s3.SECRET_KEY)
        s3.create_bucket(Bucket="snapshots")
        client = OpenSearch(hosts=[node.url], timeout=60)
        index = unique("s3")
        loader.load(node.url, index, 200, profile_name="products", shards=1, seed=3)
        client.snapshot.create_repository(
            repository="s3repo", body={"type": "s3", "settings": {"bucket": "snapshots", "base_path": "repo"}})
        snap = create_snapshot(client, "s3repo", "s1", indices=index)
        assert snap.state == "SUCCESS"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="snapshots", Prefix="repo/")["Contents"]]
        assert "repo/index.latest" in keys and any(k.startswith("repo/indices/") for k in keys)
    finally:
        manager.down(name)
