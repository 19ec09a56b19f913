"""Get the snapshot a migration reads: register the repository, take (or find) the snapshot, list its shards."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from workers.common.errors import ConfigurationError
from workers.common.shard_key import ShardKey
from workers.metadata.allowlist import AllowList
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.create import SnapshotError, create_snapshot, register_fs_repository
from workers.snapshot.repository import SnapshotRepository


@dataclass(frozen=True)
class RepositorySpec:
    """A snapshot repository: its name on the source and where its files are (``file://`` or ``s3://``)."""

    name: str
    uri: str
    s3_region: str | None = None
    s3_endpoint: str | None = None

    @property
    def is_s3(self) -> bool:
        """True for an S3 repository."""
        return self.uri.startswith("s3://")


@dataclass
class PreparedSnapshot:
    """The snapshot in use, the shards in scope and the source's per-index counts when it was taken."""

    repository: RepositorySpec
    snapshot: str
    created: bool
    indices: dict[str, int] = field(default_factory=dict)  # index -> number of shards (indices in scope)
    source_counts: dict[str, int] = field(default_factory=dict)
    counts_taken: str = ""
    seconds: float = 0.0

    @property
    def shards(self) -> list[ShardKey]:
        """Every shard in scope, by index then shard number."""
        return [ShardKey(index, shard) for index, shards in sorted(self.indices.items()) for shard in range(shards)]

    @property
    def shard_keys(self) -> list[str]:
        """``index:shard`` for every shard in scope: the ``shards`` partition keys."""
        return [key.format() for key in self.shards]

    def to_dict(self) -> dict[str, Any]:
        """Plain values (the asset's value, read by the metadata and backfill steps)."""
        return {"repository": self.repository.name, "uri": self.repository.uri,
                "s3_region": self.repository.s3_region, "s3_endpoint": self.repository.s3_endpoint,
                "snapshot": self.snapshot, "created": self.created, "indices": self.indices,
                "source_counts": self.source_counts, "counts_taken": self.counts_taken,
                "shard_keys": self.shard_keys, "seconds": round(self.seconds, 3)}


def expand_name(template: str, now: datetime | None = None) -> str:
    """A snapshot name from its template: ``{timestamp}`` becomes the UTC time (snapshot names are lowercase)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return template.replace("{timestamp}", stamp).lower()


def register_repository(client: OpenSearch, spec: RepositorySpec) -> None:
    """Register the repository on the source (filesystem, or S3 through the source's repository-s3 plugin)."""
    if not spec.is_s3:
        register_fs_repository(client, spec.name, urlparse(spec.uri).path)
        return
    parsed = urlparse(spec.uri)
    settings: dict[str, Any] = {"bucket": parsed.netloc, "base_path": parsed.path.strip("/")}
    try:
        client.snapshot.create_repository(repository=spec.name, body={"type": "s3", "settings": settings})
    except TransportError as exc:
        raise SnapshotError(
            f"source refused S3 repository {spec.name!r} at {spec.uri}: {exc.error} (the source needs the "
            "repository-s3 plugin with credentials and endpoint in its keystore/settings; or take the snapshot "
            "to a filesystem repository, copy it to S3 and reference it with snapshot.existing)") from None


def count_documents(client: OpenSearch, indices: Iterable[str]) -> dict[str, int]:
    """Top-level documents per index (nested children are not counted), after a refresh."""
    names = list(indices)
    if not names:
        return {}
    joined = ",".join(names)
    client.indices.refresh(index=joined, params={"ignore_unavailable": "true"})
    return {name: int(client.count(index=name)["count"]) for name in names}


def in_scope(indices: Iterable[str], allowlist: Iterable[str]) -> list[str]:
    """Indices of the snapshot the backfill moves: the allow list's, else every index not starting with '.'."""
    allow = AllowList.parse(allowlist, "backfill index allow list")
    return sorted(i for i in indices if (allow.matches(i) if not allow.empty else not i.startswith(".")))


def prepare(client: OpenSearch, spec: RepositorySpec, *, create: str | None, existing: str | None,
            index_expression: list[str], include_global_state: bool, backfill_allowlist: list[str],
            progress: Callable[[int, int], None] | None = None) -> PreparedSnapshot:
    """Take the snapshot ``create`` (or find ``existing``), and list its shards in the backfill's scope."""
    began = time.monotonic()
    if bool(create) == bool(existing):
        raise ConfigurationError("snapshot: set exactly one of 'create' or 'existing'")
    if create:
        register_repository(client, spec)
        name = expand_name(create)
        expression = ",".join(index_expression) or "*"
        # Counted just before the snapshot starts: with writes paused (or captured for replay) these are its counts.
        resolved = client.indices.get(index=expression, params={"expand_wildcards": "open"})
        counts = count_documents(client, resolved.keys())
        create_snapshot(client, spec.name, name, indices=expression, include_global_state=include_global_state,
                        progress=progress)
        counts_taken = "source _count just before the snapshot started"
    else:
        name = existing or ""
        counts = {}
        counts_taken = ""
    repo = SnapshotRepository(open_blob_store(spec.uri, s3_endpoint=spec.s3_endpoint, s3_region=spec.s3_region))
    names = [ref.name for ref in repo.indices(name)]
    scope = in_scope(names, backfill_allowlist)
    shards = {index: repo.index_metadata(name, index).number_of_shards for index in scope}
    if existing:
        # The source may have moved on since an existing snapshot was taken; its counts now are the best hint.
        try:
            counts = count_documents(client, [i for i in scope if client.indices.exists(index=i)])
            counts_taken = "source _count when the snapshot was referenced (may differ from the snapshot)"
        except TransportError:
            counts, counts_taken = {}, "source unreachable: no counts"
    return PreparedSnapshot(spec, name, bool(create), shards, {i: counts[i] for i in scope if i in counts},
                            counts_taken, time.monotonic() - began)
