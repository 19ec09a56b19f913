"""Shard work state in a coordination index on the target: leases, checkpoints, completion.

One document per (snapshot, index, shard). Writes use optimistic concurrency (``if_seq_no`` and
``if_primary_term``), so two workers can never both believe they hold a shard's lease.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConflictError, NotFoundError, RequestError

from workers.common.errors import MigrationError
from workers.documents.reader import ShardPosition
from workers.rfs.retry import call_with_retries
from workers.rfs.status import RecordStatus


class LeaseHeldError(MigrationError):
    """Another worker holds the shard's lease."""

    exit_code = 4


class LeaseLostError(MigrationError):
    """The lease was taken over (it expired while this worker was stalled); this worker must stop."""

    exit_code = 4


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class ShardWork:
    """The recorded state of a shard's migration."""

    status: str
    checkpoint: ShardPosition | None
    docs_written: int
    bytes_written: int
    attempts: int
    raw: dict[str, Any]

    @property
    def completed(self) -> bool:
        """True once the shard was fully written."""
        return self.status == RecordStatus.COMPLETED


_MAPPING = {
    "dynamic": False,
    "properties": {
        "snapshot": {"type": "keyword"}, "index": {"type": "keyword"}, "shard": {"type": "integer"},
        "status": {"type": "keyword"}, "lease_owner": {"type": "keyword"}, "lease_expires_ms": {"type": "long"},
        "updated_ms": {"type": "long"},
    },
}


