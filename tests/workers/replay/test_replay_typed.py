"""Elasticsearch 6.8 typed traffic (typed paths and bulk actions) replayed onto OpenSearch 2.19 with the backfill's
type rule (types dropped). Opt-in (``-m matrix``): it starts an Elasticsearch 6.8 of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.capture.conftest import RunningProxy, create_topic, proxy_options
from tests.workers.replay.live import TYPED_PROPERTIES, documents, es68_sandbox, options, raw_caller, replay_in_process

PROPERTIES = TYPED_PROPERTIES
es68 = pytest.fixture(scope="module")(es68_sandbox)


@pytest.mark.matrix
def test_typed_traffic_is_replayed_typeless(sandbox: SandboxState, es68: str, tmp_path: Path) -> None:
    assert sandbox.kafka is not None
    brokers, target = sandbox.kafka.bootstrap, sandbox.engines["target"].url
    topic = create_topic(brokers, partitions=2)
    index = unique("typed")
    OpenSearch(hosts=[es68]).indices.create(index=index, body={
        "settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": {"doc": {"properties": PROPERTIES}}})
    OpenSearch(hosts=[target]).indices.create(index=index, body={
        "settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": {"properties": PROPERTIES}})
    proxy = RunningProxy(proxy_options(es68, brokers, topic))
    try:
        call = raw_caller(OpenSearch(hosts=[proxy.url]))

        call("PUT", f"/{index}/doc/1", {"n": 1, "who": "a"})
        call("PUT", f"/{index}/doc/2", {"n": 2, "who": "a"})
        call("POST", f"/{index}/doc", {"n": 3, "who": "auto"})
        call("POST", f"/{index}/doc/1/_update", {"doc": {"n": 10}})
        call("POST", f"/{index}/doc/_bulk", [{"index": {"_id": "b1"}}, {"n": 4, "who": "bulk"},
                                             {"index": {}}, {"n": 5, "who": "bulk-auto"}], ndjson=True)
        call("POST", "/_bulk", [{"index": {"_index": index, "_type": "doc", "_id": "b2"}}, {"n": 6, "who": "bulk"},
                                {"delete": {"_index": index, "_type": "doc", "_id": "2"}},
                                {"update": {"_index": index, "_type": "doc", "_id": "b1"}}, {"doc": {"n": 40}}],
             ndjson=True)
        call("DELETE", f"/{index}/doc/b2")
        call("GET", f"/{index}/doc/_search", {"query": {"match_all": {}}})
        call("POST", f"/{index}/_refresh")
    finally:
        proxy.stop()

    final, replayed = replay_in_process(options(brokers, topic, target, type_mode="drop",
                                                dead_letters=str(tmp_path / "letters")))
    assert final["stats"]["dead_letters"] == 0, [p.read_text() for p in (tmp_path / "letters").rglob("*.jsonl")]
    assert documents(target, index) == documents(es68, index)
    assert final["stats"]["auto_ids_pinned"] == 2
    sent = [e.request.path for tx in replayed for e in tx.exchanges]
    assert f"/{index}/_doc/1" in sent and f"/{index}/_update/1" in sent and f"/{index}/_bulk" in sent
    assert not any("/doc/" in path for path in sent)
