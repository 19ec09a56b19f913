"""The sandbox's real engines: index, search, modules at work, and a filesystem snapshot on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox import loader, manager
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from workers.snapshot.create import create_snapshot, register_fs_repository


def client(url: str) -> OpenSearch:
    return OpenSearch(hosts=[url], timeout=60)


@pytest.mark.parametrize("role", ["source", "target"])
def test_index_and_search(sandbox: SandboxState, role: str) -> None:
    es = client(sandbox.engines[role].url)
    index = unique("it")
    es.index(index=index, id="1", body={"title": "Hello sandbox", "n": 1}, refresh=True)
    hits = es.search(index=index, body={"query": {"match": {"title": "sandbox"}}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["1"]


@pytest.mark.parametrize("role", ["source", "target"])
def test_added_modules_work(sandbox: SandboxState, role: str) -> None:
    es = client(sandbox.engines[role].url)
    index = unique("mods")
    # analysis-common: a custom analyzer using a filter only that module provides.
    es.indices.create(index=index, body={
        "settings": {"analysis": {"analyzer": {"split": {"tokenizer": "whitespace",
                                                         "filter": ["word_delimiter_graph", "lowercase"]}}}},
        "mappings": {"properties": {"title": {"type": "text", "analyzer": "split"},
                                    "price": {"type": "scaled_float", "scaling_factor": 100},  # mapper-extras
                                    "rel": {"type": "join", "relations": {"q": "a"}}}},  # parent-join
    })
    tokens = es.indices.analyze(index=index, body={"analyzer": "split", "text": "PowerShot500"})["tokens"]
    assert [t["token"] for t in tokens] == ["power", "shot", "500"]
    es.index(index=index, id="1", body={"title": "x", "price": 1.5, "n": 1, "rel": "q"}, refresh=True)
    # lang-painless: a scripted update.
    es.update(index=index, id="1", body={"script": {"source": "ctx._source.n += params.d", "params": {"d": 41}}},
              refresh=True)
    assert es.get(index=index, id="1")["_source"]["n"] == 42
    # reindex
    copy = unique("copy")
    es.reindex(body={"source": {"index": index}, "dest": {"index": copy}}, refresh=True)
    assert es.count(index=copy)["count"] == 1


def test_status_lists_modules(sandbox: SandboxState) -> None:
    info = manager.status(sandbox.name)
    for role in ("source", "target"):
        assert info[role]["alive"] is True
        assert {"analysis-common", "lang-painless", "mapper-extras", "parent-join", "reindex",
                "transport-netty4"} <= set(info[role]["modules"])
    assert info["kafka"]["alive"] and info["s3"]["alive"]


def test_loader_counts_and_routing(sandbox: SandboxState) -> None:
    url = sandbox.engines["source"].url
    index = unique("load")
    result = loader.load(url, index, 2500, profile_name="logs", shards=3, routing=True, seed=5)
    es = client(url)
    assert result.docs == 2500 and es.count(index=index)["count"] == 2500
    settings = es.indices.get_settings(index=index)[index]["settings"]["index"]
    assert settings["number_of_shards"] == "3"
    hit = es.search(index=index, body={"size": 1, "query": {"term": {"_id": "logs-000000007"}}})["hits"]["hits"][0]
    assert hit["_routing"].startswith("u")


def test_filesystem_snapshot_files_on_disk(sandbox: SandboxState) -> None:
    node = sandbox.engines["source"]
    es = client(node.url)
    index = unique("snap")
    loader.load(node.url, index, 300, profile_name="products", shards=2, seed=1)
    location = str(Path(node.repo_path) / unique("repo"))
    repo = unique("r")
    register_fs_repository(es, repo, location)
    result = create_snapshot(es, repo, "s1", indices=index)
    assert result.state == "SUCCESS" and result.indices == [index] and result.shards_total == 2
    root = Path(location)
    assert (root / "index.latest").is_file()
    assert list(root.glob("snap-*.dat")) and list(root.glob("meta-*.dat"))
    shard_dirs = [p for p in (root / "indices").glob("*/*") if p.is_dir()]
    assert sorted(p.name for p in shard_dirs) == ["0", "1"]
    assert all(any(f.name.startswith("__") for f in d.iterdir()) for d in shard_dirs), "no segment blobs"
