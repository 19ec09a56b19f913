"""The backfill's progress as the coordination index records it: one row per shard, and totals."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from opensearchpy import OpenSearch, helpers


class ShardOutcome(StrEnum):
    """How a shard run ended, as the worker reports it: ``ShardResult.status``, its ``--json`` output and log line,
    the ``status`` of a ``shard_backfill`` materialization (Pipes metadata). A run that fails raises instead (the
    Dagster run fails); there is no failed outcome. The values are stored in run metadata: keep them."""

    COMPLETED = "completed"  # this run wrote the shard's last documents and recorded it completed
    # recorded completed before, for the same snapshot UUID into the same target indices (UUIDs): coordination.py
    ALREADY_COMPLETED = "already-completed"
    LEASED_ELSEWHERE = "leased-elsewhere"  # another worker holds its lease; left to it (run_shards(skip_leased))


# The outcomes after which the shard's documents are all on the target (a plain string compares equal to its member).
DONE: frozenset[ShardOutcome] = frozenset({ShardOutcome.COMPLETED, ShardOutcome.ALREADY_COMPLETED})


class RecordStatus(StrEnum):
    """The ``status`` field of a shard's document in the coordination index (written by coordination.py)."""

    IN_PROGRESS = "in_progress"  # a worker took the lease at least once; checkpoints may follow
    COMPLETED = "completed"  # every document acknowledged


class ShardState(StrEnum):
    """A shard's state as ``console backfill status`` shows it, derived from its record and the clock."""

    COMPLETED = "completed"
    IN_PROGRESS = "in-progress"  # a worker's lease runs
    LEASE_EXPIRED = "lease-expired"  # no live lease: stalled, failed and released, or not yet retried


@dataclass(frozen=True)
class ShardStatus:
    """One shard's recorded work (see coordination.py for the document it comes from)."""

    snapshot: str
    index: str
    shard: int
    state: ShardState
    docs_written: int
    bytes_written: int
    checkpoint: dict[str, Any] | None
    lease_owner: str | None
    lease_expires_ms: int
    attempts: int
    updated_ms: int | None
    # The record's identity (None in records of earlier versions): the snapshot's UUID, each target index's UUID.
    snapshot_uuid: str | None = None
    target_uuids: dict[str, str | None] | None = None


@dataclass(frozen=True)
class BackfillStatus:
    """Every shard recorded in a coordination index (``exists`` is False before the first worker ran)."""

    coordination_index: str
    exists: bool
    shards: list[ShardStatus] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        """Shards per state, and documents and bytes written over all shards."""
        counts = {state.value: sum(1 for s in self.shards if s.state == state) for state in ShardState}
        return {"shards": len(self.shards), **counts,
                "docs_written": sum(s.docs_written for s in self.shards),
                "bytes_written": sum(s.bytes_written for s in self.shards)}


def shard_state(doc: dict[str, Any], now_ms: int) -> ShardState:
    """The state of the shard whose coordination document is ``doc``, at ``now_ms``."""
    if doc.get("status") == RecordStatus.COMPLETED:
        return ShardState.COMPLETED
    if doc.get("lease_owner") and int(doc.get("lease_expires_ms") or 0) > now_ms:
        return ShardState.IN_PROGRESS
    return ShardState.LEASE_EXPIRED


def read_status(client: OpenSearch, coordination_index: str, snapshot: str | None = None,
                now_ms: int | None = None) -> BackfillStatus:
    """Read every shard document of ``coordination_index`` (only ``snapshot``'s when given), sorted."""
    if not client.indices.exists(index=coordination_index):
        return BackfillStatus(coordination_index, exists=False)
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    query: dict[str, Any] = {"term": {"snapshot": snapshot}} if snapshot else {"match_all": {}}
    rows = []
    for hit in helpers.scan(client, index=coordination_index, query={"query": query}, size=1000,
                            expand_wildcards="all"):
        doc = hit["_source"]
        if doc.get("kind") == "registration":  # a snapshot's registration record, not a shard's
            continue
        cp = doc.get("checkpoint")
        rows.append(ShardStatus(
            snapshot=str(doc.get("snapshot")), index=str(doc.get("index")), shard=int(doc.get("shard") or 0),
            state=shard_state(doc, now), docs_written=int(doc.get("docs_written") or 0),
            bytes_written=int(doc.get("bytes_written") or 0),
            checkpoint={"segment": str(cp["segment"]), "doc": int(cp["doc"])} if cp else None,
            lease_owner=doc.get("lease_owner") or None, lease_expires_ms=int(doc.get("lease_expires_ms") or 0),
            attempts=int(doc.get("attempts") or 0),
            updated_ms=int(doc["updated_ms"]) if doc.get("updated_ms") is not None else None,
            snapshot_uuid=doc.get("snapshot_uuid") or None,
            target_uuids=doc["target_uuids"] if isinstance(doc.get("target_uuids"), dict) else None,
        ))
    rows.sort(key=lambda s: (s.snapshot, s.index, s.shard))
    return BackfillStatus(coordination_index, exists=True, shards=rows)


def snapshot_counts(client: OpenSearch, coordination_index: str, snapshot: str) -> dict[str, int]:
    """Per source index, the documents its completed shards read from the snapshot and sent: their fingerprints'
    counts (dead-lettered documents included: the target is expected to hold them too), else the documents written.

    The exact count of what the snapshot held, where the source's ``_count`` taken before the snapshot is not: with
    clients writing during the snapshot (a live migration), the snapshot holds writes the count missed.
    """
    counts: dict[str, int] = {}
    if not client.indices.exists(index=coordination_index):
        return counts
    # The last shards' completions may not be searchable yet.
    client.indices.refresh(index=coordination_index, expand_wildcards="all")
    query = {"query": {"bool": {"filter": [{"term": {"snapshot": snapshot}},
                                           {"term": {"status": RecordStatus.COMPLETED.value}}]}}}
    for hit in helpers.scan(client, index=coordination_index, query=query, size=1000, expand_wildcards="all"):
        doc = hit["_source"]
        if doc.get("kind") == "registration":
            continue
        fingerprint = doc.get("fingerprint")
        indices = fingerprint.get("indices") if isinstance(fingerprint, dict) else None
        sent = (sum(int(fp.get("count") or 0) for fp in indices.values()) if isinstance(indices, dict)
                else int(doc.get("docs_written") or 0))
        index = str(doc.get("index"))
        counts[index] = counts.get(index, 0) + sent
    return counts
