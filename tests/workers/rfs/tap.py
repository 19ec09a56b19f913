"""A loopback HTTP/1.1 forwarding proxy ("tap") between the backfill worker and the real target.

Every request is forwarded unchanged (method, path, headers, body, one upstream connection per client connection so
keep-alive is kept) and the target's answer relayed; each request is recorded. Faults can be queued for the
``_bulk`` requests: the i-th bulk request to arrive gets the i-th queued fault. The faults stand in for what a load
balancer or a struggling cluster does (a 502 from a gateway, a connection cut, some items refused with 503) and
what the real target cannot be made to do on demand; everything else is the real target's own answer.

Optionally the tap terminates TLS (server side, with the given certificate) and forwards plain HTTP.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import socket
import ssl
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

# Not forwarded: they describe one hop (RFC 9110 7.6.1); the tap sets its own framing.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                         "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"})


@dataclass(frozen=True)
class Status:
    """Answer with this HTTP status instead of forwarding (the target never sees the request)."""

    status: int
    body: bytes = b"<html><body><h1>injected by the test tap</h1></body></html>"
    content_type: str = "text/html"


@dataclass(frozen=True)
class Drop:
    """Read the request, then close the connection without answering (the target never sees the request)."""


@dataclass(frozen=True)
class FailItems:
    """Forward all but every ``every``-th item (the 0th, ``every``-th, ...); answer those with ``status``.

    The answer is the target's own bulk response with the refused items spliced in at their positions, as a
    cluster answers when some of a request's shards are unavailable.
    """

    every: int = 3
    status: int = 503
    error_type: str = "unavailable_shards_exception"


Fault = Status | Drop | FailItems


@dataclass
class Exchange:
    """One request as the tap received it. ``headers`` has lower-case names (HTTP names are case-insensitive)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body_size: int
    fault: Fault | None = None
    status: int | None = None  # what the client was answered; None when the connection was dropped

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def is_bulk(self) -> bool:
        return self.path.rstrip("/").endswith("/_bulk")


@dataclass
class _Shared:
    upstream_host: str
    upstream_port: int
    exchanges: list[Exchange] = field(default_factory=list)
    faults: deque[Fault | None] = field(default_factory=deque)
    tls_failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: set[socket.socket] = field(default_factory=set)


