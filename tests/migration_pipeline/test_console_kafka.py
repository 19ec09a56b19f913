"""``console kafka describe|lag|dump`` against the session sandbox's real Kafka: capture records made with the
record encoder (exact timestamps, gzip and chunked bodies) and, once, by a real capture proxy."""

from __future__ import annotations

import gzip
import inspect
import json
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner, Result

from migration_pipeline.cli.console import app
from migration_pipeline.sandbox.paths import NAME_ENV
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.capture.conftest import RunningProxy, proxy_options
from workers.capture import cli as proxy_cli
from workers.capture.records import Kind, encode
from workers.capture.topic_admin import DEFAULT_TOPIC, consumer_lag

CONN, OTHER = "n1.abc.1", "n1.abc.2"
BODY = b'{"title": "hello"}'
GZIPPED = gzip.compress(BODY)
PUT = (b"PUT /idx/_doc/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic c2VjcmV0\r\nContent-Encoding: gzip\r\n"
       b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(GZIPPED), GZIPPED))
CREATED = b'HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n{"result":"created"}'
SEARCH = b"GET /idx/_search?q=x HTTP/1.1\r\nHost: x\r\n\r\n"
FOUND = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
DOWN = b"GET /down HTTP/1.1\r\n\r\n"
BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n"


@dataclass(frozen=True)
class Topic:
    """A topic holding a known conversation: partition 0 one connection (6 records, one a second apart), partition
    1 a single transaction (2 records); group ``group`` committed offset 2 on partition 0 only."""

    brokers: str
    name: str
    group: str
    t0_ms: int


def _meta(t_ns: int, **fields: Any) -> dict[str, Any]:
    return {"node": "n1", **fields, "received": t_ns}


def _conversation(t0_ns: int) -> list[tuple[int, str, bytes]]:
    """(partition, connection, value) in produce order."""
    stamps = {"forwarded": t0_ns, "response_started": t0_ns + 2_000_000, "response_finished": t0_ns + 3_000_000}
    return [
        (0, CONN, encode(Kind.OPEN, {"node": "n1", "conn": CONN, "t": t0_ns, "client": "127.0.0.1:5555",
                                     "listener": "127.0.0.1:9200", "tls": False})),
        (0, CONN, encode(Kind.REQUEST, _meta(t0_ns, conn=CONN, seq=1, part=0, offset=0, last=True, method="PUT",
                                             target="/idx/_doc/1"), PUT)),
        (0, CONN, encode(Kind.RESPONSE, _meta(t0_ns, conn=CONN, seq=1, part=0, offset=0, last=True, status=201,
                                              request_bytes=len(PUT), response_bytes=len(CREATED), **stamps),
                         CREATED)),
        (0, CONN, encode(Kind.TRANSACTION, _meta(t0_ns, conn=CONN, seq=2, method="GET", target="/idx/_search?q=x",
                                                 status=200, request_bytes=len(SEARCH), response_bytes=len(FOUND),
                                                 **stamps), SEARCH + FOUND)),
        (0, CONN, encode(Kind.LOCAL, _meta(t0_ns, conn=CONN, seq=3, answered=t0_ns, status=502, method="GET",
                                           target="/down", cause="destination unreachable", error="refused",
                                           request_bytes=len(DOWN), response_bytes=len(BAD_GATEWAY)),
                         DOWN + BAD_GATEWAY)),
        (0, CONN, encode(Kind.CLOSE, {"node": "n1", "conn": CONN, "t": t0_ns, "reason": "client closed",
                                      "requests": 3, "suppressed": 0})),
        (1, OTHER, encode(Kind.OPEN, {"node": "n1", "conn": OTHER, "t": t0_ns, "client": "127.0.0.1:6666",
                                      "tls": True})),
        (1, OTHER, encode(Kind.TRANSACTION, _meta(t0_ns, conn=OTHER, seq=1, method="GET", target="/idx/_search?q=x",
                                                  status=200, request_bytes=len(SEARCH), response_bytes=len(FOUND),
                                                  **stamps), SEARCH + FOUND)),
    ]


