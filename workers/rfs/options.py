"""The backfill worker's options, with their defaults (documented in ``python -m workers.rfs --help``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from workers.common.clusters import ClusterConnection
from workers.common.errors import ConfigurationError
from workers.metadata.rename import RenameRules

DEFAULT_COORDINATION_INDEX = ".migrations_working_state"


@dataclass(frozen=True)
class BackfillOptions:
    """How one shard is moved."""

    target: ClusterConnection
    max_connections: int = 10
    # Halve the requests in flight when the target throttles, grow back by one per clean round (see concurrency.py).
    adaptive_concurrency: bool = True
    documents_per_bulk_request: int | None = None
    max_bulk_bytes: int = 10 << 20
    gzip: bool = True
    allowed_doc_exception_types: tuple[str, ...] = ()
    transform: str | None = None
    # The metadata migration's own rules (same syntax, same matching), so documents go where it created the index.
    rename: RenameRules = field(default_factory=RenameRules)
    # Elasticsearch <= 6 types: "drop" (the metadata migration's multi_type "union": one index, types merged) or
    # "index-per-type" (its "split": type T of a multi-type index I goes to i_t; a single-type index keeps its name).
    type_mode: str = "drop"
    dead_letter: str | None = "dead-letters"
    # Where an s3:// dead-letter store is served from (None: AWS's endpoint; the region from boto3's own chain).
    dead_letter_s3_endpoint: str | None = None
    dead_letter_s3_region: str | None = None
    coordination_index: str = DEFAULT_COORDINATION_INDEX
    lease_seconds: float = 600.0
    force: bool = False
    verify_checksums: bool = True
    max_retries: int = 10
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    worker_id: str = field(default="")
    # Encode common-shape chunks with the C extension when it is built (the Python path writes the same bytes).
    native: bool = True

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ConfigurationError("max_connections must be at least 1")
        if self.documents_per_bulk_request is not None and self.documents_per_bulk_request < 1:
            raise ConfigurationError("documents_per_bulk_request must be at least 1")
        if self.max_bulk_bytes < 1024:
            raise ConfigurationError("max_bulk_bytes must be at least 1024")
        if self.type_mode not in ("drop", "index-per-type"):
            raise ConfigurationError(f"type_mode must be drop or index-per-type, not {self.type_mode!r}")
        if self.lease_seconds < 1:
            raise ConfigurationError("lease_seconds must be at least 1")
