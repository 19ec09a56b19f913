"""Requests the proxy answers itself (400, 431, 502, 503) are recorded as LOCAL records, in their seq, so that a
reader sees every request of a connection: forwarded, answered by the proxy, or suppressed by rule."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable

from migration_pipeline.sandbox.processes import free_port
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.capture.conftest import RunningProxy, create_topic, events
from workers.capture.options import Suppression
from workers.capture.reader import ConnectionClosed, Event, LocalAnswer, Transaction

StartProxy = Callable[..., RunningProxy]


def exchange(port: int, payload: bytes) -> bytes:
    """Send raw bytes, then read until the proxy closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(payload)
        received = bytearray()
        while chunk := sock.recv(1 << 16):
            received += chunk
        return bytes(received)


def by_connection(found: list[Event]) -> dict[str, list[Event]]:
    """Each connection's transactions and local answers in seq order, its close event last."""
    out: dict[str, list[Event]] = {}
    for event in found:
        if isinstance(event, Transaction | LocalAnswer | ConnectionClosed):
            out.setdefault(event.conn, []).append(event)
    for conn_events in out.values():
        conn_events.sort(key=lambda e: e.seq if isinstance(e, Transaction | LocalAnswer) else 1 << 30)
    return out


def test_malformed_and_oversized_requests_are_recorded_with_what_was_received(
        sandbox: SandboxState, start_proxy: StartProxy) -> None:
    assert sandbox.kafka is not None
    brokers = sandbox.kafka.bootstrap
    topic = create_topic(brokers)
    proxy = start_proxy(sandbox.engines["source"].url, brokers, topic, max_head_bytes=4096,
                        suppression=Suppression.parse([], [], [r"/_cluster/.*"]))
    # A good request, a suppressed one, then garbage: seq 1 forwarded, seq 2 suppressed, seq 3 answered 400.
    garbage = b"NOT HTTP AT ALL\r\n\r\n"
    received = exchange(proxy.server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                        b"GET /_cluster/health HTTP/1.1\r\nHost: x\r\n\r\n" + garbage)
    assert received.count(b"HTTP/1.1 200 OK") == 2 and b"HTTP/1.1 400 Bad Request" in received
    oversized = b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 10_000 + b"\r\n\r\n"
    assert exchange(proxy.server.port, oversized).startswith(b"HTTP/1.1 431 ")
    assert proxy.metric("capture_proxy_malformed_requests_total") == 2
    proxy.stop()

    first, second = sorted(by_connection(events(brokers, topic)).values(), key=len, reverse=True)
    forwarded, refused, close = first
    assert isinstance(forwarded, Transaction) and (forwarded.seq, forwarded.status) == (1, 200)
    assert isinstance(refused, LocalAnswer)
    assert (refused.seq, refused.status, refused.cause, refused.method, refused.truncated) == (3, 400, "malformed",
                                                                                               "", False)
    assert refused.request == garbage and refused.response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert refused.error and refused.timestamps["received"] <= refused.timestamps["answered"]
    assert isinstance(close, ConnectionClosed)
    assert (close.requests, close.suppressed, close.missing) == (3, 1, 0)

    too_large, close = second
    assert isinstance(too_large, LocalAnswer)
    assert (too_large.seq, too_large.status, too_large.cause, too_large.truncated) == (1, 431, "head too large", True)
    # What was received, up to the head limit.
    assert too_large.request == oversized[:4096]
    assert isinstance(close, ConnectionClosed) and (close.requests, close.missing) == (1, 0)


def test_requests_the_unreachable_destination_never_saw_are_recorded_as_502(
        sandbox: SandboxState, start_proxy: StartProxy) -> None:
    assert sandbox.kafka is not None
    brokers = sandbox.kafka.bootstrap
    topic = create_topic(brokers)
    proxy = start_proxy(f"http://127.0.0.1:{free_port()}", brokers, topic)  # nothing listens there
    post = b"POST /i/_doc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n"
    received = exchange(proxy.server.port, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n" + post + b'{"n": 1}\n'
                        b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert received.count(b"HTTP/1.1 502 Bad Gateway") == 3
    proxy.stop()

    (conn_events,) = by_connection(events(brokers, topic)).values()
    *answers, close = conn_events
    assert all(isinstance(a, LocalAnswer) for a in answers)
    assert [(a.seq, a.method, a.target, a.status, a.cause) for a in answers if isinstance(a, LocalAnswer)] == [
        (1, "GET", "/a", 502, "destination unreachable"), (2, "POST", "/i/_doc", 502, "destination unreachable"),
        (3, "GET", "/c", 502, "destination unreachable")]
    get_a, posted, _ = (a for a in answers if isinstance(a, LocalAnswer))
    # The head is recorded; a body, read past and dropped, is not (truncated says the client sent more).
    assert (posted.request, posted.truncated) == (post, True)
    assert (get_a.request, get_a.truncated) == (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", False)
    assert get_a.error and "refused" in get_a.error.lower()
    assert isinstance(close, ConnectionClosed) and (close.requests, close.missing) == (3, 0)


def test_a_write_refused_in_reject_mode_is_recorded_as_503(sandbox: SandboxState, start_proxy: StartProxy) -> None:
    assert sandbox.kafka is not None and sandbox.kafka.pid
    brokers, kafka_pid = sandbox.kafka.bootstrap, sandbox.kafka.pid
    topic = create_topic(brokers)
    proxy = start_proxy(sandbox.engines["source"].url, brokers, topic, on_capture_failure="reject",
                        kafka_delivery_timeout_ms=4000)
    index = unique("local503")
    write = (f"PUT /{index}/_doc/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: 8\r\n\r\n{\"n\": 1}").encode()
    # The session's broker, paused: Kafka stops answering, and the proxy notices once a write's capture fails.
    os.kill(kafka_pid, signal.SIGSTOP)
    try:
        assert exchange(proxy.server.port, write.replace(b"Host: x", b"Connection: close")).startswith(
            b"HTTP/1.1 503 ")
        assert proxy.server.sink is not None
        deadline = time.monotonic() + 5
        while proxy.server.sink.healthy and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not proxy.server.sink.healthy
        # Now known unreachable: a write is refused at once, before anything reaches the source.
        began = time.monotonic()
        received = exchange(proxy.server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + write.replace(
            b"Host: x", b"Host: x\r\nConnection: close"))
        assert time.monotonic() - began < 3
    finally:
        os.kill(kafka_pid, signal.SIGCONT)  # in time for the records produced meanwhile (delivery timeout 4 s)
    assert b"HTTP/1.1 200 OK" in received and b"HTTP/1.1 503 Service Unavailable" in received
    assert proxy.metric("capture_proxy_rejected_requests_total", method="PUT") == 2
    deadline = time.monotonic() + 30
    while not proxy.server.sink.healthy and time.monotonic() < deadline:
        time.sleep(0.1)
    proxy.stop()

    conns = by_connection(events(brokers, topic))
    (conn_events,) = [c for c in conns.values() if any(isinstance(e, LocalAnswer) for e in c)]
    forwarded, refused, close = conn_events
    assert isinstance(forwarded, Transaction) and (forwarded.seq, forwarded.status) == (1, 200)
    assert isinstance(refused, LocalAnswer)
    assert (refused.seq, refused.method, refused.target, refused.status, refused.cause) == (
        2, "PUT", f"/{index}/_doc/1", 503, "capture unavailable")
    assert refused.response.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and refused.truncated
    assert isinstance(close, ConnectionClosed) and (close.requests, close.missing) == (2, 0)
