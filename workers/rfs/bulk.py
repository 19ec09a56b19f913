"""Documents to NDJSON ``_bulk`` bodies: action line plus the source bytes, copied through when they can be."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from workers.common.errors import ConfigurationError, MigrationError
from workers.documents.jsonl import source_value
from workers.documents.reader import ShardPosition, SnapshotDocument
from workers.rfs.options import BackfillOptions, target_index

Transform = Callable[[dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class BulkItem:
    """One document ready for ``_bulk``: its two NDJSON lines."""

    position: ShardPosition
    index: str
    id: str
    routing: str | None
    action: bytes
    source: bytes

    @property
    def size(self) -> int:
        """Bytes it adds to a request body."""
        return len(self.action) + len(self.source) + 2


@dataclass
class Batch:
    """Consecutive items sent as one request; ``seq`` orders batches for checkpointing."""

    seq: int
    items: list[BulkItem]
    first: ShardPosition
    last: ShardPosition

    @property
    def size(self) -> int:
        """Bytes of the request body (before compression)."""
        return sum(item.size for item in self.items)


def body_of(items: Iterable[BulkItem]) -> bytes:
    """The NDJSON request body."""
    # One join over all the pieces: each document's bytes are copied once, not once per concatenation.
    parts: list[bytes] = []
    for item in items:
        parts += (item.action, b"\n", item.source, b"\n")
    return b"".join(parts)


def load_transform(path: str) -> Transform:
    """A document transformation ``package.module:function`` (takes and returns a document dict)."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    try:
        func = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigurationError(f"transform {path!r} cannot be loaded: {exc}") from None
    if not callable(func):
        raise ConfigurationError(f"transform {path!r} is not callable")
    return func


def _compact_source(doc: SnapshotDocument) -> bytes:
    raw = doc.source
    # The hot path: JSON on one line is copied through untouched. Anything else (pretty-printed JSON,
    # SMILE, YAML) is re-serialised, since a _bulk body is newline-delimited JSON.
    if raw[:1] == b"{" and b"\n" not in raw and b"\r" not in raw:
        return raw
    return orjson.dumps(source_value(doc))


class BulkItemBuilder:
    """Turns snapshot documents into bulk items, applying renames, type handling and the optional transform."""

    def __init__(self, options: BackfillOptions) -> None:
        self.options = options
        self.transform = load_transform(options.transform) if options.transform else None
        self._names: dict[tuple[str, str | None], str] = {}

    def _index(self, doc: SnapshotDocument) -> str:
        key = (doc.index, doc.type)
        name = self._names.get(key)
        if name is None:
            base = doc.index
            if self.options.type_mode == "index-per-type" and doc.type and doc.type != "_doc":
                base = f"{doc.index}_{doc.type}"
            name = target_index(base, self.options.rename)
            self._names[key] = name
        return name

    def items(self, docs: Iterable[tuple[ShardPosition, SnapshotDocument]]) -> Iterator[BulkItem]:
        """One bulk item per document (a transform may drop a document by returning None)."""
        for position, doc in docs:
            index = self._index(doc)
            if self.transform is None:
                source = _compact_source(doc)
                doc_id, routing = doc.id, doc.routing
            else:
                transformed = self.transform({"_index": index, "_id": doc.id, "_routing": doc.routing,
                                              "_type": doc.type, "_source": source_value(doc)})
                if transformed is None:
                    continue
                try:
                    index = str(transformed.get("_index", index))
                    doc_id = str(transformed.get("_id", doc.id))
                    routing = transformed.get("_routing", doc.routing)
                    source = orjson.dumps(transformed["_source"])
                except (KeyError, TypeError) as exc:
                    raise MigrationError(f"transform {self.options.transform} returned a bad document for "
                                         f"{doc.index}/{doc.id}: {exc}") from None
            action: dict[str, Any] = {"_index": index, "_id": doc_id}
            if routing is not None:
                action["routing"] = routing
            yield BulkItem(position, index, doc_id, routing, orjson.dumps({"index": action}), source)


def batches(items: Iterable[BulkItem], options: BackfillOptions) -> Iterator[Batch]:
    """Group items into requests bounded by document count and body size (a lone big document goes alone)."""
    limit_docs = options.documents_per_bulk_request or 1 << 62
    current: list[BulkItem] = []
    size = 0
    seq = 0
    for item in items:
        if current and (len(current) >= limit_docs or size + item.size > options.max_bulk_bytes):
            yield Batch(seq, current, current[0].position, current[-1].position)
            seq += 1
            current, size = [], 0
        current.append(item)
        size += item.size
    if current:
        yield Batch(seq, current, current[0].position, current[-1].position)
