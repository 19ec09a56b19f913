"""Shard work state in a coordination index on the target: leases, checkpoints, completion.

One document per (snapshot, index, shard) name, id ``snapshot/index/shard``. Writes use optimistic concurrency
(``if_seq_no`` and ``if_primary_term``), so two workers can never both believe they hold a shard's lease.

Names are not identities: a snapshot of another repository (or a new one after a deletion) can have the same name,
and a target index can be deleted and created again. So every record also carries the snapshot's UUID and the UUID
of each target index the shard writes into (``ShardIdentity``), and a completion or a checkpoint counts only while
both still match what is there (``stale_reason``); otherwise the shard runs again from its start.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

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


class TargetIndexRecreatedError(MigrationError):
    """A target index was deleted or recreated while the shard was written into it: the shard is not complete."""



def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class ShardIdentity:
    """What a shard's record is about beyond names: the snapshot's UUID (from the repository data) and, per target
    index the shard's documents go to, that index's UUID on the target (None while the index does not exist)."""

    snapshot_uuid: str
    target_uuids: Mapping[str, str | None] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """The record's fields for this identity."""
        return {"snapshot_uuid": self.snapshot_uuid, "target_uuids": dict(self.target_uuids)}

    @property
    def missing(self) -> list[str]:
        """Target indices that did not exist when last looked at."""
        return sorted(n for n, u in self.target_uuids.items() if u is None)


def target_index_uuids(client: OpenSearch, names: Sequence[str]) -> dict[str, str | None]:
    """The UUID of each target index (None for one that does not exist), in one request.

    A name that is an alias or a data stream resolves to other index names and is reported as None (not checked).
    """
    if not names:
        return {}
    path = "/" + ",".join(quote(n, safe="") for n in names) + "/_settings/index.uuid"
    resp = call_with_retries(lambda: client.transport.perform_request(
        "GET", path, params={"ignore_unavailable": "true", "allow_no_indices": "true"}))
    found = resp if isinstance(resp, dict) else {}
    out: dict[str, str | None] = {}
    for name in names:
        uuid = ((found.get(name) or {}).get("settings") or {}).get("index", {}).get("uuid")
        out[name] = str(uuid) if uuid else None
    return out


LEGACY_RECORD = ("recorded without snapshot and target index uuids (by an earlier version), so it cannot be "
                 "verified")


def stale_reason(recorded: Mapping[str, Any], current: ShardIdentity) -> str | None:
    """Why a shard's recorded completion or checkpoint does not hold for ``current`` (None when it does).

    It holds when it was recorded for the same snapshot UUID and every target index that had a UUID then has the same
    one now. A target index recorded without one did not exist then, so none of the recorded work went into it.
    """
    since = "since completion" if recorded.get("status") == RecordStatus.COMPLETED else "since the checkpoint"
    snapshot_uuid, targets = recorded.get("snapshot_uuid"), recorded.get("target_uuids")
    if not snapshot_uuid or not isinstance(targets, dict):
        return LEGACY_RECORD
    if snapshot_uuid != current.snapshot_uuid:
        return (f"different snapshot with the same name (recorded for snapshot uuid {snapshot_uuid}, this one is "
                f"{current.snapshot_uuid})")
    for name, now in sorted(current.target_uuids.items()):
        if name not in targets:
            return (f"target index {name} is not among the recorded ones ({', '.join(sorted(targets)) or 'none'}): "
                    "the rename rules or the type mode changed")
        was = targets[name]
        if was is None:
            continue
        if now is None:
            return f"target index deleted {since} ({name}, uuid {was})"
        if now != was:
            return f"target index recreated {since} ({name}: uuid {was} then, {now} now)"
    return None


@dataclass(frozen=True)
class ShardWork:
    """The recorded state of a shard's migration."""

    status: str
    checkpoint: ShardPosition | None
    docs_written: int
    bytes_written: int
    attempts: int
    raw: dict[str, Any]
    # Set by ``acquire`` when the recorded completion or checkpoint was dropped: why (``stale_reason``).
    restarted_because: str | None = None

    @property
    def completed(self) -> bool:
        """True once the shard was fully written."""
        return self.status == RecordStatus.COMPLETED


