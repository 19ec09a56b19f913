"""The back-out onto an Elasticsearch 6.8 source: typeless traffic clients sent to the OpenSearch 2.19 target (under
the renamed index's name) replayed onto the source with the renames undone and the mapping type put back.
Opt-in (``-m matrix``): it starts an Elasticsearch 6.8 of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.capture.conftest import RunningProxy, create_topic, proxy_options
from tests.workers.replay.live import TYPED_PROPERTIES, documents, es68_sandbox, options, raw_caller, replay_in_process
from workers.common.clusters import ClusterConnection
from workers.cutover.reverse import reverse_options

PROPERTIES = TYPED_PROPERTIES
es68 = pytest.fixture(scope="module")(es68_sandbox)


@pytest.mark.matrix
def test_typeless_target_traffic_is_replayed_typed_onto_an_es6_source(sandbox: SandboxState, es68: str,
                                                                      tmp_path: Path) -> None:
    assert sandbox.kafka is not None
    brokers, target = sandbox.kafka.bootstrap, sandbox.engines["target"].url
    reverse_topic = create_topic(brokers, partitions=2)
    index = unique("typed")
    renamed = f"{index}-new"
    OpenSearch(hosts=[es68]).indices.create(index=index, body={
        "settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": {"doc": {"properties": PROPERTIES}}})
    OpenSearch(hosts=[target]).indices.create(index=renamed, body={
        "settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": {"properties": PROPERTIES}})
    # A proxy sending to the target and capturing to the reverse topic: what a switched proxy does.
    proxy = RunningProxy(proxy_options(target, brokers, reverse_topic))
    try:
        call = raw_caller(OpenSearch(hosts=[proxy.url]))

        call("PUT", f"/{renamed}/_doc/1", {"n": 1, "who": "a"})
        call("PUT", f"/{renamed}/_doc/2", {"n": 2, "who": "a"})
        call("POST", f"/{renamed}/_doc", {"n": 3, "who": "auto"})
        call("POST", f"/{renamed}/_update/1", {"doc": {"n": 10}})
        call("PUT", f"/{renamed}/_create/c1", {"n": 7, "who": "create"})
        call("POST", f"/{renamed}/_bulk", [{"index": {"_id": "b1"}}, {"n": 4, "who": "bulk"},
                                           {"index": {}}, {"n": 5, "who": "bulk-auto"}], ndjson=True)
        call("POST", "/_bulk", [{"index": {"_index": renamed, "_id": "b2"}}, {"n": 6, "who": "bulk"},
                                {"delete": {"_index": renamed, "_id": "2"}},
                                {"update": {"_index": renamed, "_id": "b1"}}, {"doc": {"n": 40}}], ndjson=True)
        call("DELETE", f"/{renamed}/_doc/b2")
        call("GET", f"/{renamed}/_search", {"query": {"match_all": {}}})
    finally:
        proxy.stop()

    forward = options(brokers, "capture-traffic", target, rename=[f"{index}={renamed}"],
                      dead_letters=str(tmp_path / "letters"))
    reverse = reverse_options(forward, source=ClusterConnection(endpoint=es68), reverse_topic=reverse_topic,
                              group_id=unique("reverse"), restore_types={index: "doc"})
    final, replayed = replay_in_process(reverse)
    assert final["stats"]["dead_letters"] == 0, [p.read_text() for p in (tmp_path / "letters").rglob("*.jsonl")]
    on_source, on_target = documents(es68, index), documents(target, renamed)
    assert on_source == on_target and len(on_source) == 5, (on_source, on_target)
    assert final["stats"]["auto_ids_pinned"] == 2
    sent = [e.request.path for tx in replayed for e in tx.exchanges]
    assert f"/{index}/doc/1" in sent and f"/{index}/doc/1/_update" in sent and f"/{index}/doc/c1/_create" in sent
    assert not any("/_doc" in path or renamed in path for path in sent), sent
