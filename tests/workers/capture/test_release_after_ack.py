"""Release-after-ack: a write reaches the source whole only once Kafka acknowledged its capture, in both failure
modes; reads are not held. A stub source notes when each request arrived and whether Kafka held its record then;
the proxy's acknowledgements are delayed, so that a write forwarded early would show."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from migration_pipeline.sandbox.processes import free_port
from migration_pipeline.sandbox.state import SandboxState
from tests.workers.capture.conftest import RunningProxy, create_topic
from workers.capture.reader import read_topic
from workers.capture.records import Kind

StartProxy = Callable[..., RunningProxy]
# How long the proxy learns of each acknowledgement late (Kafka itself already holds the record).
ACK_DELAY_S = 0.6


class StubSource:
    """A source that answers 200 to everything and notes, per request target, when the request arrived whole and
    whether Kafka held the request's whole capture at that moment."""

    def __init__(self, brokers: str | None, topic: str) -> None:
        self.arrivals: dict[str, tuple[float, bool]] = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def serve(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.monotonic()
                stub.arrivals[self.path] = (arrived, self.path in captured_requests(brokers, topic) if brokers
                                            else False)
                body = b'{"ok":true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_source() -> Iterator[Callable[[str | None, str], StubSource]]:
    stubs: list[StubSource] = []

    def make(brokers: str | None, topic: str) -> StubSource:
        stubs.append(StubSource(brokers, topic))
        return stubs[-1]

    yield make
    for stub in stubs:
        stub.close()


def captured_requests(brokers: str, topic: str) -> set[str]:
    """The targets of the requests whose every record Kafka holds now."""
    targets: dict[tuple[str, int], str] = {}
    complete: set[tuple[str, int]] = set()
    for record in read_topic(brokers, topic, timeout_s=30):
        if record.kind is Kind.REQUEST:
            key = (str(record.meta["conn"]), int(record.meta["seq"]))
            if record.meta["part"] == 0:
                targets[key] = str(record.meta["target"])
            if record.meta["last"]:
                complete.add(key)
    return {target for key, target in targets.items() if key in complete}


def delay_acknowledgements(proxy: RunningProxy, delay_s: float) -> None:
    """The proxy hears of every Kafka acknowledgement ``delay_s`` late."""
    sink, loop = proxy.server.sink, proxy._loop
    assert sink is not None and loop is not None
    settle = sink._settle

    def delayed(batch: list[Any]) -> None:
        loop.call_later(delay_s, settle, batch)

    sink._settle = delayed  # type: ignore[method-assign]


def pin_health(proxy: RunningProxy, value: bool) -> None:
    """Kafka's health as the proxy sees it, whatever happens."""
    sink, loop = proxy.server.sink, proxy._loop
    assert sink is not None and loop is not None
    done = threading.Event()

    def unchanged(healthy: bool) -> None:
        pass

    def pin() -> None:
        sink._set_healthy = unchanged  # type: ignore[method-assign]
        sink.healthy = value
        done.set()

    loop.call_soon_threadsafe(pin)
    assert done.wait(10)


def send(proxy: RunningProxy, method: str, path: str, body: bytes | None = None) -> tuple[int, float, float]:
    """Status, when the request was sent, and when its response was complete (monotonic)."""
    connection = http.client.HTTPConnection("127.0.0.1", proxy.server.port, timeout=30)
    try:
        sent = time.monotonic()
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status, sent, time.monotonic()
    finally:
        connection.close()


WRITES = [
    ("PUT", "/idx/_doc/1", b'{"n":1}'),
    ("POST", "/idx/_doc", b'{"n":2}'),
    ("DELETE", "/idx/_doc/1", None),
    ("PATCH", "/idx/_thing", b'{"n":3}'),
    ("POST", "/idx/_bulk", b'{"index":{}}\n{"n":4}\n'),
    # Larger than a record: split into three, all acknowledged before the last bytes leave.
    ("POST", "/idx/_bulk?large", b'{"index":{}}\n{"t":"' + b"x" * 150_000 + b'"}\n'),
]
READS = [("GET", "/idx/_search", None), ("POST", "/idx/_search", b'{"query":{"match_all":{}}}')]


@pytest.mark.parametrize("mode", ["forward", "reject"])
def test_writes_reach_the_source_only_once_kafka_holds_them_and_reads_at_once(
        sandbox: SandboxState, start_proxy: StartProxy, stub_source: Callable[[str | None, str], StubSource],
        mode: str) -> None:
    assert sandbox.kafka is not None
    brokers = sandbox.kafka.bootstrap
    topic = create_topic(brokers)
    stub = stub_source(brokers, topic)
    proxy = start_proxy(stub.url, brokers, topic, on_capture_failure=mode, max_record_bytes=64 << 10)
    delay_acknowledgements(proxy, ACK_DELAY_S)
    for method, path, body in WRITES:
        status, sent, _ = send(proxy, method, path, body)
        assert status == 200, (method, path)
        arrived, captured = stub.arrivals[path]
        assert captured, f"{method} {path} reached the source before Kafka held its capture"
        assert arrived - sent >= ACK_DELAY_S * 0.9, f"{method} {path} was not held for its acknowledgement"
    for method, path, body in READS:
        status, sent, _ = send(proxy, method, path, body)
        assert status == 200
        arrived, captured = stub.arrivals[path]
        # Captured asynchronously: a small read's record is produced with its response, after the source's answer.
        assert not captured and arrived - sent < ACK_DELAY_S / 2, (method, path)
    assert proxy.metric("capture_proxy_ack_wait_seconds_count") == len(WRITES)
    assert proxy.metric("capture_proxy_uncaptured_requests_total", method="PUT") == 0


def test_the_bench_switch_forwards_writes_at_once_and_holds_their_response(
        sandbox: SandboxState, start_proxy: StartProxy, stub_source: Callable[[str | None, str], StubSource]) -> None:
    """--bench-forward-before-ack: the former forward mode, which the bench measures release-after-ack against."""
    assert sandbox.kafka is not None
    brokers = sandbox.kafka.bootstrap
    topic = create_topic(brokers)
    stub = stub_source(None, topic)
    proxy = start_proxy(stub.url, brokers, topic, forward_before_ack=True)
    delay_acknowledgements(proxy, ACK_DELAY_S)
    status, sent, done = send(proxy, "PUT", "/idx/_doc/1", b'{"n":1}')
    assert status == 200
    assert stub.arrivals["/idx/_doc/1"][0] - sent < ACK_DELAY_S / 2
    assert done - sent >= ACK_DELAY_S * 0.9


def test_unacknowledged_write_forward_forwards_it_and_counts_it_reject_answers_503(
        start_proxy: StartProxy, stub_source: Callable[[str | None, str], StubSource]) -> None:
    """Kafka looks healthy but never acknowledges (nothing listens at the broker's address)."""
    stub = stub_source(None, "none")
    brokers = f"127.0.0.1:{free_port()}"
    options = dict(kafka_delivery_timeout_ms=1000, shutdown_timeout_s=2.0)
    forward = start_proxy(stub.url, brokers, "capture", **options)
    reject = start_proxy(stub.url, brokers, "capture", on_capture_failure="reject", **options)
    for proxy in (forward, reject):
        pin_health(proxy, True)
    status, sent, _ = send(forward, "PUT", "/idx/_doc/f", b'{"n":1}')
    assert status == 200
    assert stub.arrivals["/idx/_doc/f"][0] - sent >= 0.9  # held until Kafka gave up on the record
    assert forward.metric("capture_proxy_uncaptured_requests_total", method="PUT") == 1
    status, _, _ = send(reject, "PUT", "/idx/_doc/r", b'{"n":1}')
    assert status == 503
    assert "/idx/_doc/r" not in stub.arrivals
    assert reject.metric("capture_proxy_rejected_requests_total", method="PUT") == 1


def test_kafka_known_unreachable_forward_forwards_at_once_reject_answers_503(
        start_proxy: StartProxy, stub_source: Callable[[str | None, str], StubSource]) -> None:
    stub = stub_source(None, "none")
    brokers = f"127.0.0.1:{free_port()}"
    options = dict(kafka_delivery_timeout_ms=1000, shutdown_timeout_s=2.0)
    forward = start_proxy(stub.url, brokers, "capture", **options)
    reject = start_proxy(stub.url, brokers, "capture", on_capture_failure="reject", **options)
    for proxy in (forward, reject):
        pin_health(proxy, False)
    status, sent, done = send(forward, "PUT", "/idx/_doc/f", b'{"n":1}')
    assert status == 200 and stub.arrivals["/idx/_doc/f"][0] - sent < 0.5 and done - sent < 0.5
    deadline = time.monotonic() + 10
    while forward.metric("capture_proxy_uncaptured_requests_total", method="PUT") < 1:
        assert time.monotonic() < deadline, "the uncaptured write was not counted"
        time.sleep(0.05)
    status, sent, done = send(reject, "PUT", "/idx/_doc/r", b'{"n":1}')
    assert status == 503 and done - sent < 0.5
    assert "/idx/_doc/r" not in stub.arrivals
