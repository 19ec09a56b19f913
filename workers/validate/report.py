"""The validation report: what was compared, per index and per check, and whether anything differs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workers.validate.metadata_check import MetadataRow
from workers.validate.narrow import DocumentDifference
from workers.validate.queries import QueryRow

# The report's checks, by the name the Dagster asset checks carry.
CHECKS = ("counts", "fingerprints", "metadata", "queries")
# A live row whose differences all converged on a recheck.
CONVERGED = "match once in flight arrived"


@dataclass
class IndexRow:
    """One target index: counts and fingerprints on both sides."""

    index: str  # the target index
    source_indices: list[str]
    source_count: int | None  # the source's count at snapshot time (None: split over several target indices)
    snapshot_count: int  # documents the snapshot's shards sent there (the fingerprint's count)
    target_count: int | None  # None: the index is missing on the target
    snapshot_digest: str
    target_digest: str | None
    fingerprint: str  # "match", "differs", "missing", "sample match" …
    differing_buckets: int = 0
    scan_seconds: float = 0.0
    scan_method: str = ""
    # Against the live source (``live``): ``snapshot_count``/``snapshot_digest`` are the source side's, as the
    # backfill would send its documents now; differences that converged on a recheck were writes in flight.
    live: bool = False
    converged: int = 0
    persistent_missing: int = 0
    persistent_extra: int = 0

    @property
    def count_ok(self) -> bool:
        """The target holds as many documents as the snapshot sent there; live, no document stayed missing or
        extra through the rechecks (the two counts, read moments apart, may differ by writes in flight)."""
        if self.live:
            return self.target_count is not None and not self.persistent_missing and not self.persistent_extra
        return self.target_count == self.snapshot_count

    @property
    def fingerprint_ok(self) -> bool:
        """Contents agree (in the buckets compared); live, once the writes in flight have arrived."""
        return self.fingerprint in ("match", "sample match", CONVERGED)

    def to_dict(self) -> dict[str, Any]:
        """Plain values."""
        return {"index": self.index, "source_indices": self.source_indices, "source_count": self.source_count,
                "snapshot_count": self.snapshot_count, "target_count": self.target_count,
                "snapshot_digest": self.snapshot_digest, "target_digest": self.target_digest,
                "fingerprint": self.fingerprint, "differing_buckets": self.differing_buckets,
                "scan_seconds": round(self.scan_seconds, 3), "scan_method": self.scan_method,
                **({"live_source_count": self.snapshot_count, "converged": self.converged,
                    "persistent_missing": self.persistent_missing, "persistent_extra": self.persistent_extra}
                   if self.live else {})}

    def count_finding(self, settle: str) -> str:
        """Why the counts check failed for this row (``settle``: how the live rechecks were spaced)."""
        held = "no such index" if self.target_count is None else self.target_count
        if not self.live:
            return f"{self.index}: snapshot sent {self.snapshot_count}, target holds {held}"
        return (f"{self.index}: live source holds {self.snapshot_count}, target {held} (read moments apart); after "
                f"{self.converged} differences in flight converged, {self.persistent_missing} missing and "
                f"{self.persistent_extra} extra persisted through {settle}")


@dataclass
class ValidationReport:
    """Everything one validation found."""

    snapshot: str
    snapshot_uuid: str
    target: str
    source: str | None
    mode: str  # "full" or "sample"
    started: str  # ISO time
    against: str = "snapshot"  # or "source": the live source, in a live migration
    settle_s: float | None = None  # live: the rechecks' spacing and number
    rechecks: int | None = None
    seconds: float = 0.0
    sample_buckets: int | None = None
    confidence: str = ""
    indices: list[IndexRow] = field(default_factory=list)
    differences: list[DocumentDifference] = field(default_factory=list)
    queries: list[QueryRow] = field(default_factory=list)
    metadata: list[MetadataRow] = field(default_factory=list)
    replay: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    # Checks not run (for example queries without a reachable source): name -> why.
    skipped: dict[str, str] = field(default_factory=dict)
    # Every shard's snapshot-side fingerprints ("index/shard" -> target index -> fingerprint), kept in a file of
    # their own so that later checks need neither the coordination index nor the snapshot's documents.
    snapshot_shards: dict[str, Any] = field(default_factory=dict)

    def passed(self, check: str) -> bool:
        """Whether ``check`` (one of CHECKS) found nothing wrong (a skipped check passes)."""
        if check == "counts":
            return all(r.count_ok for r in self.indices)
        if check == "fingerprints":
            return all(r.fingerprint_ok for r in self.indices)
        if check == "metadata":
            return all(r.ok for r in self.metadata)
        if check == "queries":
            return all(r.match for r in self.queries)
        raise ValueError(f"unknown check {check!r}; checks: {', '.join(CHECKS)}")

    @property
    def live(self) -> bool:
        """Compared with the live source (not the snapshot)."""
        return self.against == "source"

    @property
    def against_label(self) -> str:
        """What the target was compared with, as the report states it."""
        return "against source (live)" if self.live else "against snapshot"

    @property
    def converged(self) -> int:
        """Live: differences that converged on a recheck (writes in flight), over every index."""
        return sum(r.converged for r in self.indices)

    @property
    def clean(self) -> bool:
        """Nothing differs anywhere."""
        return all(self.passed(c) for c in CHECKS)

    def failures(self, check: str) -> list[str]:
        """One line per finding of ``check``, naming the index (and the ids) at fault."""
        if check == "counts":
            return [r.count_finding(f"{self.rechecks} rechecks {self.settle_s or 0:g}s apart")
                    for r in self.indices if not r.count_ok]
        if check == "fingerprints":
            out = [f"{r.index}: {r.fingerprint}" for r in self.indices if not r.fingerprint_ok]
            return out + [f"{d.index}/{d.id}: {d.kind}" for d in self.differences]
        if check == "metadata":
            return [f"{r.index}: {r.status}" + (f" ({'; '.join(r.differences)})" if r.differences else "")
                    for r in self.metadata if not r.ok]
        if check == "queries":
            return [f"{r.index} {r.query}: source {r.source} / target {r.target_result}" + (f" ({r.note})" if r.note
                                                                                            else "")
                    for r in self.queries if not r.match]
        raise ValueError(f"unknown check {check!r}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON file's content."""
        return {"snapshot": self.snapshot, "snapshot_uuid": self.snapshot_uuid, "target": self.target,
                "source": self.source, "mode": self.mode, "against": self.against,
                "live": ({"settle_s": self.settle_s, "rechecks": self.rechecks, "converged": self.converged}
                         if self.live else None),
                "started": self.started, "seconds": round(self.seconds, 3),
                "sample_buckets": self.sample_buckets, "confidence": self.confidence, "clean": self.clean,
                "checks": {c: {"passed": self.passed(c), "skipped": self.skipped.get(c),
                               "findings": self.failures(c)} for c in CHECKS},
                "indices": [r.to_dict() for r in self.indices],
                "differences": [d.to_dict() for d in self.differences],
                "queries": [q.to_dict() for q in self.queries],
                "metadata": [m.to_dict() for m in self.metadata],
                "replay": self.replay, "notes": self.notes}
