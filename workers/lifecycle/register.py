"""Register the snapshot for the backfill: check every shard in scope is readable, size what it will write, and
record the snapshot's identity where the workers and the console tools find it (the coordination index).

What this gathers is also the evidence of the last gate before the backfill: the shards and counts in scope, the
allow lists, and the target's room against the estimate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import OpenSearchException

from workers.common.errors import MigrationError
from workers.lifecycle.capacity import TargetCapacity, target_capacity
from workers.rfs.coordination import REGISTRATION_PREFIX, ensure_coordination_index
from workers.snapshot.repository import SnapshotRepository


@dataclass(frozen=True)
class IndexScope:
    """One index the backfill moves."""

    index: str
    shards: int
    snapshot_bytes: int  # the Lucene files of its shards in the snapshot
    source_documents: int | None
    target_names: tuple[str, ...]
    target_replicas: int  # as the migrated metadata set it on the target (0 when not created yet)

    @property
    def estimated_bytes(self) -> int:
        """What the target will hold for it: roughly the snapshot's size, once per copy."""
        return self.snapshot_bytes * (1 + self.target_replicas)


@dataclass
class Registration:
    """A snapshot registered for the backfill."""

    snapshot: str
    snapshot_uuid: str
    writer: str
    repository: str
    coordination_index: str
    indices: list[IndexScope]
    backfill_allowlist: list[str] = field(default_factory=list)
    metadata_allowlist: list[str] = field(default_factory=list)
    capacity: TargetCapacity | None = None
    capacity_note: str = ""
    registered_ms: int = 0

    @property
    def shards(self) -> int:
        """Shards in scope."""
        return sum(i.shards for i in self.indices)

    @property
    def estimated_bytes(self) -> int:
        """What the backfill will add to the target's disks, replicas included."""
        return sum(i.estimated_bytes for i in self.indices)

    @property
    def fits(self) -> bool | None:
        """Whether the estimate fits in the room above the target's high watermark (None: unknown)."""
        return None if self.capacity is None else self.estimated_bytes <= self.capacity.room_bytes

    def summary(self) -> str:
        """One line: what `workflow status` shows beside the gate."""
        docs = sum(i.source_documents or 0 for i in self.indices)
        room = (f"target room {_size(self.capacity.room_bytes)} above its {self.capacity.high_watermark} watermark"
                if self.capacity else f"target room unknown ({self.capacity_note})")
        verdict = {True: "fits", False: "DOES NOT FIT", None: "unchecked"}[self.fits]
        return (f"{len(self.indices)} indices, {self.shards} shards, {docs} source documents; about "
                f"{_size(self.estimated_bytes)} to write, {room}: {verdict}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values (the asset's value and the registration record)."""
        return {"snapshot": self.snapshot, "snapshot_uuid": self.snapshot_uuid, "writer": self.writer,
                "repository": self.repository, "coordination_index": self.coordination_index,
                "indices": [{"index": i.index, "shards": i.shards, "snapshot_bytes": i.snapshot_bytes,
                             "source_documents": i.source_documents, "target_names": list(i.target_names),
                             "target_replicas": i.target_replicas} for i in self.indices],
                "backfill_allowlist": self.backfill_allowlist, "metadata_allowlist": self.metadata_allowlist,
                "capacity": self.capacity.to_dict() if self.capacity else None, "capacity_note": self.capacity_note,
                "estimated_bytes": self.estimated_bytes, "fits": self.fits, "registered_ms": self.registered_ms}

    def to_markdown(self) -> str:
        """The evidence of the gate before the backfill."""
        lines = [f"**{self.summary()}**", "",
                 f"snapshot `{self.snapshot}` (uuid {self.snapshot_uuid}, written by {self.writer}) in "
                 f"{self.repository}; registered in `{self.coordination_index}`", "",
                 "| source index | shards | source documents | snapshot size | target index | replicas | to write |",
                 "|---|---|---|---|---|---|---|"]
        for i in self.indices:
            lines.append(f"| {i.index} | {i.shards} | {'—' if i.source_documents is None else i.source_documents} | "
                         f"{_size(i.snapshot_bytes)} | {', '.join(i.target_names) or '—'} | {i.target_replicas} | "
                         f"{_size(i.estimated_bytes)} |")
        every = "all (indices not starting with .)"
        lines += ["", f"backfill allow list: {', '.join(self.backfill_allowlist) or every}",
                  f"metadata allow list: {', '.join(self.metadata_allowlist) or 'all'}", ""]
        if self.capacity:
            c = self.capacity
            lines.append(f"target disk: {c.nodes} data node(s), {_size(c.free_bytes)} free of {_size(c.total_bytes)}, "
                         f"{_size(c.room_bytes)} before the high watermark ({c.high_watermark})")
        else:
            lines.append(f"target disk: unknown ({self.capacity_note})")
        return "\n".join(lines)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _replicas(client: OpenSearch, names: list[str]) -> dict[str, int]:
    if not names:
        return {}
    found = client.indices.get_settings(index=",".join(names), name="index.number_of_replicas",
                                        params={"ignore_unavailable": "true", "allow_no_indices": "true",
                                                "expand_wildcards": "all"})
    return {name: int(body["settings"]["index"]["number_of_replicas"]) for name, body in found.items()}


def register(repo: SnapshotRepository, snapshot: str, scope: dict[str, int], target_names: dict[str, list[str]],
             target: OpenSearch, coordination_index: str, *, repository: str,
             source_counts: dict[str, int] | None = None, backfill_allowlist: list[str] | None = None,
             metadata_allowlist: list[str] | None = None) -> Registration:
    """Read every shard's snapshot metadata in ``scope`` (index -> shards), size the backfill, and record it.

    Raises MigrationError naming the shard whose snapshot metadata cannot be read (nothing is recorded then).
    """
    ref = repo.snapshot(snapshot)
    indices = []
    replicas = _replicas(target, [n for names in target_names.values() for n in names])
    for index, shards in sorted(scope.items()):
        size = 0
        for shard in range(shards):
            try:
                files = repo.shard_snapshot(snapshot, index, shard).files
            except MigrationError as exc:
                raise MigrationError(f"snapshot {snapshot}: shard {index}:{shard} cannot be read: {exc}") from None
            size += sum(f.length for f in files)
        names = tuple(target_names.get(index, [index]))
        indices.append(IndexScope(index, shards, size, (source_counts or {}).get(index), names,
                                  max((replicas.get(n, 0) for n in names), default=0)))
    registration = Registration(snapshot, ref.uuid, f"{ref.engine} {ref.version}" if ref.version else "unknown",
                                repository, coordination_index, indices, list(backfill_allowlist or []),
                                list(metadata_allowlist or []), registered_ms=int(time.time() * 1000))
    try:
        registration.capacity = target_capacity(target)
    except OpenSearchException as exc:
        # A managed service may not expose node stats; the gate then says the room is unknown.
        registration.capacity_note = f"the target did not give its node stats: {str(exc)[:160]}"
    ensure_coordination_index(target, coordination_index)
    target.index(index=coordination_index, id=f"{REGISTRATION_PREFIX}{ref.uuid}",
                 body={"kind": "registration", "snapshot": snapshot, "snapshot_uuid": ref.uuid,
                       "status": "registered", "updated_ms": registration.registered_ms,
                       "registration": registration.to_dict()}, refresh="wait_for")
    return registration
