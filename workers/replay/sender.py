"""Sends replayed requests to the target: one aiohttp session, retries with backoff, ``_bulk`` items retried alone.

Retried: connection failures, 429, and 5xx the source did not answer with too (a 500 the source also gave is the
request's own fault). A ``_bulk`` response with item errors gets a second request of only the items whose error is
worth retrying: status 429 or 5xx, or an error type outside ``non_retryable`` (version conflicts, mapping errors and
the like are the document's fault and final). Every retry stays within the transaction's deadline.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import replace

import aiohttp
from yarl import URL

from workers.common.clusters import CertAuth, ClusterConnection
from workers.replay.bulk_items import item_results, merge_response, split_items
from workers.replay.messages import HttpRequest, HttpResponse, TargetExchange
from workers.replay.parsing import wire_body, wire_headers
from workers.rfs.retry import backoff

# The document errors the Java replayer treats as final, and the replayer here too by default.
NON_RETRYABLE_DOC_ERRORS: tuple[str, ...] = (
    "version_conflict_engine_exception", "mapper_parsing_exception", "strict_dynamic_mapping_exception",
    "document_missing_exception", "action_request_validation_exception", "invalid_index_name_exception",
    "routing_missing_exception", "illegal_argument_exception", "resource_already_exists_exception",
    "index_not_found_exception", "document_parsing_exception",
)
_THROTTLED = frozenset({429, 502, 503, 504})


def ssl_context(conn: ClusterConnection) -> ssl.SSLContext | bool:
    """The TLS settings for the target: verification on unless the connection turns it off."""
    if not conn.endpoint.startswith("https://"):
        return False
    context = ssl.create_default_context(cafile=conn.tls.ca_file)
    if not conn.tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if isinstance(conn.auth, CertAuth):
        context.load_cert_chain(conn.auth.cert_file, conn.auth.key_file)
    return context


class TargetSender:
    """An HTTP client to the target shared by every replayed connection."""

    def __init__(self, conn: ClusterConnection, *, max_connections: int = 64, max_retries: int = 6,
                 initial_backoff_s: float = 0.5, max_backoff_s: float = 10.0,
                 non_retryable: tuple[str, ...] = NON_RETRYABLE_DOC_ERRORS) -> None:
        conn.check_files()
        self.conn = conn
        self.base = conn.endpoint
        self.max_retries = max_retries
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.non_retryable = frozenset(non_retryable)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the session (call from the event loop that sends)."""
        connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=ssl_context(self.conn),
                                         ttl_dns_cache=300, enable_cleanup_closed=True)
        timeout = aiohttp.ClientTimeout(total=self.conn.timeout_s)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=True,
                                              skip_auto_headers=("User-Agent",))

    async def close(self) -> None:
        """Close every connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _once(self, request: HttpRequest) -> HttpResponse:
        assert self._session is not None, "TargetSender.start() was not called"
        # The bytes SigV4 signed when the request is gzip'd (wire_body compresses the same way every time).
        body: bytes | None = wire_body(request) if request.body else None
        url = URL(self.base + request.target, encoded=True)
        async with self._session.request(request.method, url, data=body, headers=wire_headers(request),
                                         allow_redirects=False) as response:
            data = await response.read()
            return HttpResponse(response.status, tuple(response.headers.items()), data)

    def _retryable_status(self, status: int, source_status: int | None) -> bool:
        if status in _THROTTLED:
            return True
        return status >= 500 and (source_status is None or source_status < 500)

    async def send(self, request: HttpRequest, *, source_status: int | None, deadline: float) -> TargetExchange:
        """``request`` sent until it succeeds, fails for good, retries run out or ``deadline`` (monotonic) passes."""
        started = time.time_ns()
        attempts = 0
        last_error: str | None = None
        response: HttpResponse | None = None
        is_bulk = bool(request.segments) and request.segments[-1] == "_bulk"
        while True:
            attempts += 1
            try:
                response = await self._once(request)
                last_error = None
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                response, last_error = None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            retry = response is None or self._retryable_status(response.status, source_status)
            if not retry and response is not None and is_bulk and response.status < 300:
                response, retry = await self._retry_items(request, response, deadline)
            if not retry or attempts > self.max_retries:
                break
            wait = backoff(attempts, self.initial_backoff_s, self.max_backoff_s)
            if time.monotonic() + wait > deadline:
                if response is not None:
                    last_error = f"HTTP {response.status} until the transaction's deadline"
                break
            await asyncio.sleep(wait)
        return TargetExchange(request, response, started, time.time_ns(), attempts, last_error)

    def _worth_retrying(self, result: dict[str, object]) -> bool:
        status = result.get("status")
        if not isinstance(status, int) or status < 300:
            return False
        if status in _THROTTLED or status >= 500:
            return True
        error = result.get("error")
        kind = error.get("type") if isinstance(error, dict) else None
        return kind not in self.non_retryable

    async def _retry_items(self, request: HttpRequest, response: HttpResponse,
                           deadline: float) -> tuple[HttpResponse, bool]:
        """Resend only the bulk items worth another try; the merged response and whether some still are."""
        if b'"errors":true' not in response.body[:64] and b'"errors": true' not in response.body[:64]:
            return response, False
        items = split_items(request.body)
        attempt = 0
        while True:
            results = item_results(response.body)
            if results is None or len(results) != len(items):
                return response, False
            positions = [i for i, r in enumerate(results) if self._worth_retrying(r)]
            if not positions:
                return response, False
            attempt += 1
            wait = backoff(attempt, self.initial_backoff_s, self.max_backoff_s)
            if attempt > self.max_retries or time.monotonic() + wait > deadline:
                return response, False
            await asyncio.sleep(wait)
            subset = replace(request, body=b"".join(items[i] for i in positions))
            try:
                again = await self._once(subset)
            except (aiohttp.ClientError, TimeoutError, OSError):
                continue
            if again.status >= 300:
                continue
            response = replace(response, body=merge_response(response.body, positions, again.body))
