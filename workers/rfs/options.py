"""The backfill worker's options, with their defaults (documented in ``python -m workers.rfs --help``).

A worker run is described by one :class:`ShardWorkerRequest`: the Dagster resource builds it from the workflow
config and sends it whole as the Pipes extras; the worker reads the same object back (and the command line builds it
from flags, for people). No option crosses the boundary as a flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from workers.common.clusters import ClusterConnection, validation_message
from workers.common.errors import ConfigurationError
from workers.metadata.rename import RenameRules

DEFAULT_COORDINATION_INDEX = ".migrations_working_state"
# Unknown keys in a request are errors (a misspelt option must not be silently dropped).
_STRICT = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class BackfillOptions:
    """How one shard is moved."""

    __pydantic_config__ = _STRICT

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
    # Fingerprint what is sent (per target index, kept with the shard's completion) for the validation report.
    fingerprint: bool = True

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


@dataclass(frozen=True)
class SnapshotSource:
    """The repository and snapshot a shard is read from."""

    __pydantic_config__ = _STRICT

    repo: str  # file:///path or s3://bucket/prefix
    snapshot: str
    s3_endpoint: str | None = None
    s3_region: str | None = None


@dataclass(frozen=True)
class WorkerLog:
    """Where a worker's log lines go besides stderr, and how often it reports progress."""

    __pydantic_config__ = _STRICT

    file: str | None = None
    file_only: bool = False
    progress_interval_s: float = 10.0


@dataclass(frozen=True)
class ShardWorkerRequest:
    """Everything one worker run is given: which shard of which snapshot, how, and where its log goes."""

    __pydantic_config__ = _STRICT

    source: SnapshotSource
    index: str
    shard: int
    options: BackfillOptions
    log: WorkerLog = field(default_factory=WorkerLog)

    def to_extras(self) -> dict[str, Any]:
        """The Pipes extras carrying this request (JSON values; secrets travel as variable names only)."""
        return {EXTRAS_KEY: _REQUEST.dump_python(self, mode="json")}

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any]) -> ShardWorkerRequest:
        """The request a resource sent; an error naming each bad key."""
        if EXTRAS_KEY not in extras:
            raise ConfigurationError(f"the Pipes extras have no {EXTRAS_KEY!r} (keys: {', '.join(extras) or 'none'})")
        try:
            return _REQUEST.validate_python(extras[EXTRAS_KEY])
        except ValidationError as exc:
            raise ConfigurationError(f"worker request: {validation_message(exc, EXTRAS_KEY)}") from None


EXTRAS_KEY = "shard_worker_request"
_REQUEST: TypeAdapter[ShardWorkerRequest] = TypeAdapter(ShardWorkerRequest)
