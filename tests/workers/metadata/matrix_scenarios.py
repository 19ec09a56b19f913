"""Source objects for the version matrix: what each engine generation has that the next one changes."""

from __future__ import annotations

from collections.abc import Callable
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


# Index settings each source release accepts and OpenSearch 2.19/3.8 refuse (or, for translog retention, accept:
# kept as a witness). Each was checked by creating an index with it on that release.
_ES8_ONLY = {
    "index.codec": "legacy_best_compression", "index.mapping.dimension_fields.limit": "16",
    "index.mapping.total_fields.ignore_dynamic_beyond_limit": "true", "index.mapping.synthetic_source_keep": "arrays",
    "index.bloom_filter_for_id_field.enabled": "false", "index.recovery.use_synthetic_source": "false",
    "index.fast_refresh": "false", "index.search.slowlog.include.user": "true",
    "index.indexing.slowlog.include.user": "true", "index.mapping.source.mode": "stored",
    "index.merge.policy.merge_factor": "16", "index.merge.policy.type": "tiered",
    "index.mapping.ignore_above": "100", "index.highlight.weight_matches_mode.enabled": "false",
    "index.translog.flush_threshold_age": "30m", "index.mapping.semantic_text.use_legacy_format": "false",
    "index.mapping.synthetic_source.skip_ignored_source_read": "false",
    "index.merge.policy.max_merge_at_once_explicit": "30",
}
REFUSED_SETTINGS: dict[str, dict[str, Any]] = {
    "es:6.8.23": {"index.soft_deletes.enabled": "false", "index.mapper.dynamic": "false",
                  "index.shard.check_on_startup": "fix", "index.similarity.tfidf.type": "classic",
                  "index.merge.policy.max_merge_at_once_explicit": "30", "index.translog.retention.size": "512mb"},
    "es:7.10.2": {"index.soft_deletes.enabled": "false", "index.merge.policy.max_merge_at_once_explicit": "30",
                  "index.translog.retention.size": "512mb"},
    "es:7.17.29": {"index.soft_deletes.enabled": "false", "index.mapper.dynamic": "false",
                   "index.mapping.dimension_fields.limit": "16",
                   "index.merge.policy.max_merge_at_once_explicit": "30"},
    "es:8.19.21": _ES8_ONLY,
    "es:9.2.0": {**_ES8_ONLY, "index.codec": "legacy_default", "index.dense_vector.hnsw_filter_heuristic": "fanout"},
    "os:1.3.20": {"index.soft_deletes.enabled": "false", "index.merge.policy.max_merge_at_once_explicit": "30",
                  "index.translog.retention.size": "512mb"},
    "os:2.19.6": {"index.store.hybrid.mmap.extensions": ["nvd"]},
}


def expected_on_target(target: str, key: str, value: Any) -> Any:
    """The value the target's index gets for a refused setting of :data:`REFUSED_SETTINGS` (None: removed)."""
    if key == "index.codec":
        return {"legacy_default": "default", "legacy_best_compression": "best_compression"}[value]
    if key == "index.shard.check_on_startup":
        return "true"
    if key.startswith("index.similarity."):
        return "BM25"
    if key == "index.translog.retention.size":
        return value
    if key == "index.store.hybrid.mmap.extensions":
        return None if target.startswith("os:3") else value
    return None


def build_refused(source: str) -> Callable[[str, str], dict[str, list[dict[str, Any]]]]:
    """A builder for ``source``: an index and a legacy template holding every setting of :data:`REFUSED_SETTINGS`
    that release accepts (Elasticsearch 6.8: a typed mapping whose fields use the classic similarity)."""
    settings = REFUSED_SETTINGS[source]
    typed = source.startswith("es:6")

    def build(url: str, p: str) -> dict[str, list[dict[str, Any]]]:
        mapping: dict[str, Any] = {"properties": {"title": {"type": "text"}, "n": {"type": "long"}}}
        if "index.similarity.tfidf.type" in settings:
            mapping["properties"]["title"]["similarity"] = "tfidf"
            mapping["properties"]["body"] = {"type": "text", "similarity": "classic"}
        body = {"mappings": {"_doc": mapping} if typed else mapping}
        c = client(url)
        c.indices.put_template(name=f"{p}-lt", body={"index_patterns": [f"{p}-lt-*"], "order": 1,
                                                     "settings": settings, **body})
        c.indices.create(index=f"{p}-refused", body={"settings": {**settings, "number_of_replicas": 0}, **body})
        docs = {f"{p}-refused": [{"title": f"title {i}", "n": i} for i in range(5)]}
        answer = bulk(c, f"{p}-refused", docs[f"{p}-refused"], doc_type="_doc" if typed else None)
        assert not answer["errors"], answer
        return docs

    return build
