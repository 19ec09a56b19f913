"""The live source side: a source index read like a target index (``target_scan.scan``: point in time or scroll,
sliced), each document named and encoded as the backfill would send it, so that its fingerprint compares with the
target index it goes to.

The naming is the backfill's own (``TargetNames``: renames, and for Elasticsearch <= 6 typed indices the type kept
or split into an index per type); with a document ``transform`` configured, each document goes through the
backfill's encoder (``BulkItemBuilder``) as a snapshot document would, so the transformed id, index and source are
what is compared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch

from workers.common.fingerprint import (
    BUCKETS,
    Fingerprint,
    bucket_of,
    canonical_source,
    canonical_value,
    document_hash,
    id_hash,
)
from workers.documents.reader import ShardPosition, SnapshotDocument
from workers.rfs.bulk import BulkItemBuilder
from workers.rfs.naming import TargetNames
from workers.rfs.options import BackfillOptions
from workers.validate.narrow import Docs
from workers.validate.scope import ValidationOptions
from workers.validate.target_scan import Consumer, Hits, ScanStats, scan

# Live documents have no place in a snapshot; the encoder wants one (it only keeps it on the item).
_LIVE = ShardPosition("live", 0)
MGET_CHUNK = 500


@dataclass(frozen=True)
class SourceRef:
    """Where a document lives on the source: what ``_mget`` needs to read it again."""

    index: str
    type: str | None  # the mapping type of a typed (Elasticsearch <= 6) index; None for ``_doc`` or typeless
    id: str
    routing: str | None

    def mget_doc(self) -> dict[str, Any]:
        """One entry of an ``_mget`` body (``_type`` only where the index has types: newer engines refuse it)."""
        doc: dict[str, Any] = {"_index": self.index, "_id": self.id}
        if self.type is not None:
            doc["_type"] = self.type
        if self.routing is not None:
            doc["routing"] = self.routing
        return doc


Encoded = tuple[str, str, str | None, bytes]  # target index, id, routing, canonical source


def _type_of(hit: dict[str, Any]) -> str | None:
    """The hit's mapping type as the snapshot reader names it (None for ``_doc``, as ``IndexMetadata.type_name``)."""
    name = hit.get("_type")
    return None if name in (None, "_doc") else str(name)


class LiveEncoder:
    """The backfill's naming and encoding of live source documents, per source index."""

    def __init__(self, options: ValidationOptions, types: dict[str, Iterable[str]]) -> None:
        """``types``: per source index, its mapping types (from the snapshot; read only to split types)."""
        backfill = BackfillOptions(target=options.target, rename=options.rename, type_mode=options.type_mode,
                                   transform=options.transform)
        self.names = {index: TargetNames.of_index(options.rename, options.type_mode, t) for index, t in types.items()}
        self.builders = {index: BulkItemBuilder(backfill, names) for index, names in self.names.items()}
        self.transform = options.transform is not None

    def name(self, index: str, hit: dict[str, Any]) -> str:
        """The target index of a hit (no transform: a transform may move it, and needs the source to say so)."""
        return self.builders[index].index_name(index, _type_of(hit))

    def encode(self, index: str, hit: dict[str, Any]) -> Encoded | None:
        """What the backfill would send for a hit that has its ``_source``; None when it has none (the backfill
        skips sourceless documents) or the transform drops it."""
        source = hit.get("_source")
        if source is None:
            return None
        type_name, routing = _type_of(hit), hit.get("_routing")
        builder = self.builders[index]
        if not self.transform:
            return builder.index_name(index, type_name), hit["_id"], routing, canonical_value(source)
        doc = SnapshotDocument(index, hit["_id"], type_name, routing, canonical_value(source))
        item = next(builder.items([(_LIVE, doc)]), None)
        if item is None:
            return None
        return item.index, item.id, item.routing, canonical_source(item.source)

    def sources_of(self, target: str) -> list[tuple[str, str | None]]:
        """(source index, type) pairs whose documents go to ``target`` without a transform moving them: where to
        look for a document known only on the target (type None: any type of the index)."""
        out: list[tuple[str, str | None]] = []
        for index, names in self.names.items():
            if names.split:
                out += [(index, t) for t in sorted(names.split) if names.name(index, t) == target]
            elif names.name(index, None) == target:
                out.append((index, None))
        return out


