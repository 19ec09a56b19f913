"""Documents to NDJSON ``_bulk`` bodies: action line plus the source bytes, copied through when they can be."""

from __future__ import annotations

import importlib
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from workers.common.errors import ConfigurationError, MigrationError
from workers.documents.jsonl import source_value
from workers.documents.reader import ShardPosition, SnapshotDocument
from workers.rfs.naming import TargetNames
from workers.rfs.options import BackfillOptions

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


@dataclass(frozen=True, slots=True)
class Piece:
    """Consecutive documents of one segment, encoded: their NDJSON lines back to back in ``body``.

    ``docs[k]`` is the k-th document's number, ``ends[k]`` where its two lines end in ``body``. Documents stay
    in this form on the way to the target; ``BulkItem``s are made only for the ones that need retrying or
    keeping as dead letters.
    """

    segment: str
    body: bytes
    docs: Sequence[int]
    ends: Sequence[int]

    def start(self, k: int) -> int:
        """Where document k's lines begin in ``body``."""
        return self.ends[k - 1] if k else 0

    def item(self, k: int) -> BulkItem:
        """Document k as a bulk item (its action line parsed back)."""
        lines = self.body[self.start(k) : self.ends[k]]
        newline = lines.index(b"\n")
        action = lines[:newline]
        meta = orjson.loads(action)["index"]
        return BulkItem(ShardPosition(self.segment, self.docs[k]), meta["_index"], meta["_id"], meta.get("routing"),
                        action, lines[newline + 1 : -1])


def piece_of(items: Sequence[BulkItem]) -> Piece:
    """Items of one segment as a piece."""
    ends = array("q")
    offset = 0
    for item in items:
        offset += item.size
        ends.append(offset)
    return Piece(items[0].position.segment, body_of(items), array("q", (i.position.doc for i in items)), ends)


@dataclass
class Batch:
    """Consecutive documents sent as one request (documents lo to hi - 1 of each piece); ``seq`` orders batches
    for checkpointing."""

    seq: int
    parts: list[tuple[Piece, int, int]]
    count: int
    size: int  # bytes of the request body, before compression

    @property
    def first(self) -> ShardPosition:
        piece, lo, _ = self.parts[0]
        return ShardPosition(piece.segment, piece.docs[lo])

    @property
    def last(self) -> ShardPosition:
        piece, _, hi = self.parts[-1]
        return ShardPosition(piece.segment, piece.docs[hi - 1])

    def body_parts(self) -> list[memoryview]:
        """The NDJSON request body, as views of the pieces (no copy)."""
        return [memoryview(p.body)[p.start(lo) : p.ends[hi - 1]] for p, lo, hi in self.parts]

    def body(self) -> bytes:
        """The NDJSON request body."""
        return b"".join(self.body_parts())

    def items(self) -> list[BulkItem]:
        """Every document as a bulk item (for retrying some of them)."""
        return [p.item(k) for p, lo, hi in self.parts for k in range(lo, hi)]


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

    def __init__(self, options: BackfillOptions, names: TargetNames | None = None) -> None:
        self.options = options
        self.names = names or TargetNames(options.rename)
        self.transform = load_transform(options.transform) if options.transform else None
        self._names: dict[tuple[str, str | None], str] = {}
        # Every target index a document was encoded for so far (read by the checkpoint thread: only ever added to).
        self.targets: set[str] = set()

    def index_name(self, index: str, type_name: str | None) -> str:
        """The target index of a source index's documents of a type (renames and type handling applied)."""
        key = (index, type_name)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = self.names.name(index, type_name)
            self.targets.add(name)
        return name

    def items(self, docs: Iterable[tuple[ShardPosition, SnapshotDocument]]) -> Iterator[BulkItem]:
        """One bulk item per document (a transform may drop a document by returning None)."""
        for position, doc in docs:
            index = self.index_name(doc.index, doc.type)
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
                    self.targets.add(index)
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


def batches(pieces: Iterable[Piece], options: BackfillOptions) -> Iterator[Batch]:
    """Group documents into requests bounded by document count and body size (a lone big document goes alone)."""
    limit_docs = options.documents_per_bulk_request or 1 << 62
    limit_bytes = options.max_bulk_bytes
    parts: list[tuple[Piece, int, int]] = []
    count = size = seq = 0
    for piece in pieces:
        lo, n = 0, len(piece.docs)
        while lo < n:
            base = piece.start(lo)
            # The most documents from lo on that still fit the request, by count and by bytes.
            hi = bisect_right(piece.ends, base + limit_bytes - size, lo, min(n, lo + limit_docs - count))
            if hi == lo:
                if parts:
                    yield Batch(seq, parts, count, size)
                    seq += 1
                    parts, count, size = [], 0, 0
                    continue
                hi = lo + 1
            parts.append((piece, lo, hi))
            count += hi - lo
            size += piece.ends[hi - 1] - base
            lo = hi
    if parts:
        yield Batch(seq, parts, count, size)