_MAPPING = {
    "dynamic": False,
    "properties": {
        "snapshot": {"type": "keyword"}, "index": {"type": "keyword"}, "shard": {"type": "integer"},
        "snapshot_uuid": {"type": "keyword"}, "kind": {"type": "keyword"}, "status": {"type": "keyword"},
        "lease_owner": {"type": "keyword"}, "lease_expires_ms": {"type": "long"},
        "updated_ms": {"type": "long"},
    },
}


class WorkCoordinator:
    """Leases and checkpoints of one shard.

    With an ``identity`` (what a worker gives), records carry it and ``acquire`` checks a recorded completion or
    checkpoint against it; without one (probes, status readers), records are taken as they are.
    """

    def __init__(self, client: OpenSearch, index: str, worker_id: str, lease_seconds: float,
                 snapshot: str, source_index: str, shard: int, identity: ShardIdentity | None = None) -> None:
        self.client = client
        self.index = index
        self.worker_id = worker_id
        self.lease_ms = int(lease_seconds * 1000)
        self.key = f"{snapshot}/{source_index}/{shard}"
        self.base = {"snapshot": snapshot, "index": source_index, "shard": shard}
        self.identity = identity
        # The target indices documents were encoded for so far (a superset of those acknowledged): a checkpoint looks
        # up the UUID of such an index that did not exist yet, so that a checkpoint never covers documents in an
        # index it records no UUID for. Set by the worker once the shard is open.
        self.written_names: Callable[[], Collection[str]] | None = None
        self._seq: tuple[int, int] | None = None
        self._doc: dict[str, Any] = {}
        self.last_write = 0.0
        # Checkpoints are written from a background thread and lease renewals from the pump: the conditional
        # writes must not race each other (the loser would take its own conflict for a lost lease).
        self._write_lock = threading.Lock()

    @property
    def target_uuids(self) -> dict[str, str | None]:
        """The target indices' UUIDs as last read (empty without an identity)."""
        return dict(self.identity.target_uuids) if self.identity else {}

    def ensure_index(self) -> None:
        """Create the coordination index once and wait until it can be written."""
        ensure_coordination_index(self.client, self.index)

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
        identity = self.identity.fields() if self.identity else {}
        if work is None:
            doc: dict[str, Any] = {**self.base, **identity, "status": RecordStatus.IN_PROGRESS.value,
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
        owner = work.raw.get("lease_owner")
        expires = int(work.raw.get("lease_expires_ms") or 0)
        if not work.completed and owner and owner != self.worker_id and expires > now:
            raise LeaseHeldError(
                f"shard {self.key} is leased by worker {owner} for {(expires - now) / 1000:.0f}s more; "
                "it runs elsewhere (or wait for its lease to expire)"
            )
        # Only a completion or a checkpoint is worth checking (an in-progress record without one holds no work), and
        # a forced run drops a completion anyway; a checkpoint is checked even then.
        has_work = (work.completed and not force) or (not work.completed and work.checkpoint is not None)
        stale = stale_reason(work.raw, self.identity) if self.identity and has_work else None
        if work.completed and not force and stale is None:
            return work
        doc = dict(work.raw)
        if (work.completed and force) or stale is not None:
            doc.update(checkpoint=None, docs_written=0, bytes_written=0, fingerprint=None)
            for key in ("completed_ms", "summary"):
                doc.pop(key, None)
        doc.update(identity, restarted_because=stale, status=RecordStatus.IN_PROGRESS.value,
                   lease_owner=self.worker_id, lease_expires_ms=now + self.lease_ms,
                   attempts=int(doc.get("attempts") or 0) + 1, updated_ms=now)
        self._write(doc)
        return replace(_work(doc), restarted_because=stale)

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

    def checkpoint(self, position: ShardPosition, docs_written: int, bytes_written: int,
                   fingerprint: dict[str, Any] | None = None) -> None:
        """Record progress (resume point, counts, the fingerprint of the documents before it) and renew the lease."""
        changes = self._resolve_written()
        now = _now_ms()
        self._update({**changes, "fingerprint": fingerprint,
                      "checkpoint": {"segment": position.segment, "doc": position.doc},
                      "docs_written": docs_written, "bytes_written": bytes_written,
                      "lease_expires_ms": now + self.lease_ms, "updated_ms": now})

    def _resolve_written(self) -> dict[str, Any]:
        """The identity fields when a target index documents went to had no UUID yet and now has one (one request,
        made only then: the first checkpoint after the bulk requests created the index)."""
        identity = self.identity
        if identity is None or self.written_names is None or not identity.missing:
            return {}
        pending = sorted(set(identity.missing) & set(self.written_names()))
        if not pending:
            return {}
        found = {n: u for n, u in target_index_uuids(self.client, pending).items() if u is not None}
        if not found:
            return {}
        self.identity = replace(identity, target_uuids={**identity.target_uuids, **found})
        return self.identity.fields()

    def final_identity(self) -> ShardIdentity | None:
        """The identity as it stands once every document is acknowledged: the target UUIDs read again (one request).

        Raises TargetIndexRecreatedError when a target index that had a UUID has another one (or none) now: the
        documents written into it before are gone, and the shard must run again from its start.
        """
        identity = self.identity
        if identity is None:
            return None
        now = target_index_uuids(self.client, sorted(identity.target_uuids))
        for name, was in sorted(identity.target_uuids.items()):
            if was is not None and now.get(name) != was:
                what = "deleted" if now.get(name) is None else f"recreated (uuid {was} then, {now[name]} now)"
                raise TargetIndexRecreatedError(
                    f"shard {self.key}: target index {name} was {what} while the shard was written into it, so "
                    "documents sent before are gone; the shard is not recorded as completed, and the next run "
                    "backfills it again from the start")
        self.identity = replace(identity, target_uuids=now)
        return self.identity

    def renew(self) -> None:
        """Extend the lease without new progress."""
        now = _now_ms()
        self._update({"lease_expires_ms": now + self.lease_ms, "updated_ms": now})

    def complete(self, docs_written: int, bytes_written: int, summary: dict[str, Any],
                 fingerprint: dict[str, Any] | None = None) -> None:
        """Mark the shard done, with the target UUIDs read again now; later runs skip it while its snapshot and
        target indices are the same (unless forced). Raises TargetIndexRecreatedError instead (see
        ``final_identity``)."""
        identity = self.final_identity()
        now = _now_ms()
        self._update({**(identity.fields() if identity else {}), "status": RecordStatus.COMPLETED.value,
                      "lease_owner": None, "lease_expires_ms": 0, "docs_written": docs_written,
                      "bytes_written": bytes_written, "completed_ms": now, "updated_ms": now, "summary": summary,
                      # What the validation report compares the target with (workers/rfs/fingerprints.py).
                      "fingerprint": fingerprint})

    def release(self) -> None:
        """Give the lease up after a failure, so that a retry need not wait for it to expire."""
        # Best effort: if this fails too, the lease simply expires.
        with contextlib.suppress(Exception):
            self._update({"lease_owner": None, "lease_expires_ms": 0, "updated_ms": _now_ms()})


# The id prefix of a snapshot's registration record (workers/lifecycle/register.py); every other document is a shard's.
REGISTRATION_PREFIX = "registration:"


def ensure_coordination_index(client: OpenSearch, index: str) -> None:
    """Create the coordination index once (no replicas beyond one; hidden from wildcard searches) and wait for it."""
    if not client.indices.exists(index=index):
        try:
            client.indices.create(index=index, body={
                "settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1", "hidden": True}},
                "mappings": _MAPPING,
            })
        except RequestError as exc:
            if "already_exists" not in str(exc.error):
                raise
    # A fresh index answers 503 until its shard is allocated.
    # (opensearch-py takes a "timeout" parameter for its own request timeout, so it goes in the URL.)
    client.transport.perform_request("GET", f"/_cluster/health/{index}?wait_for_status=yellow&timeout=60s",
                                     timeout=90)


def _work(doc: dict[str, Any]) -> ShardWork:
    cp = doc.get("checkpoint")
    position = ShardPosition(cp["segment"], int(cp["doc"])) if cp else None
    return ShardWork(str(doc.get("status")), position, int(doc.get("docs_written") or 0),
                     int(doc.get("bytes_written") or 0), int(doc.get("attempts") or 0), doc)