def fingerprint_source(client: OpenSearch, index: str, encoder: LiveEncoder, *, hashed: frozenset[int] | None,
                       connections: int = 4, page_size: int = 1000) -> tuple[dict[str, Fingerprint], ScanStats]:
    """Per target index, the fingerprint of the source index's documents as the backfill would send them; every
    document counted, hashed in every bucket or in ``hashed`` only. A sample reads ids only and fetches the sampled
    documents with ``_mget``, unless a transform needs every source to name the document."""
    parts: list[dict[str, Fingerprint]] = []
    ids_only = hashed is not None and not encoder.transform

    def consumers() -> Consumer:
        fps: dict[str, Fingerprint] = {}
        parts.append(fps)
        if ids_only:
            assert hashed is not None
            return _sampler(client, index, encoder, fps, hashed)

        def consume(hits: Hits) -> None:
            for hit in hits:
                encoded = encoder.encode(index, hit)
                if encoded is None:
                    continue
                name, doc_id, routing, canonical = encoded
                fp = fps.get(name) or fps.setdefault(name, _new(hashed))
                bucket = bucket_of(doc_id)
                fp.counts[bucket] += 1
                if fp.ids is not None:
                    fp.ids[bucket] += id_hash(doc_id, routing)
                if hashed is None or bucket in hashed:
                    fp.sums[bucket] += document_hash(doc_id, routing, canonical)
        return consume

    stats = scan(client, index, consumers, connections=connections, page_size=page_size,
                 body={"_source": False} if ids_only else None)
    total: dict[str, Fingerprint] = {}
    for fps in parts:
        for name, fp in fps.items():
            total.setdefault(name, Fingerprint()).merge(fp)
    return total, stats


def _new(hashed: frozenset[int] | None) -> Fingerprint:
    """A sample sums every document's id too (``Fingerprint.ids``): the buckets it does not hash would otherwise be
    compared by count alone, and a write in flight could then hide a missing or extra document of its bucket."""
    return Fingerprint(ids=None if hashed is None else [0] * BUCKETS)


def _sampler(client: OpenSearch, index: str, encoder: LiveEncoder, fps: dict[str, Fingerprint],
             hashed: frozenset[int]) -> Consumer:
    def consume(hits: Hits) -> None:
        wanted = []
        for hit in hits:
            fp = fps.get(name := encoder.name(index, hit)) or fps.setdefault(name, _new(hashed))
            bucket = bucket_of(hit["_id"])
            fp.counts[bucket] += 1
            assert fp.ids is not None
            fp.ids[bucket] += id_hash(hit["_id"], hit.get("_routing"))
            if bucket in hashed:
                wanted.append(SourceRef(index, _type_of(hit), hit["_id"], hit.get("_routing")))
        for _, doc in _mget(client, wanted):
            encoded = encoder.encode(index, doc)
            if encoded is not None:
                name, doc_id, routing, canonical = encoded
                fps.setdefault(name, _new(hashed)).sums[bucket_of(doc_id)] += document_hash(doc_id, routing,
                                                                                           canonical)

    return consume


def _mget(client: OpenSearch, refs: list[SourceRef]) -> list[tuple[SourceRef, dict[str, Any]]]:
    """The found documents among ``refs``, each with its ref (in chunks: an ``_mget`` body stays small)."""
    found: list[tuple[SourceRef, dict[str, Any]]] = []
    for start in range(0, len(refs), MGET_CHUNK):
        chunk = refs[start:start + MGET_CHUNK]
        docs = client.transport.perform_request("POST", "/_mget", body={"docs": [r.mget_doc() for r in chunk]})["docs"]
        found += [(ref, doc) for ref, doc in zip(chunk, docs, strict=True) if doc.get("found")]
    return found


def documents_in_buckets(client: OpenSearch, index: str, encoder: LiveEncoder, target: str, buckets: set[int], *,
                         connections: int = 4, page_size: int = 1000) -> tuple[Docs, dict[str, SourceRef]]:
    """id -> (routing, canonical source) of the source index's documents that go to ``target`` in ``buckets``, and
    where each is on the source (to read it again)."""
    found: Docs = {}
    refs: dict[str, SourceRef] = {}

    def consumers() -> Consumer:
        def consume(hits: Hits) -> None:
            for hit in hits:
                encoded = encoder.encode(index, hit)
                if encoded is None:
                    continue
                name, doc_id, routing, canonical = encoded
                if name == target and bucket_of(doc_id) in buckets:
                    found[doc_id] = (routing, canonical)
                    refs[doc_id] = SourceRef(index, _type_of(hit), hit["_id"], hit.get("_routing"))
        return consume

    scan(client, index, consumers, connections=connections, page_size=page_size)
    return found, refs


def fetch_documents(client: OpenSearch, encoder: LiveEncoder, target: str, refs: list[SourceRef]) -> Docs:
    """The documents at ``refs`` now (real-time ``_mget``), as the backfill would send them to ``target``; by target
    id; an absent one is left out."""
    out: Docs = {}
    for ref, doc in _mget(client, refs):
        encoded = encoder.encode(ref.index, doc)
        if encoded is not None and encoded[0] == target:
            out[encoded[1]] = (encoded[2], encoded[3])
    return out

