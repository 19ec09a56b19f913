"""Clean up what a workflow kept while it ran: its records in the coordination index (the index itself once no
other workflow's records are left), and the snapshot repository it registered on the source.

The migrated data, the snapshot's files and the dead letters (documents the target refused, which a person may
still need) are left alone. Nothing is removed while a shard's lease is live: a running worker would recreate its
record and lose its place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, OpenSearchException

from workers.common.errors import MigrationError
from workers.rfs.status import ShardState, read_status


class ShardsRunningError(MigrationError):
    """A shard's lease is live: cleaning up now would pull the state from under its worker."""


@dataclass
class CleanupReport:
    """What was removed, and what was kept on purpose."""

    coordination_index: str
    records_removed: int = 0
    index_removed: bool = False
    repository_removed: str | None = None
    kept: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (the cleanup asset's metadata)."""
        return {"coordination_index": self.coordination_index, "records_removed": self.records_removed,
                "index_removed": self.index_removed, "repository_removed": self.repository_removed,
                "kept": self.kept, "notes": self.notes}

    def summary(self) -> str:
        """One line."""
        parts = [f"{self.records_removed} coordination record(s) removed"
                 + (f", index {self.coordination_index} removed" if self.index_removed else "")]
        if self.repository_removed:
            parts.append(f"repository {self.repository_removed} deregistered on the source")
        return "; ".join(parts)


def running_shards(target: OpenSearch, coordination_index: str, snapshot: str) -> list[str]:
    """``snapshot/index[shard]`` of the shards whose lease is live now."""
    # A lease taken within the last second is not searchable before a refresh.
    target.indices.refresh(index=coordination_index, params={"expand_wildcards": "all"})
    status = read_status(target, coordination_index, snapshot)
    return [f"{s.snapshot}/{s.index}[{s.shard}] (worker {s.lease_owner})" for s in status.shards
            if s.state == ShardState.IN_PROGRESS]


def clean_up(target: OpenSearch, coordination_index: str, snapshot: str, *, source: OpenSearch | None = None,
             repository: str | None = None) -> CleanupReport:
    """Remove ``snapshot``'s records (and the coordination index when it is left empty); deregister ``repository``
    on ``source`` when given. Raises ShardsRunningError, removing nothing, while a shard of it runs."""
    report = CleanupReport(coordination_index, kept=["the migrated indices on the target",
                                                      f"snapshot {snapshot}'s files in its repository",
                                                      "dead letters and shard worker logs"])
    if target.indices.exists(index=coordination_index):
        running = running_shards(target, coordination_index, snapshot)
        if running:
            raise ShardsRunningError(f"cannot clean up while shards run: {', '.join(running[:10])}"
                                     + (" ..." if len(running) > 10 else "")
                                     + "; wait for them (or for their leases to expire) and try again")
        deleted = target.delete_by_query(index=coordination_index, body={"query": {"term": {"snapshot": snapshot}}},
                                         params={"refresh": "true", "expand_wildcards": "all", "conflicts": "proceed"})
        report.records_removed = int(deleted.get("deleted") or 0)
        left = int(target.count(index=coordination_index, params={"expand_wildcards": "all"})["count"])
        if left == 0:
            target.indices.delete(index=coordination_index, params={"expand_wildcards": "all"})
            report.index_removed = True
        else:
            report.notes.append(f"{coordination_index} keeps {left} record(s) of other snapshots")
    else:
        report.notes.append(f"no coordination index {coordination_index} on the target")
    if source is not None and repository:
        try:
            source.snapshot.delete_repository(repository=repository)
            report.repository_removed = repository
        except NotFoundError:
            report.notes.append(f"repository {repository} was no longer registered on the source")
        except OpenSearchException as exc:
            report.notes.append(f"repository {repository} could not be deregistered on the source: {str(exc)[:160]}")
    return report
