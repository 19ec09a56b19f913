"""The capture proxy between real clients, the sandbox's Elasticsearch source and its Kafka."""

from __future__ import annotations

import json
import random
import re
import socket
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from opensearchpy import OpenSearch, helpers

from migration_pipeline.sandbox.processes import free_port
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.capture.conftest import RunningProxy, create_topic, events, transactions
from workers.capture.options import Suppression, parse_added_header
from workers.capture.reader import ConnectionClosed, ConnectionOpened, Transaction, read_topic
from workers.capture.records import Kind

StartProxy = Callable[..., RunningProxy]


def source_url(sandbox: SandboxState) -> str:
    return sandbox.engines["source"].url


def brokers(sandbox: SandboxState) -> str:
    assert sandbox.kafka is not None
    return sandbox.kafka.bootstrap


def exchange(port: int, payload: bytes, *, shutdown: bool = True, timeout: float = 30.0) -> bytes:
    """Send raw bytes, then read everything until the proxy closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        if shutdown:
            sock.shutdown(socket.SHUT_WR)
        received = bytearray()
        while chunk := sock.recv(1 << 16):
            received += chunk
        return bytes(received)


def normalise(value: Any, names: dict[str, str]) -> Any:
    """A response without what legitimately differs between two runs (timings, index names)."""
    if isinstance(value, dict):
        return {k: normalise(v, names) for k, v in value.items() if k not in ("took",)}
    if isinstance(value, list):
        return [normalise(v, names) for v in value]
    if isinstance(value, str):
        for old, new in names.items():
            value = value.replace(old, new)
    return value


def workload(client: OpenSearch, index: str) -> list[Any]:
    """Index, update, delete, bulk and search; every response."""
    out: list[Any] = []
    out.append(client.indices.create(index=index, body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}}))
    out.append(client.index(index=index, body={"title": "one", "n": 1}, id="1"))
    out.append(client.index(index=index, body={"title": "two", "n": 2}, id="2", refresh=True))
    out.append(client.update(index=index, id="1", body={"doc": {"n": 10}}))
    out.append(client.delete(index=index, id="2"))
    # Random text, so that even gzipped the bulk body is larger than one capture record.
    actions = [{"_index": index, "_id": str(i), "_source": {"title": f"bulk {i}", "n": i,
                                                          "noise": random.Random(i).randbytes(400).hex()}}
               for i in range(3, 60)]
    ok, errors = helpers.bulk(client, actions, refresh=True)
    out.append((ok, errors))
    out.append(client.bulk(body=[{"delete": {"_index": index, "_id": "3"}}, {"index": {"_index": index, "_id": "x"}},
                                 {"title": "x"}], refresh=True))
    out.append(client.get(index=index, id="1"))
    out.append(client.search(index=index, body={"query": {"range": {"n": {"gte": 5}}}, "sort": ["n"], "size": 50}))
    out.append(client.count(index=index))
    out.append(client.exists(index=index, id="2"))
    return out


def test_opensearch_py_through_proxy_matches_direct_and_every_transaction_is_captured(
        sandbox: SandboxState, start_proxy: StartProxy) -> None:
    topic = create_topic(brokers(sandbox))
    proxy = start_proxy(source_url(sandbox), brokers(sandbox), topic, max_record_bytes=8192)
    direct_index, proxied_index = unique("direct"), unique("proxied")
    direct = OpenSearch(source_url(sandbox))
    # Gzip request bodies and responses (Accept-Encoding), so compressed bodies pass through too.
    proxied = OpenSearch(proxy.url, http_compress=True)
    try:
        expected = normalise(workload(direct, direct_index), {direct_index: "INDEX"})
        got = normalise(workload(proxied, proxied_index), {proxied_index: "INDEX"})
    finally:
        direct.close()
        proxied.close()
    assert got == expected
    requests = sum(proxy.metric("capture_proxy_requests_total", method=m) for m in ("GET", "PUT", "POST", "DELETE",
                                                                                     "HEAD"))
    assert requests >= 11
    proxy.stop()  # flushes Kafka and records the connection closes
    # Every record's acknowledgement was timed, and every write's response waited for one.
    assert proxy.server.sink is not None
    produced = proxy.server.sink.produced
    assert produced > requests
    assert proxy.metric("capture_proxy_capture_latency_seconds_count") == produced
    assert proxy.metric("capture_proxy_capture_latency_seconds_bucket", le="+Inf") == produced
    assert proxy.metric("capture_proxy_capture_latency_seconds_sum") > 0
    writes = sum(proxy.metric("capture_proxy_requests_total", method=m) for m in ("PUT", "DELETE"))
    assert proxy.metric("capture_proxy_ack_wait_seconds_count") >= writes > 0

    found = events(brokers(sandbox), topic)
    txns = [e for e in found if isinstance(e, Transaction)]
    assert len(txns) == requests
    by_conn: dict[str, list[Transaction]] = {}
    for txn in txns:
        by_conn.setdefault(txn.conn, []).append(txn)
    opened = {e.conn for e in found if isinstance(e, ConnectionOpened)}
    closed = {e.conn for e in found if isinstance(e, ConnectionClosed)}
    assert set(by_conn) <= opened and opened == closed
    for conn_txns in by_conn.values():
        assert [t.seq for t in conn_txns] == list(range(1, len(conn_txns) + 1))  # in order, none missing
    for txn in txns:
        assert txn.request.startswith(f"{txn.method} {txn.target} HTTP/1.1\r\n".encode())
        assert txn.response is not None and txn.response.startswith(f"HTTP/1.1 {txn.status} ".encode())
        stamps = txn.timestamps
        assert stamps["received"] <= stamps["forwarded"] <= stamps["response_started"] <= stamps["response_finished"]
    bulk = [t for t in txns if t.target.startswith("/_bulk")]
    assert bulk and all(b"content-encoding: gzip" in t.request.lower() for t in bulk)
    # The bulk of 57 documents is larger than one 8 KiB record: it was split and reassembled.
    assert max(len(t.request) for t in bulk) > 8192 or max(len(t.response or b"") for t in bulk) > 8192


def test_exact_bytes_chunked_pipelined_and_split_records(sandbox: SandboxState, start_proxy: StartProxy) -> None:
    topic = create_topic(brokers(sandbox))
    proxy = start_proxy(source_url(sandbox), brokers(sandbox), topic, max_record_bytes=4096)
    index = unique("raw")
    docs = b"".join(b'{"index":{"_id":"%d"}}\n{"body":"%s"}\n' % (i, b"y" * 500) for i in range(60))
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(docs[i:i + 777]), docs[i:i + 777]) for i in range(0, len(docs), 777))
    payload = (
        b"PUT /" + index.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{}"
        + b"POST /" + index.encode() + b"/_bulk?refresh=true HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n"
        # two pipelined requests in one write, then HEAD (a response without a body) and a closing request
        + b"GET /" + index.encode() + b"/_count HTTP/1.1\r\nHost: x\r\n\r\n"
        + b"GET /" + index.encode() + b"/_doc/7 HTTP/1.1\r\nHost: x\r\n\r\n"
        + b"HEAD /" + index.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        + b"GET /_cluster/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    received = exchange(proxy.server.port, payload, shutdown=False)
    statuses = [int(s) for s in re.findall(rb"HTTP/1\.1 (\d{3}) ", received)]
    # Elasticsearch runs pipelined requests concurrently (answering in order), so the reads after the bulk may
    # or may not see its index yet; the index creation and the bulk itself succeed.
    assert len(statuses) == 6 and statuses[:2] == [200, 200] and statuses[5] == 200
    assert b'"errors":false' in received
    proxy.stop()
    txns = transactions(brokers(sandbox), topic)
    assert [t.seq for t in txns] == [1, 2, 3, 4, 5, 6]
    assert len({t.conn for t in txns}) == 1
    # What the client sent and received is exactly the concatenation of the captured messages.
    assert b"".join(t.request for t in txns) == payload
    assert b"".join(t.response or b"" for t in txns) == received
    assert [t.status for t in txns] == statuses
    assert [t.method for t in txns] == ["PUT", "POST", "GET", "GET", "HEAD", "GET"]


def test_source_down_gives_502_and_the_proxy_keeps_serving(start_proxy: StartProxy) -> None:
    closed_port = free_port()  # nothing listens there: the source is down
    proxy = start_proxy(f"http://127.0.0.1:{closed_port}", None, "unused")
    for _ in range(2):
        with pytest.raises(urllib.request.HTTPError) as failure:
            urllib.request.urlopen(proxy.url + "/_cluster/health", timeout=10)
        assert failure.value.code == 502
    # A keep-alive connection gets 502 for each request and stays usable.
    received = exchange(proxy.server.port, b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n",
                        shutdown=False)
    assert received.count(b"HTTP/1.1 502 Bad Gateway") == 2
    with urllib.request.urlopen(proxy.admin_url + "/health", timeout=10) as health:
        assert json.load(health)["status"] == "ok"
    assert proxy.metric("capture_proxy_upstream_errors_total") == 4


@pytest.mark.parametrize("garbage", [b"NOT HTTP AT ALL\r\n\r\n", b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                                     b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"a" * 100_000 + b"\r\n\r\n"])
def test_malformed_http_gets_400_and_no_crash(sandbox: SandboxState, start_proxy: StartProxy, garbage: bytes) -> None:
    proxy = start_proxy(source_url(sandbox), None, "unused")
    received = exchange(proxy.server.port, garbage)
    assert received.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 "))
    with urllib.request.urlopen(proxy.url + "/", timeout=10) as ok:
        assert ok.status == 200
    assert proxy.metric("capture_proxy_malformed_requests_total") == 1


def test_malformed_chunked_body_ends_the_connection_without_hanging(sandbox: SandboxState,
                                                                    start_proxy: StartProxy) -> None:
    proxy = start_proxy(source_url(sandbox), None, "unused")
    began = time.monotonic()
    received = exchange(proxy.server.port, b"POST /_bulk HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                        shutdown=False, timeout=20)
    assert time.monotonic() - began < 15
    assert received == b"" or received.startswith(b"HTTP/1.1 ")
    with urllib.request.urlopen(proxy.url + "/", timeout=10) as ok:
        assert ok.status == 200


def test_slow_clients_do_not_hold_up_others(sandbox: SandboxState, start_proxy: StartProxy) -> None:
    proxy = start_proxy(source_url(sandbox), brokers(sandbox), create_topic(brokers(sandbox)))
    index = unique("slow")
    client = OpenSearch(source_url(sandbox))
    big = "z" * (2 << 20)
    for i in range(4):
        client.index(index=index, body={"big": big}, id=str(i))
    client.indices.refresh(index=index)
    client.close()
    # One client stops half-way through a head; another asks for an 8 MB response and does not read it.
    stalled = socket.create_connection(("127.0.0.1", proxy.server.port))
    stalled.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Partial: ")
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.connect(("127.0.0.1", proxy.server.port))
    reader.sendall(f"GET /{index}/_search?size=4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    time.sleep(1.0)  # the proxy is now blocked writing to the non-reading client
    try:
        durations = []
        for _ in range(20):
            began = time.monotonic()
            with urllib.request.urlopen(proxy.url + "/_cluster/health", timeout=10) as ok:
                assert ok.status == 200
            durations.append(time.monotonic() - began)
        assert max(durations) < 1.0, durations
        # The slow reader still gets its whole response once it reads.
        received = bytearray()
        reader.settimeout(30)
        while chunk := reader.recv(1 << 16):
            received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK") and received.count(big.encode()) == 4
    finally:
        stalled.close()
        reader.close()


def test_suppression_rules_and_added_header(sandbox: SandboxState, start_proxy: StartProxy) -> None:
    topic = create_topic(brokers(sandbox))
    proxy = start_proxy(source_url(sandbox), brokers(sandbox), topic,
                        suppression=Suppression.parse(["X-No-Capture=yes|true"], ["HEAD"], [r"/_cluster/.*"]),
                        added_headers=(parse_added_header("X-Opaque-Id: via-capture-proxy"),))
    paths = [("GET", "/", {}), ("GET", "/_cluster/health", {}), ("HEAD", "/", {}), ("GET", "/_nodes", {}),
             ("GET", "/?pretty=true", {"X-No-Capture": "yes"}), ("GET", "/?human=true", {"X-No-Capture": "no"})]
    for method, path, headers in paths:
        request = urllib.request.Request(proxy.url + path, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            # Elasticsearch echoes X-Opaque-Id: the added header reached the source.
            assert response.headers["X-Opaque-Id"] == "via-capture-proxy"
    proxy.stop()
    txns = transactions(brokers(sandbox), topic)
    assert sorted((t.method, t.target) for t in txns) == [("GET", "/"), ("GET", "/?human=true"), ("GET", "/_nodes")]
    assert proxy.metric("capture_proxy_suppressed_requests_total") == 3
    # The capture holds the client's request as sent, without the added header.
    assert all(b"X-Opaque-Id" not in t.request for t in txns)
    # Each small read is one record; the rest are connection events.
    kinds = Counter(r.kind for r in read_topic(brokers(sandbox), topic))
    assert kinds[Kind.TRANSACTION] == 3 and kinds[Kind.REQUEST] == kinds[Kind.RESPONSE] == 0


def test_graceful_shutdown_drains_in_flight_requests(sandbox: SandboxState, start_proxy: StartProxy) -> None:
    topic = create_topic(brokers(sandbox))
    proxy = start_proxy(source_url(sandbox), brokers(sandbox), topic)
    idle = socket.create_connection(("127.0.0.1", proxy.server.port))
    busy = socket.create_connection(("127.0.0.1", proxy.server.port))
    # The source holds this request for 2 s before answering 408.
    busy.sendall(b"GET /_cluster/health?wait_for_nodes=9&timeout=2s HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    began = time.monotonic()
    proxy.stop()
    assert 1.0 < time.monotonic() - began < 10
    busy.settimeout(5)
    answer = busy.recv(1 << 16)
    assert answer.startswith(b"HTTP/1.1 408 ")
    idle.settimeout(5)
    assert idle.recv(10) == b""  # the idle keep-alive connection was closed
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.server.port), timeout=2).sendall(b"GET / HTTP/1.1\r\n\r\n")
    txns = transactions(brokers(sandbox), topic)
    assert [t.status for t in txns] == [408]


@pytest.mark.parametrize("mode", ["forward", "reject"])
def test_expect_100_continue_passes_at_once(sandbox: SandboxState, start_proxy: StartProxy, mode: str) -> None:
    topic = create_topic(brokers(sandbox))
    proxy = start_proxy(source_url(sandbox), brokers(sandbox), topic, on_capture_failure=mode)
    index = unique("expect")
    with socket.create_connection(("127.0.0.1", proxy.server.port), timeout=10) as sock:
        sock.sendall(f"PUT /{index}/_doc/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 7\r\nExpect: 100-continue\r\n\r\n".encode())
        sock.settimeout(0.5)  # curl gives up waiting after 1 s; the 100 must come from the source before that
        assert sock.recv(1000) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.settimeout(10)
        sock.sendall(b'{"a":1}')
        answer = sock.recv(1 << 16)
    assert answer.startswith(b"HTTP/1.1 201 Created")
    proxy.stop()
    (txn,) = transactions(brokers(sandbox), topic)
    assert txn.response == b"HTTP/1.1 100 Continue\r\n\r\n" + answer and txn.status == 201
