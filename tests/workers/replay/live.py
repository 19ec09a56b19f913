"""Shared pieces of the replayer's tests against real engines: traffic through a real proxy, replayers in-process
or as processes, and document comparisons of source and target."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from opensearchpy import OpenSearch, helpers

from workers.common.clusters import ClusterConnection
from workers.replay.compare import compare
from workers.replay.messages import ReplayedTransaction
from workers.replay.options import ReplayOptions
from workers.replay.replayer import Replayer
from workers.replay.tuples import TupleWriter

REPO = Path(__file__).resolve().parents[3]


def documents(url: str, index: str) -> dict[str, str]:
    """Every document of ``index``: id -> canonical JSON source (an error on a duplicate id)."""
    client = OpenSearch(hosts=[url], timeout=120)
    client.indices.refresh(index=index)
    out: dict[str, str] = {}
    for hit in helpers.scan(client, index=index, query={"query": {"match_all": {}}}, size=1000):
        assert hit["_id"] not in out, f"duplicate id {hit['_id']}"
        out[hit["_id"]] = json.dumps(hit["_source"], sort_keys=True)
    return out


def options(brokers: str, topic: str, target: str, **overrides: Any) -> ReplayOptions:
    """A replayer for a test: max speed, exits when caught up and idle for 3 s, a group of its own."""
    base: dict[str, Any] = {"brokers": brokers, "topic": topic, "group_id": f"g-{topic}",
                            "target": ClusterConnection(endpoint=target), "max_speed": True, "exit_when_idle_s": 3.0,
                            "commit_interval_s": 0.2}
    return ReplayOptions(**(base | overrides))


def replay_in_process(opts: ReplayOptions) -> tuple[dict[str, Any], list[ReplayedTransaction]]:
    """Run a replayer here until it is idle; its final status and every transaction it replayed."""
    seen: list[ReplayedTransaction] = []

    def keep(tx: ReplayedTransaction) -> Any:
        seen.append(tx)
        return compare(tx)

    # Tuples written as a replayer process writes them, when the options name a place.
    tuples = TupleWriter(opts.tuples, writer_id="test") if opts.tuples else None
    final = asyncio.run(Replayer(opts, compare=keep, tuples=tuples).run())
    return final, seen


def replayer_process(brokers: str, topic: str, target: str, status_file: Path, *extra: str) -> subprocess.Popen[str]:
    """``python -m workers.replay`` as its own process (what a pod runs)."""
    args = [sys.executable, "-m", "workers.replay", "--kafka-brokers", brokers, "--kafka-topic", topic,
            "--target-endpoint", target, "--group-id", f"g-{topic}", "--status-file", str(status_file),
            "--json", *extra]
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def committed_everything(brokers: str, topic: str, group: str) -> tuple[bool, dict[int, tuple[int, int]]]:
    """Whether ``group`` committed every partition of ``topic`` to its end; per partition (committed, end)."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=30)}
        out = {}
        for tp in tps:
            _low, high = consumer.get_watermark_offsets(tp, timeout=30)
            out[tp.partition] = (committed[tp.partition], high)
        return all(c == h or (h == 0) for c, h in out.values()), out
    finally:
        consumer.close()


def raw_caller(client: OpenSearch) -> Any:
    """``call(method, path, body, ndjson=False)``: a request sent as is (typed or typeless paths alike), a list body
    as NDJSON lines when ``ndjson``."""

    def call(method: str, path: str, body: object = None, ndjson: bool = False) -> object:
        data = "".join(json.dumps(line) + "\n" for line in body) if ndjson and isinstance(body, list) else body
        headers = {"content-type": "application/x-ndjson" if ndjson else "application/json"}
        return client.transport.perform_request(method, path, body=data, headers=headers)

    return call


# The mapping of the typed-traffic tests (an Elasticsearch 6.8 source, typeless on the target).
TYPED_PROPERTIES = {"n": {"type": "long"}, "who": {"type": "keyword"}}


def es68_sandbox() -> Iterator[str]:
    """An Elasticsearch 6.8 source of its own, stopped afterwards (a module fixture of the typed tests)."""
    from migration_pipeline.sandbox import manager
    from tests.conftest import unique

    name = unique("es68")
    try:
        state = manager.up(manager.UpRequest(source="elasticsearch:6.8.23", target=None), name=name)
        yield state.engines["source"].url
    finally:
        manager.down(name)
