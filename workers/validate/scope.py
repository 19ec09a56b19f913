"""What a validation compares: the snapshot the backfill read, how its documents were named on the target, and how."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from workers.common.clusters import ClusterConnection
from workers.common.errors import ConfigurationError
from workers.common.fingerprint import BUCKETS
from workers.metadata.rename import RenameRules

Mode = Literal["full", "sample"]
# What the target is compared with: the fingerprints the backfill recorded from the snapshot, or the live source
# (a live migration: clients still write to the source and the replayer follows, so the snapshot is out of date).
Against = Literal["snapshot", "source"]


@dataclass(frozen=True)
class SnapshotScope:
    """The snapshot side: where it is, which indices (with the source's counts at snapshot time)."""

    repo_uri: str
    snapshot: str
    snapshot_uuid: str
    source_counts: dict[str, int | None]  # None: not counted (a snapshot given by name alone)
    s3_endpoint: str | None = None
    s3_region: str | None = None


@dataclass(frozen=True)
class ValidationOptions:
    """How to validate; the workflow file's ``validation`` section and the backfill's naming rules."""

    target: ClusterConnection
    source: ClusterConnection | None = None  # for the query comparison; None: queries are skipped
    coordination_index: str = ".migrations_working_state"
    rename: RenameRules = field(default_factory=RenameRules)
    type_mode: str = "drop"
    transform: str | None = None
    mode: Mode = "full"
    sample_buckets: int = 16  # of BUCKETS, in sample mode
    sample_offset: int = 0  # which buckets a sample starts at (a schedule moves it on, covering all over time)
    connections: int = 4
    page_size: int = 1000
    max_listed: int = 100  # differing ids listed per index
    indices: tuple[str, ...] = ()  # source or target index names to validate; empty: all
    queries: bool = True
    metadata: bool = True
    custom_queries: tuple[dict[str, object], ...] = ()
    against: Against = "snapshot"
    # Live mode: how long a difference may take to converge (the replay's lag), and how often it is looked at again.
    settle_s: float = 5.0
    rechecks: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.sample_buckets <= BUCKETS:
            raise ConfigurationError(f"validation sample: {self.sample_buckets} buckets; give 1 to {BUCKETS}")
        if self.against == "source" and self.source is None:
            raise ConfigurationError("validation against the source: no source cluster given")
        if self.settle_s < 0 or self.rechecks < 0:
            raise ConfigurationError(f"validation live: settle_s {self.settle_s} and rechecks {self.rechecks} "
                                     "must not be negative")

    def sampled(self) -> frozenset[int] | None:
        """The buckets a sample hashes (None: all, a full validation)."""
        if self.mode == "full" or self.sample_buckets >= BUCKETS:
            return None
        return frozenset((self.sample_offset + i) % BUCKETS for i in range(self.sample_buckets))


def sample_confidence(buckets: int, differing_documents: int = 1) -> float:
    """The chance a sample of ``buckets`` of the 256 sees at least one of ``differing_documents`` spread at random."""
    miss = 1 - buckets / BUCKETS
    return 1 - miss ** differing_documents


def documents_for_confidence(buckets: int, confidence: float = 0.95) -> int:
    """How many differing documents a sample of ``buckets`` finds at least one of with ``confidence``."""
    if buckets >= BUCKETS:
        return 1
    n = 1
    while sample_confidence(buckets, n) < confidence:
        n += 1
    return n
