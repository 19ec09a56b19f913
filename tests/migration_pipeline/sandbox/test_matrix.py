"""Every supported engine version starts, indexes, searches and snapshots (opt-in: pytest -m matrix)."""

from __future__ import annotations

from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox import loader, manager
from migration_pipeline.sandbox.catalog import RELEASES, EngineRelease
from tests.conftest import unique
from workers.common.cluster_info import server_version
from workers.snapshot.create import create_snapshot, register_fs_repository


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

        loaded = set(manager.status(name)["source"]["modules"])
        assert {m.name for m in release.modules} <= loaded
        assert "transport-netty4" in loaded
    finally:
        manager.down(name)
