"""Source objects for the version matrix: what each engine generation has that the next one changes."""

from __future__ import annotations

from typing import Any

from tests.workers.metadata.scenario import bulk, client


def _put(url: str, path: str, body: dict[str, Any]) -> None:
    client(url).transport.perform_request("PUT", path, body=body)


def build_es6(url: str, p: str) -> dict[str, list[dict[str, Any]]]:
    """Elasticsearch 6.8: typed legacy template and indices (custom type ``doc`` and ``_doc``), camel-case analysis
    names and the standard filter, aliases with filters and routing. Returns the documents per index."""
    c = client(url)
    c.indices.put_template(name=f"{p}-lt", body={
        "index_patterns": [f"{p}-logs-*"], "order": 1, "settings": {"number_of_shards": 1},
        "mappings": {"doc": {"_all": {"enabled": False}, "properties": {
            "message": {"type": "text"}, "level": {"type": "keyword"}, "ts": {"type": "date"}}}},
        "aliases": {f"{p}-errors": {"filter": {"term": {"level": "error"}}}}})
    c.indices.create(index=f"{p}-logs-1")
    c.indices.create(index=f"{p}-typed", body={
        "settings": {"number_of_shards": 2, "analysis": {
            "tokenizer": {"grams": {"type": "nGram", "min_gram": 2, "max_gram": 3}},
            "analyzer": {"grams": {"type": "custom", "tokenizer": "grams", "filter": ["standard", "lowercase"]}}}},
        "mappings": {"doc": {"properties": {"title": {"type": "text", "analyzer": "grams"},
                                            "user": {"type": "keyword"}, "where": {"type": "geo_point"}}}},
        "aliases": {f"{p}-by-user": {"filter": {"term": {"user": "u1"}}, "routing": "1"}}})
    c.indices.create(index=f"{p}-plain", body={"mappings": {"_doc": {"properties": {"n": {"type": "long"}}}}})
    docs: dict[str, list[dict[str, Any]]] = {
        f"{p}-logs-1": [{"message": f"m {i}", "level": ["info", "error"][i % 2], "ts": "2019-01-01"} for i in range(6)],
        f"{p}-typed": [{"title": f"Title {i}", "user": f"u{i % 3}", "where": "52.5,13.4"} for i in range(6)],
        f"{p}-plain": [{"n": i} for i in range(4)],
    }
    for index, items in docs.items():
        answer = bulk(c, index, items, doc_type="_doc" if index.endswith("plain") else "doc")
        assert not answer["errors"], answer
    return docs


def build_es8(url: str, p: str) -> dict[str, list[dict[str, Any]]]:
    """Elasticsearch 8/9: flattened in a component template, a composable and a legacy template, an index with
    dense_vector, one with flattened and a runtime field (index.version.created is an index-format id)."""
    _put(url, f"/_component_template/{p}-ct", {"template": {"mappings": {"properties": {
        "labels": {"type": "flattened", "depth_limit": 5}}}}})
    _put(url, f"/_index_template/{p}-it", {"index_patterns": [f"{p}-flat-*"], "composed_of": [f"{p}-ct"],
                                           "priority": 50, "template": {"settings": {"number_of_shards": 1}}})
    _put(url, f"/_template/{p}-lt", {"index_patterns": [f"{p}-legacy-*"], "settings": {"number_of_shards": 1},
                                     "mappings": {"properties": {"a": {"type": "keyword"}}}})
    c = client(url)
    c.indices.create(index=f"{p}-flat-1", body={"mappings": {
        "runtime": {"day": {"type": "keyword"}},
        "properties": {"name": {"type": "keyword"}, "meta": {"type": "flattened"}}},
        "aliases": {f"{p}-flat": {}}})
    c.indices.create(index=f"{p}-vectors", body={"mappings": {"properties": {
        "emb": {"type": "dense_vector", "dims": 3, "similarity": "cosine"}, "title": {"type": "text"}}}})
    docs = {f"{p}-flat-1": [{"name": f"n{i}", "labels": {"team": "a", "tier": str(i)},
                             "meta": {"k": {"deep": f"v{i}"}}} for i in range(5)]}
    answer = bulk(c, f"{p}-flat-1", docs[f"{p}-flat-1"])
    assert not answer["errors"], answer
    return docs


def build_os1(url: str, p: str) -> dict[str, list[dict[str, Any]]]:
    """OpenSearch 1.3: composable, component and legacy templates, an index with a custom analyzer and aliases."""
    _put(url, f"/_component_template/{p}-ct", {"template": {
        "settings": {"analysis": {"analyzer": {"folded": {"type": "custom", "tokenizer": "standard",
                                                          "filter": ["lowercase", "asciifolding"]}}}},
        "mappings": {"properties": {"title": {"type": "text", "analyzer": "folded"}}}}})
    _put(url, f"/_index_template/{p}-it", {"index_patterns": [f"{p}-docs-*"], "composed_of": [f"{p}-ct"],
                                           "template": {"aliases": {f"{p}-docs": {}}}})
    _put(url, f"/_template/{p}-lt", {"index_patterns": [f"{p}-old-*"], "order": 3,
                                     "settings": {"index.mapping.total_fields.limit": 1234}})
    c = client(url)
    c.indices.create(index=f"{p}-docs-1", body={"aliases": {f"{p}-r": {"routing": "7"}}})
    docs = {f"{p}-docs-1": [{"title": f"Crème {i}"} for i in range(5)]}
    answer = bulk(c, f"{p}-docs-1", docs[f"{p}-docs-1"])
    assert not answer["errors"], answer
    return docs