def _read_chunked(rfile: Any) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int(rfile.readline().split(b";")[0].strip(), 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        parts.append(rfile.read(size))
        rfile.readline()


def _split_items(body: bytes) -> list[bytes]:
    """The bulk body's items, each its action line and (but for deletes) its source line, newline-terminated."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    items: list[bytes] = []
    i = 0
    while i < len(lines):
        action = json.loads(lines[i])
        n = 1 if "delete" in action else 2
        items.append(b"".join(line + b"\n" for line in lines[i:i + n]))
        i += n
    return items


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        shared = self.server.shared
        self.raw = self.request
        with shared.lock:
            shared.connections.add(self.raw)
        if self.server.tls is not None:
            # The handshake runs here, on the connection's thread, so a client refusing the certificate is seen
            # (and recorded) without stalling the accepting thread.
            try:
                self.request = self.server.tls.wrap_socket(self.request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                with shared.lock:
                    shared.tls_failures.append(str(exc))
                    shared.connections.discard(self.raw)
                raise
        super().setup()
        self.upstream = http.client.HTTPConnection(shared.upstream_host, shared.upstream_port, timeout=300)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.upstream.close()
            with self.server.shared.lock:
                self.server.shared.connections.discard(self.raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the exchanges are recorded; stderr stays the worker's

    def _dispatch(self) -> None:
        shared = self.server.shared
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            body = _read_chunked(self.rfile)
        else:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
        url = urlsplit(self.path)
        exchange = Exchange(self.command, url.path, url.query, {k.lower(): v for k, v in self.headers.items()},
                            len(body))
        with shared.lock:
            shared.exchanges.append(exchange)
            if exchange.is_bulk and shared.faults:
                exchange.fault = shared.faults.popleft()
        fault = exchange.fault
        if isinstance(fault, Drop):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if isinstance(fault, Status):
            exchange.status = fault.status
            self._answer(fault.status, [("content-type", fault.content_type)], fault.body)
            return
        if isinstance(fault, FailItems):
            status, headers, payload = self._fail_items(fault, body)
        else:
            status, headers, payload = self._forward(self.command, self.path, list(self.headers.items()), body)
        exchange.status = status
        self._answer(status, headers, payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def _forward(self, method: str, path: str, headers: Iterable[tuple[str, str]],
                 body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        up = self.upstream
        up.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                up.putheader(name, value)
        if body or method in ("POST", "PUT", "PATCH"):
            up.putheader("content-length", str(len(body)))
        up.endheaders(body or None)
        resp = up.getresponse()
        payload = resp.read()
        out = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
        if method != "HEAD":
            out = [(k, v) for k, v in out if k.lower() != "content-length"]
        if resp.will_close:
            up.close()
        return resp.status, out, payload

    def _fail_items(self, fault: FailItems, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        gzipped = self.headers.get("content-encoding", "").lower() == "gzip"
        items = _split_items(gzip.decompress(body) if gzipped else body)
        refused = {i for i in range(len(items)) if i % fault.every == 0}
        kept = b"".join(item for i, item in enumerate(items) if i not in refused)
        answers: Iterator[Any] = iter(())
        if kept:
            # The rest goes to the target as an ordinary (re-framed) request; its own item results are kept.
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in ("content-encoding",
                                                                                     "accept-encoding")]
            status, resp_headers, payload = self._forward(self.command, self.path, headers, kept)
            if status != 200:
                return status, resp_headers, payload
            answers = iter(json.loads(payload)["items"])
        merged: list[Any] = []
        for i, item in enumerate(items):
            if i in refused:
                action = next(iter(json.loads(item.split(b"\n", 1)[0])))
                merged.append({action: {"status": fault.status, "error": {
                    "type": fault.error_type, "reason": "refused by the test tap"}}})
            else:
                merged.append(next(answers))
        payload = json.dumps({"errors": True, "items": merged}).encode()
        return 200, [("content-type", "application/json; charset=UTF-8")], payload

    def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response_only(status)
        for name, value in headers:
            self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, shared: _Shared, tls: ssl.SSLContext | None) -> None:
        self.shared = shared
        self.tls = tls
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # refused handshakes and clients hanging up are expected here; the tests look at what was recorded


class Tap:
    """A forwarding proxy on 127.0.0.1 in front of ``target_url`` (plain HTTP), as a context manager.

    ``certfile``/``keyfile``: serve HTTPS with that certificate; ``client_ca``: and require client certificates
    signed by that CA (as clusters with certificate authentication do). ``url`` is where clients connect.
    """

    def __init__(self, target_url: str, *, certfile: Path | None = None, keyfile: Path | None = None,
                 client_ca: Path | None = None) -> None:
        target = urlsplit(target_url)
        if target.scheme != "http" or target.hostname is None:
            raise ValueError(f"the tap forwards to a plain-HTTP target, not {target_url!r}")
        self._shared = _Shared(target.hostname, target.port or 80)
        tls: ssl.SSLContext | None = None
        if certfile is not None:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(certfile, keyfile)
            if client_ca is not None:
                tls.verify_mode = ssl.CERT_REQUIRED
                tls.load_verify_locations(client_ca)
        self._server = _Server(self._shared, tls)
        port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="tap", daemon=True)

    def __enter__(self) -> Tap:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._shared.lock:
            open_connections = list(self._shared.connections)
        for conn in open_connections:  # idle keep-alive connections would keep their threads waiting
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=10)

    def fail_bulk(self, *faults: Fault | None) -> None:
        """Queue faults for the next bulk requests, one each in arrival order; None forwards that request."""
        with self._shared.lock:
            self._shared.faults.extend(faults)

    @property
    def pending_faults(self) -> int:
        with self._shared.lock:
            return len(self._shared.faults)

    @property
    def exchanges(self) -> list[Exchange]:
        with self._shared.lock:
            return list(self._shared.exchanges)

    @property
    def bulk_requests(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.is_bulk]

    @property
    def tls_failures(self) -> list[str]:
        """Handshakes that failed (the client refused the certificate, say)."""
        with self._shared.lock:
            return list(self._shared.tls_failures)
