"""Real source objects for the metadata tests: templates of three kinds, indices with aliases, documents, snapshot."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError

from workers.common.clusters import ClusterConnection, build_client
from workers.metadata.options import MigrationOptions
from workers.snapshot.create import create_snapshot, register_fs_repository


def client(url: str) -> OpenSearch:
    """A client for a sandbox engine."""
    return build_client(ClusterConnection(endpoint=url, timeout_s=60))


def bulk(c: OpenSearch, index: str, docs: list[dict[str, Any]], routing: str | None = None,
         ids: list[str] | None = None, doc_type: str | None = None) -> dict[str, Any]:
    """Index ``docs`` (ids ``ids``, else doc-0, doc-1, ...) and refresh; the bulk answer is returned."""
    lines = []
    for i, doc in enumerate(docs):
        action: dict[str, Any] = {"_index": index, "_id": ids[i] if ids else f"doc-{i}"}
        if doc_type:
            action["_type"] = doc_type
        if routing:
            action["routing"] = routing
        lines += [json.dumps({"index": action}), json.dumps(doc)]
    answer: dict[str, Any] = c.bulk(body="\n".join(lines) + "\n", params={"refresh": "true"})
    return answer


@dataclass
class Scenario:
    """The objects one test module created on the source (every name starts with ``prefix``)."""

    prefix: str
    source_url: str
    target_url: str
    repo_dir: str | None = None
    snapshot: str | None = None
    docs: dict[str, int] = field(default_factory=dict)

    def options(self, **kw: Any) -> MigrationOptions:
        """Options whose allow lists select this scenario's objects only."""
        mine = [f"regex:{self.prefix}.*"]
        return MigrationOptions.build(index_allowlist=mine, index_template_allowlist=mine,
                                      component_template_allowlist=mine, **kw)


def build_es7(source_url: str, target_url: str, prefix: str, repo_path: str | None = None) -> Scenario:
    """Component, composable and legacy templates, three indices (aliases with filters and routing, custom
    analyzers, a write block), a few documents each; a snapshot with global state when ``repo_path`` is given."""
    c = client(source_url)
    p = prefix
    c.transport.perform_request("PUT", f"/_component_template/{p}-ct-text", body={
        "template": {
            "settings": {"analysis": {
                "char_filter": {"amp": {"type": "mapping", "mappings": ["& => and"]}},
                "analyzer": {"folded": {"type": "custom", "tokenizer": "standard", "char_filter": ["amp"],
                                        "filter": ["lowercase", "asciifolding"]}}}},
            "mappings": {"properties": {"title": {"type": "text", "analyzer": "folded"}, "tags": {"type": "keyword"}}},
        },
        "version": 2, "_meta": {"owner": "search-team"}})
    c.transport.perform_request("PUT", f"/_index_template/{p}-it", body={
        "index_patterns": [f"{p}-events-*"], "composed_of": [f"{p}-ct-text"], "priority": 120, "version": 3,
        "template": {"settings": {"number_of_shards": 2, "refresh_interval": "5s"},
                     "mappings": {"properties": {"ts": {"type": "date"}, "user": {"type": "keyword"}}},
                     "aliases": {f"{p}-events": {}}}})
    c.indices.put_template(name=f"{p}-lt", body={
        "index_patterns": [f"{p}-logs-*"], "order": 2,
        "settings": {"number_of_shards": 1, "index.mapping.total_fields.limit": 1500},
        "mappings": {"properties": {"message": {"type": "text"}, "level": {"type": "keyword"},
                                    "@timestamp": {"type": "date"}}},
        "aliases": {f"{p}-errors": {"filter": {"term": {"level": "error"}}}}})
    c.indices.create(index=f"{p}-events-1", body={"aliases": {
        f"{p}-events-write": {"is_write_index": True},
        f"{p}-events-alice": {"filter": {"term": {"user": "alice"}}, "routing": "2"}}})
    c.indices.create(index=f"{p}-logs-1")
    c.indices.create(index=f"{p}-custom", body={
        "settings": {
            "number_of_shards": 1, "number_of_replicas": 0, "index.mapping.total_fields.limit": 3000,
            "index.routing.allocation.exclude._name": "no-such-node",
            "analysis": {
                "tokenizer": {"edges": {"type": "edge_ngram", "min_gram": 2, "max_gram": 10,
                                        "token_chars": ["letter", "digit"]}},
                "filter": {"syn": {"type": "synonym", "synonyms": ["laptop, notebook"]}},
                "analyzer": {"autocomplete": {"type": "custom", "tokenizer": "edges", "filter": ["lowercase"]},
                             "with_synonyms": {"type": "custom", "tokenizer": "standard",
                                               "filter": ["lowercase", "syn"]}}}},
        "mappings": {"properties": {
            "name": {"type": "text", "analyzer": "autocomplete", "search_analyzer": "standard"},
            "desc": {"type": "text", "analyzer": "with_synonyms"},
            "price": {"type": "scaled_float", "scaling_factor": 100},
            "location": {"type": "geo_point"},
            "suggest": {"type": "search_as_you_type"},
            "sku": {"type": "keyword", "ignore_above": 64}}},
        "aliases": {f"{p}-catalog": {}}})
    s = Scenario(prefix, source_url, target_url)
    users = ["alice", "bob", "carol"]
    events = [{"ts": f"2024-05-0{1 + i % 9}T10:00:00Z", "user": users[i % 3], "title": f"Café & Crème {i}",
               "tags": ["a", "b"][: 1 + i % 2]} for i in range(12)]
    logs = [{"@timestamp": "2024-05-01T00:00:00Z", "message": f"request {i} done", "level": ["info", "error"][i % 2],
             "extra": {"dynamic": i}} for i in range(10)]
    products = [{"name": f"Laptop {i}", "desc": "a light notebook", "price": 999.99 + i, "suggest": f"laptop {i}",
                 "location": {"lat": 52.5, "lon": 13.4}, "sku": f"SKU-{i:04d}"} for i in range(8)]
    for index, docs in ((f"{p}-events-1", events), (f"{p}-logs-1", logs), (f"{p}-custom", products)):
        answer = bulk(c, index, docs)
        assert not answer["errors"], answer
        s.docs[index] = len(docs)
    c.indices.put_settings(index=f"{p}-custom", body={"index.blocks.write": True})
    if repo_path:
        s.repo_dir = f"{repo_path}/{p}"
        s.snapshot = f"{p}-snap"
        register_fs_repository(c, p, s.repo_dir)
        create_snapshot(c, p, s.snapshot, indices=f"{p}-*", include_global_state=True)
    return s


def cleanup(url: str, prefix: str) -> None:
    """Delete every index and template whose name starts with ``prefix`` (and the snapshot repository)."""
    c = client(url)
    c.indices.delete(index=f"{prefix}*", params={"expand_wildcards": "all", "ignore_unavailable": "true"})
    for path, key in (("/_index_template", "index_templates"), ("/_component_template", "component_templates")):
        try:
            items = c.transport.perform_request("GET", path).get(key, [])
        except NotFoundError:
            items = []
        # Index templates first: a component template in use cannot be deleted.
        for item in items:
            if item["name"].startswith(prefix):
                c.transport.perform_request("DELETE", f"{path}/{item['name']}")
    for name in c.indices.get_template():
        if name.startswith(prefix):
            c.indices.delete_template(name=name)
    with contextlib.suppress(NotFoundError):
        c.snapshot.delete_repository(repository=prefix)