class WorkCoordinator:
    """Leases and checkpoints of one shard."""

    def __init__(self, client: OpenSearch, index: str, worker_id: str, lease_seconds: float,
                 snapshot: str, source_index: str, shard: int) -> None:
        self.client = client
        self.index = index
        self.worker_id = worker_id
        self.lease_ms = int(lease_seconds * 1000)
        self.key = f"{snapshot}/{source_index}/{shard}"
        self.base = {"snapshot": snapshot, "index": source_index, "shard": shard}
        self._seq: tuple[int, int] | None = None
        self._doc: dict[str, Any] = {}
        self.last_write = 0.0
        # Checkpoints are written from a background thread and lease renewals from the pump: the conditional
        # writes must not race each other (the loser would take its own conflict for a lost lease).
        self._write_lock = threading.Lock()

    def ensure_index(self) -> None:
        """Create the coordination index once (no replicas beyond one; hidden from wildcard searches)."""
        if not self.client.indices.exists(index=self.index):
            self._create()
        # A fresh index answers 503 until its shard is allocated.
        # (opensearch-py takes a "timeout" parameter for its own request timeout, so it goes in the URL.)
        self.client.transport.perform_request(
            "GET", f"/_cluster/health/{self.index}?wait_for_status=yellow&timeout=60s", timeout=90)

    def _create(self) -> None:
        try:
            self.client.indices.create(index=self.index, body={
                "settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1", "hidden": True}},
                "mappings": _MAPPING,
            })
        except RequestError as exc:
            if "already_exists" not in str(exc.error):
                raise

    def read(self) -> ShardWork | None:
        """The shard's recorded state, or None when it was never started."""
        try:
            resp = call_with_retries(lambda: self.client.get(index=self.index, id=self.key))
        except NotFoundError:
            return None
        self._seq = (resp["_seq_no"], resp["_primary_term"])
        self._doc = resp["_source"]
        return _work(self._doc)

    def acquire(self, force: bool = False) -> ShardWork:
        """Take the shard's lease; raises LeaseHeldError when another worker's lease is still running."""
        work = self.read()
        now = _now_ms()
        if work is None:
            doc: dict[str, Any] = {**self.base, "status": RecordStatus.IN_PROGRESS.value,
                   "lease_owner": self.worker_id, "lease_expires_ms": now + self.lease_ms, "checkpoint": None,
                   "docs_written": 0, "bytes_written": 0, "attempts": 1, "started_ms": now, "updated_ms": now}
            try:
                resp = call_with_retries(
                    lambda: self.client.index(index=self.index, id=self.key, body=doc, op_type="create"))
            except ConflictError:
                raise LeaseHeldError(f"shard {self.key} was just taken by another worker") from None
            self._seq, self._doc = (resp["_seq_no"], resp["_primary_term"]), doc
            self.last_write = time.monotonic()
            return _work(doc)
        if work.completed and not force:
            return work
        owner = work.raw.get("lease_owner")
        expires = int(work.raw.get("lease_expires_ms") or 0)
        if not work.completed and owner and owner != self.worker_id and expires > now:
            raise LeaseHeldError(
                f"shard {self.key} is leased by worker {owner} for {(expires - now) / 1000:.0f}s more; "
                "it runs elsewhere (or wait for its lease to expire)"
            )
        doc = dict(work.raw)
        if work.completed and force:
            doc.update(checkpoint=None, docs_written=0, bytes_written=0)
        doc.update(status=RecordStatus.IN_PROGRESS.value, lease_owner=self.worker_id,
                   lease_expires_ms=now + self.lease_ms, attempts=int(doc.get("attempts") or 0) + 1, updated_ms=now)
        self._write(doc)
        return _work(doc)

    def _write(self, doc: dict[str, Any]) -> None:
        with self._write_lock:
            self._write_locked(doc)

    def _update(self, changes: dict[str, Any]) -> None:
        """Write the last written document with ``changes``, composed under the lock (writes come from two threads)."""
        with self._write_lock:
            self._write_locked({**self._doc, **changes})

    def _write_locked(self, doc: dict[str, Any]) -> None:
        assert self._seq is not None
        try:
            seq, term = self._seq
            # A throttled or briefly unavailable target is retried: the conditional write stays safe to repeat.
            resp = call_with_retries(lambda: self.client.index(index=self.index, id=self.key, body=doc,
                                                               if_seq_no=seq, if_primary_term=term))
        except ConflictError:
            raise LeaseLostError(f"lease on shard {self.key} was taken over by another worker") from None
        self._seq, self._doc = (resp["_seq_no"], resp["_primary_term"]), doc
        self.last_write = time.monotonic()

    def checkpoint(self, position: ShardPosition, docs_written: int, bytes_written: int) -> None:
        """Record progress (resume point, counts) and renew the lease."""
        now = _now_ms()
        self._update({"checkpoint": {"segment": position.segment, "doc": position.doc},
                      "docs_written": docs_written, "bytes_written": bytes_written,
                      "lease_expires_ms": now + self.lease_ms, "updated_ms": now})

    def renew(self) -> None:
        """Extend the lease without new progress."""
        now = _now_ms()
        self._update({"lease_expires_ms": now + self.lease_ms, "updated_ms": now})

    def complete(self, docs_written: int, bytes_written: int, summary: dict[str, Any]) -> None:
        """Mark the shard done; later runs skip it unless forced."""
        now = _now_ms()
        self._update({"status": RecordStatus.COMPLETED.value, "lease_owner": None, "lease_expires_ms": 0,
                      "docs_written": docs_written, "bytes_written": bytes_written, "completed_ms": now,
                      "updated_ms": now, "summary": summary})

    def release(self) -> None:
        """Give the lease up after a failure, so that a retry need not wait for it to expire."""
        # Best effort: if this fails too, the lease simply expires.
        with contextlib.suppress(Exception):
            self._update({"lease_owner": None, "lease_expires_ms": 0, "updated_ms": _now_ms()})


def _work(doc: dict[str, Any]) -> ShardWork:
    cp = doc.get("checkpoint")
    position = ShardPosition(cp["segment"], int(cp["doc"])) if cp else None
    return ShardWork(str(doc.get("status")), position, int(doc.get("docs_written") or 0),
                     int(doc.get("bytes_written") or 0), int(doc.get("attempts") or 0), doc)
