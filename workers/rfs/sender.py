"""Send one batch to ``_bulk`` until every item is written or rejected for good.

429, 502, 503, 504 and connection errors are retried with exponential backoff and jitter; only the items that
failed are resent. Items rejected for good (mapping errors and the like) become dead letters, unless their
error type is in ``allowed_doc_exception_types``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from isal import isal_zlib
from opensearchpy import JSONSerializer, OpenSearch
from opensearchpy.exceptions import ConnectionError as ClientConnectionError
from opensearchpy.exceptions import SerializationError, TransportError

from workers.common.errors import MigrationError
from workers.rfs.bulk import Batch, BulkItem, body_of
from workers.rfs.concurrency import AdaptiveLimit
from workers.rfs.options import BackfillOptions
from workers.rfs.retry import RETRYABLE_STATUS, backoff

_HEADERS = {"content-type": "application/x-ndjson"}
_GZIP_HEADERS = {**_HEADERS, "content-encoding": "gzip"}
log = logging.getLogger("workers.rfs")
_THROTTLED = "HTTP 429"
_FILTER = {"filter_path": "errors,items.*.status,items.*.error.type,items.*.error.reason"}


_NO_ERRORS = '{"errors":false'


class BulkResponseSerializer(JSONSerializer):
    """Parses responses with orjson: a bulk response lists every item, and ``json.loads`` of them took about 7% of
    the worker's CPU. Meant for the worker's own client only, whose responses (bulk items, its coordination
    documents) hold no integer beyond 64 bits, which orjson refuses."""

    def loads(self, s: str) -> Any:
        # A bulk response whose items all succeeded is only its "errors": parsing the items (one status each) and
        # collecting them cost about an eighth of the worker's CPU. The filtered response begins with "errors", so
        # the prefix settles it; any other shape is parsed whole.
        if s.startswith(_NO_ERRORS) and s[len(_NO_ERRORS):len(_NO_ERRORS) + 1] in (",", "}"):
            return {"errors": False}
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(s, exc) from None


class BulkFailedError(MigrationError):
    """A batch could not be written after every retry; the message gives the last error."""


@dataclass(frozen=True)
class Rejection:
    """An item the target refused for good."""

    item: BulkItem
    status: int
    error_type: str
    reason: str


@dataclass
class BatchOutcome:
    """What happened to one batch."""

    batch: Batch
    written: int = 0
    allowed_failures: int = 0
    retries: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    retry_reasons: dict[str, int] = field(default_factory=dict)


class BulkSender:
    """Sends batches with per-item retries; safe to call from several threads."""

    def __init__(self, client: OpenSearch, options: BackfillOptions,
                 sleep: Callable[[float], None] = time.sleep, limit: AdaptiveLimit | None = None) -> None:
        self.client = client
        self.options = options
        self.limit = limit or AdaptiveLimit(options.max_connections, adaptive=False)
        self.sleep = sleep
        self.allowed = frozenset(options.allowed_doc_exception_types)
        self._random = random.Random()
        self._lock = threading.Lock()

    def _backoff(self, attempt: int) -> float:
        with self._lock:
            return backoff(attempt, self.options.initial_backoff_s, self.options.max_backoff_s, self._random)

    def send(self, batch: Batch) -> BatchOutcome:
        """Write the batch; raises BulkFailedError when retries run out."""
        outcome = BatchOutcome(batch)
        # The first attempt sends the batch's body as encoded; BulkItems are made only for what is retried.
        pending: list[BulkItem] | None = None
        attempt = 0
        while True:
            epoch = self.limit.epoch
            retry, last_error, seconds = self._attempt(batch, pending, outcome)
            if not retry:
                if attempt == 0:
                    self.limit.succeeded(epoch, seconds, batch.size)
                break
            if last_error.startswith(_THROTTLED):
                self.limit.throttled(epoch)
            attempt += 1
            if attempt > self.options.max_retries:
                raise BulkFailedError(
                    f"bulk request for {len(retry)} documents (first {retry[0].index}/{retry[0].id}) still failing "
                    f"after {self.options.max_retries} retries: {last_error}"
                )
            outcome.retries += 1
            outcome.retry_reasons[last_error] = outcome.retry_reasons.get(last_error, 0) + 1
            log.debug("retrying %d documents after %s (attempt %d)", len(retry), last_error, attempt)
            self.sleep(self._backoff(attempt))
            pending = retry
        return outcome

    def _attempt(self, batch: Batch, pending: list[BulkItem] | None,
                 outcome: BatchOutcome) -> tuple[list[BulkItem], str, float]:
        """Send ``pending`` (None: the whole batch) once: the items to retry, why, and how long the target took."""
        count = batch.count if pending is None else len(pending)

        def items_of() -> list[BulkItem]:
            return batch.items() if pending is None else pending

        headers = _HEADERS
        parts: list[memoryview] | list[bytes] = batch.body_parts() if pending is None else [body_of(pending)]
        if self.options.gzip:
            # ISA-L's gzip at level 1: the same format and ratio as zlib's level 1 at about 5x the speed; the
            # sender shares the machine (often the cores) with the reader, and zlib cost a quarter of a core.
            # The pieces are compressed one after another, so the plain body is never copied into one buffer.
            gz = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
            body = b"".join([gz.compress(part) for part in parts] + [gz.flush()])
            headers = _GZIP_HEADERS
        else:
            body = b"".join(parts)
        began = time.perf_counter()
        try:
            resp: Any = self.client.transport.perform_request("POST", "/_bulk", body=body, headers=headers,
                                                              params=_FILTER)
        except ClientConnectionError as exc:
            return items_of(), f"connection error: {exc.__class__.__name__}", 0.0
        except TransportError as exc:
            if exc.status_code == 429:
                return items_of(), f"{_THROTTLED} (whole request)", 0.0
            if isinstance(exc.status_code, int) and exc.status_code in RETRYABLE_STATUS:
                return items_of(), f"HTTP {exc.status_code}", 0.0
            raise BulkFailedError(f"target refused a bulk request: HTTP {exc.status_code} {exc.error}") from None
        seconds = time.perf_counter() - began
        if not resp.get("errors"):
            outcome.written += count
            return [], "", seconds
        results = resp.get("items", [])
        if len(results) != count:
            raise BulkFailedError(f"bulk response has {len(results)} items for {count} documents")
        items = items_of()
        retry: list[BulkItem] = []
        last = ""
        for item, result in zip(items, results, strict=True):
            r = next(iter(result.values()))
            status = int(r.get("status", 0))
            if 200 <= status < 300:
                outcome.written += 1
                continue
            error = r.get("error") or {}
            error_type = str(error.get("type", "unknown"))
            if status == 429 or error_type == "es_rejected_execution_exception":
                retry.append(item)
                last = f"{_THROTTLED} ({error_type})"
            elif status in RETRYABLE_STATUS:
                retry.append(item)
                last = f"{status} {error_type}"
            elif error_type in self.allowed:
                outcome.allowed_failures += 1
            else:
                outcome.rejected.append(Rejection(item, status, error_type, str(error.get("reason", ""))))
        return retry, last, seconds
