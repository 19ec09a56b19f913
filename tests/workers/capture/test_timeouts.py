"""Client timeouts against the real proxy, source and Kafka: slow clients on raw sockets, each connection closed in
about its limit with the reason in its close record and a count in the metrics."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from migration_pipeline.cli.main import app
from migration_pipeline.sandbox.state import SandboxState
from tests.workers.capture.conftest import RunningProxy, create_topic, events
from workers.capture.reader import ConnectionClosed, Transaction

StartProxy = Callable[..., RunningProxy]

IDLE, HEADER, BODY = 1.0, 2.0, 1.5


def wait_closed(sock: socket.socket, began: float, limit_s: float = 20.0) -> tuple[float, bytes]:
    """Seconds from ``began`` until the proxy closed the connection, and what it sent before."""
    sock.settimeout(limit_s)
    received = bytearray()
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return time.monotonic() - began, bytes(received)
        received += chunk


def start(sandbox: SandboxState, start_proxy: StartProxy) -> tuple[RunningProxy, str, str]:
    assert sandbox.kafka is not None
    brokers = sandbox.kafka.bootstrap
    topic = create_topic(brokers)
    proxy = start_proxy(sandbox.engines["source"].url, brokers, topic, idle_timeout_s=IDLE,
                        header_timeout_s=HEADER, body_timeout_s=BODY)
    return proxy, brokers, topic


def counted(proxy: RunningProxy, reason: str, expected: int) -> bool:
    """True once the timeout metric reaches ``expected`` (the proxy counts just after the client sees the close)."""
    deadline = time.monotonic() + 5
    while proxy.metric("capture_proxy_timeouts_total", reason=reason) < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return proxy.metric("capture_proxy_timeouts_total", reason=reason) == expected


def closes(brokers: str, topic: str) -> list[ConnectionClosed]:
    return [e for e in events(brokers, topic) if isinstance(e, ConnectionClosed)]


def test_idle_timeout_closes_a_silent_connection_but_never_one_awaiting_its_response(
        sandbox: SandboxState, start_proxy: StartProxy) -> None:
    proxy, brokers, topic = start(sandbox, start_proxy)
    port = proxy.server.port
    # Connects and sends nothing.
    with socket.create_connection(("127.0.0.1", port)) as silent:
        elapsed, received = wait_closed(silent, time.monotonic())
    assert received == b"" and IDLE - 0.1 < elapsed < IDLE + 1.5, elapsed
    # A request the source answers after 2 s (twice the idle limit): the response still comes, and the idle clock
    # starts at its last byte.
    with socket.create_connection(("127.0.0.1", port)) as slow:
        slow.sendall(b"GET /_cluster/health?wait_for_nodes=9&timeout=2s HTTP/1.1\r\nHost: x\r\n\r\n")
        slow.settimeout(20)
        began = time.monotonic()
        answer = slow.recv(1 << 16)
        answered = time.monotonic()
        assert answer.startswith(b"HTTP/1.1 408 ") and answered - began > 1.5
        elapsed, _ = wait_closed(slow, answered)
    assert IDLE - 0.1 < elapsed < IDLE + 1.5, elapsed
    assert counted(proxy, "idle", 2)
    proxy.stop()
    found = closes(brokers, topic)
    assert sorted((c.reason, c.requests, c.missing) for c in found) == [("idle timeout", 0, 0), ("idle timeout", 1, 0)]


def test_header_timeout_cuts_a_head_sent_a_byte_at_a_time(sandbox: SandboxState, start_proxy: StartProxy) -> None:
    proxy, brokers, topic = start(sandbox, start_proxy)
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 40 + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", proxy.server.port)) as sock:
        sock.settimeout(0.25)
        began = time.monotonic()
        closed_at = None
        # A byte every 0.25 s: more often than the idle limit, but the whole head would take 15 s.
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(1 << 16) == b"":
                    closed_at = time.monotonic() - began
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_at = time.monotonic() - began
                break
    assert closed_at is not None and HEADER - 0.1 < closed_at < HEADER + 1.5, closed_at
    assert counted(proxy, "header", 1)
    assert proxy.metric("capture_proxy_malformed_requests_total") == 0  # cut for its slowness, not refused
    proxy.stop()
    (closed,) = closes(brokers, topic)
    # A head never completed has no seq: nothing is missing.
    assert (closed.reason, closed.requests, closed.missing) == ("header timeout", 0, 0)


def test_body_timeout_cuts_a_request_whose_body_stops(sandbox: SandboxState, start_proxy: StartProxy) -> None:
    proxy, brokers, topic = start(sandbox, start_proxy)
    with socket.create_connection(("127.0.0.1", proxy.server.port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # one whole request first
        sock.settimeout(10)
        assert sock.recv(1 << 16).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"POST /_search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"query\":")
        time.sleep(0.5)
        sock.sendall(b'{"match_all"')  # a body byte restarts the clock
        began = time.monotonic()
        elapsed, received = wait_closed(sock, began)
    assert received == b"" and BODY - 0.1 < elapsed < BODY + 1.5, elapsed
    assert counted(proxy, "body", 1)
    proxy.stop()
    found = events(brokers, topic)
    assert [(t.seq, t.status) for t in found if isinstance(t, Transaction)] == [(1, 200)]
    (closed,) = [e for e in found if isinstance(e, ConnectionClosed)]
    # The request cut short is named: its seq is no unexplained gap.
    assert (closed.reason, closed.requests, closed.incomplete, closed.missing) == ("body timeout", 2, 2, 0)


def test_timeouts_reach_the_options_from_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import workers.capture.server as server

    seen: list[tuple[float, float, float]] = []
    monkeypatch.setattr(server, "main", lambda o: seen.append((o.idle_timeout_s, o.header_timeout_s,
                                                                o.body_timeout_s)))
    base = ["proxy", "--destination", "http://127.0.0.1:1", "--no-capture"]
    assert CliRunner().invoke(app, base).exit_code == 0
    assert CliRunner().invoke(app, [*base, "--idle-timeout", "5", "--body-timeout", "0"]).exit_code == 0
    monkeypatch.setenv("CAPTURE_PROXY_HEADER_TIMEOUT", "7.5")
    assert CliRunner().invoke(app, base).exit_code == 0
    assert seen == [(60.0, 30.0, 60.0), (5.0, 30.0, 0.0), (60.0, 7.5, 60.0)]
    assert CliRunner().invoke(app, [*base, "--idle-timeout", "-1"]).exit_code == 2
