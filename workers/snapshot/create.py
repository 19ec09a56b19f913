"""Create a snapshot through the source cluster's snapshot API and wait for it to finish."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from workers.common.errors import MigrationError


class SnapshotError(MigrationError):
    """The source refused or failed a snapshot; the message names the repository and snapshot."""


@dataclass(frozen=True)
class SnapshotResult:
    """A finished snapshot: its state, indices and shard tally."""

    repository: str
    snapshot: str
    state: str
    indices: list[str]
    shards_total: int
    shards_successful: int
    failures: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def register_fs_repository(client: OpenSearch, repository: str, location: str) -> None:
    """Register (or re-register) a shared-filesystem repository at ``location`` (inside ``path.repo``)."""
    try:
        client.snapshot.create_repository(
            repository=repository, body={"type": "fs", "settings": {"location": location, "compress": True}}
        )
    except TransportError as exc:
        raise SnapshotError(f"source refused repository {repository!r} at {location}: {exc.error} "
                            f"{exc.info if isinstance(exc.info, str) else ''}".strip()) from None


def create_snapshot(
    client: OpenSearch,
    repository: str,
    snapshot: str,
    *,
    indices: str = "*",
    include_global_state: bool = True,
    poll_s: float = 1.0,
    timeout_s: float = 6 * 3600,
    progress: Callable[[int, int], None] | None = None,
) -> SnapshotResult:
    """Start ``snapshot`` of ``indices`` (the source's own index expression) and wait until it ends."""
    began = time.monotonic()
    try:
        client.snapshot.create(
            repository=repository, snapshot=snapshot,
            body={"indices": indices, "include_global_state": include_global_state, "ignore_unavailable": False},
            params={"wait_for_completion": "false"},
        )
    except TransportError as exc:
        raise SnapshotError(f"source refused snapshot {repository}/{snapshot}: {exc.error} {exc.info}") from None
    while True:
        info = client.snapshot.get(repository=repository, snapshot=snapshot)["snapshots"][0]
        state = info.get("state", "UNKNOWN")
        shards = info.get("shards", {})
        if state in ("SUCCESS", "FAILED", "PARTIAL", "INCOMPATIBLE"):
            result = SnapshotResult(
                repository, snapshot, state, sorted(info.get("indices", [])), int(shards.get("total", 0)),
                int(shards.get("successful", 0)), info.get("failures", []), time.monotonic() - began,
            )
            if state != "SUCCESS":
                raise SnapshotError(
                    f"snapshot {repository}/{snapshot} ended {state}: {result.shards_successful}/"
                    f"{result.shards_total} shards; failures: {result.failures[:3]}"
                )
            return result
        if progress:
            status = client.snapshot.status(repository=repository, snapshot=snapshot)["snapshots"]
            stats = status[0].get("shards_stats", {}) if status else {}
            progress(int(stats.get("done", 0)), int(stats.get("total", 0)))
        if time.monotonic() - began > timeout_s:
            raise SnapshotError(f"snapshot {repository}/{snapshot} still {state} after {timeout_s:.0f}s")
        time.sleep(poll_s)
