"""Where replay starts: the capture topic's records from the snapshot's start, less a safety overlap.

A write the source acknowledged before a shard's snapshot began is in the snapshot; one the proxy received shortly
before the snapshot's start time may still have been applied after it (the proxy holds a write for Kafka's
acknowledgement, and shards start their copy after the snapshot's start). So replay starts ``overlap_s`` before
the snapshot's start time: the writes of that overlap are applied twice, which is harmless for writes with ids
(index, create's second attempt aside, delete, pinned auto-id writes) and for partial updates that set values, but
not for scripted increments (docs/replay.md says so).
"""

from __future__ import annotations

from typing import Any

from workers.common.errors import ConfigurationError


def snapshot_start_ms(client: Any, repository: str, snapshot: str) -> int:
    """The snapshot's start time on the source (milliseconds since the epoch), from its snapshot API."""
    found = client.snapshot.get(repository=repository, snapshot=snapshot)
    infos = found.get("snapshots") or [s for r in found.get("responses", []) for s in r.get("snapshots", [])]
    for info in infos:
        if info.get("snapshot") == snapshot and "start_time_in_millis" in info:
            return int(info["start_time_in_millis"])
    raise ConfigurationError(f"snapshot {repository}/{snapshot}: the source does not report its start time")


def replay_start_ms(snapshot_start: int, overlap_s: float) -> int:
    """The first capture time to replay for a snapshot started at ``snapshot_start``."""
    return max(0, snapshot_start - int(overlap_s * 1000))
