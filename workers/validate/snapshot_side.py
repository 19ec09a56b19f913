"""The snapshot side: the fingerprints the backfill recorded per shard, summed per target index; a shard that has
none (fingerprinting off, or resumed from a checkpoint that kept none) is read again from the snapshot."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError

from workers.common.fingerprint import (
    Fingerprint,
    bucket_of,
    canonical_source,
    fingerprints_from_dict,
    fingerprints_to_dict,
)
from workers.documents.reader import open_shard
from workers.rfs.bulk import BulkItemBuilder
from workers.rfs.fingerprints import recorded_fingerprints
from workers.rfs.naming import TargetNames
from workers.rfs.options import BackfillOptions
from workers.rfs.status import RecordStatus
from workers.snapshot.repository import SnapshotRepository
from workers.validate.scope import SnapshotScope, ValidationOptions

log = logging.getLogger("workers.validate")

ShardRef = tuple[str, int]  # (source index, shard)


@dataclass
class SnapshotSide:
    """Per target index: the fingerprint of what the snapshot's shards sent there, and which shards sent it."""

    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)
    shards: dict[str, list[ShardRef]] = field(default_factory=dict)  # target index -> contributing shards
    target_names: dict[str, list[str]] = field(default_factory=dict)  # source index -> its target indices
    recomputed: list[ShardRef] = field(default_factory=list)  # read again: no recorded fingerprint
    shard_fingerprints: dict[ShardRef, dict[str, Fingerprint]] = field(default_factory=dict)

    def shards_to_dict(self) -> dict[str, Any]:
        """Every shard's fingerprints, as a report keeps them (``shards_from_dict`` reads them back)."""
        return {f"{index}/{shard}": fingerprints_to_dict(fps)
                for (index, shard), fps in sorted(self.shard_fingerprints.items())}


def shards_from_dict(data: dict[str, Any]) -> dict[ShardRef, dict[str, Fingerprint]]:
    """Back from ``SnapshotSide.shards_to_dict``."""
    out: dict[ShardRef, dict[str, Fingerprint]] = {}
    for key, fps in data.items():
        index, _, shard = key.rpartition("/")
        out[(index, int(shard))] = fingerprints_from_dict(fps)
    return out


def builder_for(options: ValidationOptions) -> BulkItemBuilder:
    """The backfill's own document encoder (renames, type handling, transform), so re-read documents are the ones
    that were sent."""
    return BulkItemBuilder(BackfillOptions(target=options.target, rename=options.rename, type_mode=options.type_mode,
                                           transform=options.transform))


def recorded(client: OpenSearch, index: str, scope: SnapshotScope, shards: list[ShardRef]
             ) -> dict[ShardRef, dict[str, Fingerprint]]:
    """The fingerprints in the completion records of ``shards`` for this snapshot (its UUID: names repeat). Read by
    id, which is real-time: a search could miss a completion written in the last second."""
    if not shards:
        return {}
    try:
        resp = client.mget(index=index, body={"ids": [f"{scope.snapshot}/{i}/{s}" for i, s in shards]})
    except NotFoundError:
        return {}
    out: dict[ShardRef, dict[str, Fingerprint]] = {}
    for doc in resp["docs"]:
        raw = doc.get("_source") or {}
        if (not doc.get("found") or raw.get("status") != RecordStatus.COMPLETED.value
                or raw.get("snapshot_uuid") != scope.snapshot_uuid):
            continue
        found = recorded_fingerprints(raw)
        if found is not None:
            out[(str(raw["index"]), int(raw["shard"]))] = found.by_index
    return out


def shard_documents(repo: SnapshotRepository, snapshot: str, index: str, shard: int, builder: BulkItemBuilder
                    ) -> Iterator[tuple[str, str, str | None, bytes]]:
    """(target index, id, routing, source as sent) of every document the backfill sends for the shard."""
    reader = open_shard(repo, snapshot, index, shard, verify_checksums=False)
    try:
        for item in builder.items(reader.positioned()):
            yield item.index, item.id, item.routing, item.source
    finally:
        reader.close()


def fingerprint_shard(repo: SnapshotRepository, snapshot: str, index: str, shard: int,
                      builder: BulkItemBuilder) -> dict[str, Fingerprint]:
    """A shard's fingerprints per target index, read from the snapshot (what the backfill records as it sends)."""
    out: dict[str, Fingerprint] = {}
    for target, doc_id, routing, source in shard_documents(repo, snapshot, index, shard, builder):
        out.setdefault(target, Fingerprint()).add(doc_id, routing, canonical_source(source))
    return out


def snapshot_side(repo: SnapshotRepository, client: OpenSearch, scope: SnapshotScope,
                  options: ValidationOptions, indices: list[str],
                  known: dict[ShardRef, dict[str, Fingerprint]] | None = None) -> SnapshotSide:
    """The snapshot side of ``indices`` (source index names): each shard's fingerprints from ``known`` (what an
    earlier report kept), else the coordination index, else read again from the snapshot."""
    side = SnapshotSide()
    metas = {index: repo.index_metadata(scope.snapshot, index) for index in indices}
    refs = [(i, s) for i, meta in metas.items() for s in range(meta.number_of_shards)]
    found = {ref: fps for ref, fps in (known or {}).items() if ref in refs}
    found.update(recorded(client, options.coordination_index, scope, [r for r in refs if r not in found]))
    builder = builder_for(options)
    for index in indices:
        meta = metas[index]
        names = TargetNames.of_index(options.rename, options.type_mode,
                                     meta.mappings if options.type_mode == "index-per-type" else ())
        side.target_names[index] = names.every(index)
        for name in side.target_names[index]:
            side.fingerprints.setdefault(name, Fingerprint())
            side.shards.setdefault(name, [])
        for shard in range(meta.number_of_shards):
            ref = (index, shard)
            fps = found.get(ref)
            if fps is None:
                log.info("%s[%d]: no fingerprint recorded by the backfill; reading the shard again", index, shard)
                fps = fingerprint_shard(repo, scope.snapshot, index, shard, builder)
                side.recomputed.append(ref)
            side.shard_fingerprints[ref] = fps
            for name, fp in fps.items():
                side.fingerprints.setdefault(name, Fingerprint()).merge(fp)
                side.shards.setdefault(name, []).append(ref)
    return side


def documents_in_buckets(repo: SnapshotRepository, scope: SnapshotScope, side: SnapshotSide, target: str,
                         buckets: set[int], builder: BulkItemBuilder) -> dict[str, tuple[str | None, bytes]]:
    """id -> (routing, canonical source) of the snapshot's documents for ``target`` in ``buckets``, reading only the
    shards whose fingerprints have documents there."""
    out: dict[str, tuple[str | None, bytes]] = {}
    for index, shard in side.shards.get(target, []):
        fp = side.shard_fingerprints.get((index, shard), {}).get(target)
        if fp is not None and not any(fp.counts[b] for b in buckets):
            continue
        for name, doc_id, routing, source in shard_documents(repo, scope.snapshot, index, shard, builder):
            if name == target and bucket_of(doc_id) in buckets:
                out[doc_id] = (routing, canonical_source(source))
    return out