def commit(brokers: str, group: str, topic: str, partition: int, offset: int) -> None:
    """Commit ``offset`` for ``group`` as a consumer would (a new group's coordinator may need a moment)."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": False})
    try:
        for _ in range(40):
            try:
                consumer.commit(offsets=[TopicPartition(topic, partition, offset)], asynchronous=False)
                return
            except KafkaException:
                time.sleep(0.25)
        raise AssertionError(f"could not commit for group {group}")
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def topic(sandbox: SandboxState) -> Topic:
    assert sandbox.kafka is not None
    brokers, name, group = sandbox.kafka.bootstrap, unique("console-kafka"), unique("replayer")
    admin = AdminClient({"bootstrap.servers": brokers})
    for future in admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)]).values():
        future.result(30)
    # A minute ago, records one second apart per partition: the Kafka timestamps make the time lag exact.
    t0_ms = (time.time_ns() // 1_000_000) - 60_000
    producer = Producer({"bootstrap.servers": brokers})
    counts = [0, 0]
    for partition, conn, value in _conversation(t0_ms * 1_000_000):
        producer.produce(name, value, key=conn, partition=partition, timestamp=t0_ms + 1000 * counts[partition])
        counts[partition] += 1
    assert producer.flush(30) == 0
    commit(brokers, group, name, 0, 2)
    return Topic(brokers, name, group, t0_ms)


def console(*args: str) -> Result:
    """``console ARGS`` in-process; stdout and stderr apart."""
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def kafka(topic: Topic, command: str, *args: str) -> Result:
    """``console kafka COMMAND --brokers … --topic … ARGS``."""
    return console("kafka", command, "--brokers", topic.brokers, "--topic", topic.name, *args)


def test_describe_shows_partitions_watermarks_and_the_groups_with_offsets(topic: Topic) -> None:
    result = kafka(topic, "describe", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["records"] == 8
    assert [(p["partition"], p["low"], p["high"], p["records"], p["leader"]) for p in info["partitions"]] == [
        (0, 0, 6, 6, 1), (1, 0, 2, 2, 1)]
    groups = {g["group"]: g for g in info["groups"]}
    assert groups[topic.group]["committed"] == {"0": 2}
    # 4 records left on partition 0, and partition 1 (no commit) counts whole.
    assert groups[topic.group]["lag"] == 6
    text = kafka(topic, "describe")
    assert text.exit_code == 0 and topic.group in text.stdout and "8 records" in text.stdout


def test_lag_per_partition_in_records_and_seconds(topic: Topic) -> None:
    result = kafka(topic, "lag", "--group", topic.group, "--json")
    assert result.exit_code == 0, result.output
    lag = json.loads(result.stdout)
    rows = {p["partition"]: p for p in lag["partitions"]}
    assert (rows[0]["committed"], rows[0]["high"], rows[0]["lag"]) == (2, 6, 4)
    assert (rows[1]["committed"], rows[1]["lag"]) == (None, 2)
    # Partition 0: the record at offset 2 was written 3 s before the newest (offset 5); partition 1: 1 s.
    assert rows[0]["committed_time_ms"] == topic.t0_ms + 2000 and rows[0]["newest_time_ms"] == topic.t0_ms + 5000
    assert (rows[0]["time_lag_s"], rows[1]["time_lag_s"]) == (3.0, 1.0)
    assert (lag["total_lag"], lag["time_lag_s"], lag["state"], lag["committed_any"]) == (6, 3.0, "empty", True)
    text = kafka(topic, "lag", "--group", topic.group)
    assert text.exit_code == 0 and "total lag: 6 records, 3.0 s" in text.stdout

    # The function a sensor calls; a group that never committed counts every record held, and is told so.
    assert consumer_lag(topic.brokers, topic.name, topic.group, timestamps=False).total_lag == 6
    nobody = kafka(topic, "lag", "--group", unique("nobody"), "--json")
    assert json.loads(nobody.stdout)["total_lag"] == 8 and "has committed no offset" in nobody.stderr


def test_dump_raw_one_line_per_record(topic: Topic) -> None:
    result = kafka(topic, "dump")
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(f[0], f[1], f[2]) for f in lines] == [
        ("0", "0", "open"), ("0", "1", "request"), ("0", "2", "response"), ("0", "3", "transaction"),
        ("0", "4", "local"), ("0", "5", "close"), ("1", "0", "open"), ("1", "1", "transaction")]
    *_, conn, seq, meta, size = lines[1]
    assert (conn, seq, int(size)) == (CONN, "1", len(PUT)) and json.loads(meta)["target"] == "/idx/_doc/1"
    # Slices: one partition, offsets (end excluded), times, a limit.
    assert len(kafka(topic, "dump", "--partition", "1").stdout.splitlines()) == 2
    sliced = kafka(topic, "dump", "--start-offset", "2", "--end-offset", "4").stdout.splitlines()
    assert [line.split("\t")[:2] for line in sliced] == [["0", "2"], ["0", "3"]]
    start = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=topic.t0_ms + 3000)).isoformat()
    timed = kafka(topic, "dump", "--start-time", start).stdout.splitlines()
    assert [line.split("\t")[:2] for line in timed] == [["0", "3"], ["0", "4"], ["0", "5"]]
    assert len(kafka(topic, "dump", "--limit", "3").stdout.splitlines()) == 3


def test_dump_http_renders_requests_and_responses(topic: Topic) -> None:
    result = kafka(topic, "dump", "--mode", "http", "--partition", "0")
    assert result.exit_code == 0, result.output
    text = result.stdout
    for expected in ("p0@0 open n1.abc.1 from 127.0.0.1:5555", "PUT /idx/_doc/1 HTTP/1.1",
                     "Authorization: Basic <redacted>", "(chunked; gzip, ", BODY.decode(), "-> 201",
                     "HTTP/1.1 201 Created", '{"result":"created"}', "GET /idx/_search?q=x HTTP/1.1", "-> 200",
                     "answered by the proxy n1.abc.1 #3: GET /down -> 502 destination unreachable (refused)",
                     "close n1.abc.1: client closed after 3 request(s), 0 missing"):
        assert expected in text, expected
    assert "c2VjcmV0" not in text
    # Started inside the first transaction: its response alone is skipped, the rest shown; a limit counts events.
    later = kafka(topic, "dump", "--mode", "http", "--partition", "0", "--start-offset", "2")
    assert "PUT /idx" not in later.stdout and "GET /idx/_search" in later.stdout
    assert kafka(topic, "dump", "--mode", "http", "--limit", "1").stdout.splitlines() == [
        next(line for line in text.splitlines() if line.startswith("p0@0 open"))]


def test_dump_http_of_a_real_proxy_capture(sandbox: SandboxState, topic: Topic) -> None:
    name = unique("console-proxy")
    admin = AdminClient({"bootstrap.servers": topic.brokers})
    for future in admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)]).values():
        future.result(30)
    proxy = RunningProxy(proxy_options(sandbox.engines["source"].url, topic.brokers, name))
    index = unique("dumped")
    try:
        put = urllib.request.Request(f"{proxy.url}/{index}/_doc/1?refresh=true", data=b'{"a": 1}', method="PUT",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(put, timeout=30) as response:
            assert response.status == 201
        with urllib.request.urlopen(f"{proxy.url}/{index}/_count", timeout=30) as response:
            assert json.load(response)["count"] == 1
    finally:
        proxy.stop()
    result = console("kafka", "dump", "--brokers", topic.brokers, "--topic", name, "--mode", "http")
    assert result.exit_code == 0, result.output
    for expected in (f"PUT /{index}/_doc/1?refresh=true HTTP/1.1", "-> 201", f"GET /{index}/_count HTTP/1.1",
                     "-> 200", '"count":1'):
        assert expected in result.stdout, expected


def test_brokers_from_the_environment_or_the_sandbox_and_clear_errors(topic: Topic,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # The session sandbox is found by its name (the fixture exports it); the topic from the variable.
    monkeypatch.delenv("MIGRATION_KAFKA_BROKERS", raising=False)
    monkeypatch.setenv("MIGRATION_KAFKA_TOPIC", topic.name)
    found = console("kafka", "describe", "--json")
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["brokers"] == topic.brokers and "local sandbox" in found.stderr
    missing = console("kafka", "lag", "--topic", unique("no-such-topic"))
    assert missing.exit_code == 2 and "--topic" in missing.stderr and "does not exist" in missing.stderr
    monkeypatch.setenv(NAME_ENV, unique("no-sandbox"))
    nowhere = console("kafka", "describe")
    assert nowhere.exit_code == 2 and "--brokers" in nowhere.stderr and "MIGRATION_KAFKA_BROKERS" in nowhere.stderr
    monkeypatch.setenv("MIGRATION_KAFKA_BROKERS", topic.brokers)
    assert console("kafka", "dump", "--limit", "1").stdout.startswith("0\t0\topen")
    bad = console("kafka", "dump", "--mode", "json")
    assert bad.exit_code == 2 and "--mode" in bad.stderr


def test_default_topic_is_the_proxy_default() -> None:
    assert inspect.signature(proxy_cli.proxy).parameters["kafka_topic"].default == DEFAULT_TOPIC
