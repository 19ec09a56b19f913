"""The replayer against real engines: traffic through a real capture proxy (ES 7.10 source, real Kafka), a backfill
from a snapshot taken while that traffic flows, then the replay onto the OS 2.19 target."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from opensearchpy import NotFoundError, OpenSearch

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.capture.conftest import RunningProxy, create_topic, proxy_options
from tests.workers.replay.live import committed_everything, documents, options, replay_in_process
from tests.workers.rfs.helpers import options as backfill_options
from workers.capture.reader import Transaction, read_transactions
from workers.replay.start_time import replay_start_ms, snapshot_start_ms
from workers.replay.summary import summarize
from workers.rfs.worker import run_shard
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.create import create_snapshot, register_fs_repository

MAPPINGS = {"properties": {"n": {"type": "long"}, "u": {"type": "long"}, "who": {"type": "keyword"},
                           "tag": {"type": "keyword"}}}


@pytest.fixture
def proxy(sandbox: SandboxState) -> Iterator[Callable[[str], RunningProxy]]:
    started: list[RunningProxy] = []
    assert sandbox.kafka is not None

    def start(topic: str) -> RunningProxy:
        assert sandbox.kafka is not None
        running = RunningProxy(proxy_options(sandbox.engines["source"].url, sandbox.kafka.bootstrap, topic))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def create_index(url: str, index: str, mappings: dict[str, Any] = MAPPINGS, shards: int = 2) -> None:
    OpenSearch(hosts=[url]).indices.create(index=index, body={
        "settings": {"number_of_shards": shards, "number_of_replicas": 0}, "mappings": mappings})


class Traffic:
    """Clients writing through the proxy: index, partial update, delete, bulk with explicit and auto ids, search.
    Each client works on ids of its own, so that the final state depends only on each connection's order."""

    def __init__(self, url: str, index: str, clients: int, seed: int = 7) -> None:
        self.url, self.index = url, index
        self.stop = threading.Event()
        self.done = [0] * clients
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, args=(i, seed + i), daemon=True) for i in range(clients)]

    def start(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def wait_for(self, operations: int, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while sum(self.done) < operations:
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"only {sum(self.done)} operations in {timeout_s}s"
            time.sleep(0.05)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
        assert not self.errors, self.errors

    def _run(self, worker: int, seed: int) -> None:
        client = OpenSearch(hosts=[self.url], timeout=60)
        rng = random.Random(seed)
        try:
            while not self.stop.is_set():
                self._one(client, rng, f"c{worker}")
                self.done[worker] += 1
        except BaseException as exc:
            self.errors.append(exc)

    def _one(self, client: OpenSearch, rng: random.Random, who: str) -> None:
        doc_id = f"{who}-{rng.randrange(60)}"
        op = rng.random()
        if op < 0.35:
            client.index(index=self.index, id=doc_id, body={"n": rng.randrange(10**6), "who": who})
        elif op < 0.5:
            with contextlib.suppress(NotFoundError):
                client.update(index=self.index, id=doc_id, body={"doc": {"u": rng.randrange(10**6)}})
        elif op < 0.6:
            client.delete(index=self.index, id=doc_id, ignore=[404])
        elif op < 0.85:
            lines: list[dict[str, Any]] = []
            for _ in range(rng.randrange(2, 8)):
                kind = rng.random()
                target_id = f"{who}-{rng.randrange(60)}"
                if kind < 0.4:
                    lines += [{"index": {"_index": self.index, "_id": target_id}}, {"n": rng.randrange(10**6),
                                                                                     "who": who}]
                elif kind < 0.8:
                    lines += [{"index": {"_index": self.index}}, {"n": rng.randrange(10**6), "who": who,
                                                                   "tag": "auto"}]
                else:
                    lines.append({"delete": {"_index": self.index, "_id": target_id}})
            client.bulk(body=lines)
        else:
            client.search(index=self.index, body={"query": {"term": {"who": who}}, "size": 5})


def test_traffic_during_a_backfill_then_replay_makes_the_target_equal_the_source(
        sandbox: SandboxState, proxy: Callable[[str], RunningProxy], tmp_path: Path) -> None:
    assert sandbox.kafka is not None
    brokers = sandbox.kafka.bootstrap
    source_url, target_url = sandbox.engines["source"].url, sandbox.engines["target"].url
    topic = create_topic(brokers, partitions=3)
    index = unique("live")
    create_index(source_url, index)
    running = proxy(topic)
    traffic = Traffic(running.url, index, clients=3).start()
    began = time.monotonic()
    traffic.wait_for(250)
    # Longer than the overlap replayed before the snapshot, so that the replay does not cover the whole topic.
    time.sleep(max(0.0, began + 4.0 - time.monotonic()))

    # The snapshot, taken while the traffic flows (straight on the source, as the snapshot phase does).
    source = OpenSearch(hosts=[source_url], timeout=120)
    repo_path = str(Path(sandbox.engines["source"].repo_path) / unique("replay"))
    register_fs_repository(source, "r-" + index, repo_path)
    create_snapshot(source, "r-" + index, "snap", indices=index)
    started_ms = snapshot_start_ms(source, "r-" + index, "snap")
    traffic.wait_for(sum(traffic.done) + 250)
    traffic.finish()

    # The metadata step's index, then the backfill of every shard of the snapshot.
    create_index(target_url, index)
    store = open_blob_store(repo_path)
    opts = backfill_options(target_url, tmp_path)
    for shard in range(2):
        assert run_shard(store, "snap", index, shard, opts).status == "completed"

    final, replayed = replay_in_process(options(brokers, topic, target_url, from_timestamp_ms=replay_start_ms(
        started_ms, overlap_s=2.0), dead_letters=str(tmp_path / "letters")))
    stats = final["stats"]
    on_target, on_source = documents(target_url, index), documents(source_url, index)
    assert on_target == on_source
    assert stats["dead_letters"] == 0, [f.read_text()[:3000] for f in (tmp_path / "letters").rglob("*.jsonl")]
    assert stats["auto_ids_pinned"] > 0 and stats["auto_ids_unpinned"] == 0
    # It replayed from the snapshot's time, not the whole topic.
    # (A read is written to Kafka when its response is complete: its request may have arrived a moment earlier.)
    first = min(tx.source_received_ns for tx in replayed)
    assert first >= (started_ms - 2000 - 1000) * 1_000_000
    assert len(replayed) < len([e for e in read_transactions(brokers, topic) if isinstance(e, Transaction)])
    assert committed_everything(brokers, topic, f"g-{topic}")[0]


def test_a_record_the_target_refuses_is_dead_lettered_and_commits_pass_it(
        sandbox: SandboxState, proxy: Callable[[str], RunningProxy], tmp_path: Path) -> None:
    assert sandbox.kafka is not None
    brokers = sandbox.kafka.bootstrap
    source_url, target_url = sandbox.engines["source"].url, sandbox.engines["target"].url
    topic = create_topic(brokers, partitions=2)
    index = unique("refused")
    create_index(source_url, index, {"properties": {"n": {"type": "keyword"}, "tag": {"type": "keyword"}}})
    # The target disagrees on purpose: n is a number there, tag is analysed text.
    create_index(target_url, index, {"properties": {"n": {"type": "long"}, "tag": {"type": "text"}}})
    running = proxy(topic)
    clients = [OpenSearch(hosts=[running.url]) for _ in range(3)]
    for i in range(20):
        for c, client in enumerate(clients):
            client.index(index=index, id=f"{c}-{i}", body={"n": str(i), "tag": "Foo Bar"})
    clients[1].index(index=index, id="bad", body={"n": "not a number"}, refresh=True)
    for client in clients:
        client.search(index=index, body={"query": {"term": {"tag": "Foo Bar"}}})
        client.index(index=index, id=f"after-{id(client)}", body={"n": "7"})

    final, replayed = replay_in_process(options(brokers, topic, target_url, dead_letters=str(tmp_path / "letters"),
                                                tuples=str(tmp_path / "tuples")))
    stats = final["stats"]
    assert stats["dead_letters"] == 1
    letters = [orjson.loads(line) for f in (tmp_path / "letters").rglob("*.jsonl") for line in f.read_bytes()
               .splitlines()]
    assert len(letters) == 1 and letters[0]["captured_request"]["target"].startswith(f"/{index}/_doc/bad")
    assert "400" in letters[0]["reason"] and "mapper_parsing_exception" in letters[0]["target_response"]
    # Everything after it, on its connection and the others, was replayed and committed.
    target = documents(target_url, index)
    assert sorted(target) == sorted(documents(source_url, index).keys() - {"bad"}), (final, [
        (tx.conn, tx.seq, tx.source_request.target if tx.source_request else None, tx.error,
         [e.response.status if e.response else e.error for e in tx.exchanges]) for tx in replayed
        if tx.source_request and "after" in tx.source_request.path])
    assert committed_everything(brokers, topic, f"g-{topic}")[0]
    # The searches differ (a term query on analysed text finds nothing): classified, not dead-lettered.
    kinds = stats["comparisons"]
    assert kinds.get("hits_mismatch", 0) == 3, kinds
    # The tuples say the same, per method and path pattern.
    summary = summarize(str(tmp_path / "tuples"))
    searches = {pattern: counts for (method, pattern), counts in summary.counts.items() if "_search" in pattern}
    assert [dict(c) for c in searches.values()] == [{"hits_mismatch": 3}], summary.to_dict()
    assert summary.total == len(replayed)


def test_speedup_factor_scales_the_captured_gaps(sandbox: SandboxState, proxy: Callable[[str], RunningProxy]) -> None:
    assert sandbox.kafka is not None
    brokers = sandbox.kafka.bootstrap
    target_url = sandbox.engines["target"].url
    topic = create_topic(brokers, partitions=1)
    running = proxy(topic)
    client = OpenSearch(hosts=[running.url])
    for _ in range(5):
        client.cluster.health()
        time.sleep(0.5)

    def span(speedup: float) -> float:
        _, replayed = replay_in_process(options(brokers, topic, target_url, group_id=unique("speed"),
                                                max_speed=False, speedup_factor=speedup))
        starts = sorted(tx.exchanges[0].started_ns for tx in replayed if tx.exchanges)
        assert len(starts) == 5
        return (starts[-1] - starts[0]) / 1e9

    captured = 4 * 0.5
    at_1x, at_10x = span(1.0), span(10.0)
    # Tolerance: each span within 25% of the captured gaps divided by the factor (plus 50 ms of request time at 10x).
    assert 0.75 * captured <= at_1x <= 1.25 * captured + 0.1, at_1x
    assert at_10x <= 1.25 * captured / 10 + 0.05, at_10x
    assert at_1x / at_10x >= 6, (at_1x, at_10x)
