"""A shard's live documents as encoded pieces: whole chunks in C when they have the common shape, else in Python.

The C encoder (``_bulk_lines``, built at install when a compiler is there) turns a decompressed stored-fields
chunk into its bulk lines in one call. A chunk it declines (Elasticsearch 5 ``_uid``s, sources that are not
one-line JSON, ids that need ``\\u`` escapes, …), every chunk under a transform, and every chunk when the
extension is missing or ``native`` is off go through ``ShardReader.chunk_documents`` and ``BulkItemBuilder``.
Both paths write the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import orjson

from workers.documents.reader import ShardPosition, ShardReader
from workers.lucene.segment_reader import SegmentPlan
from workers.rfs.bulk import BulkItemBuilder, Piece, piece_of

log = logging.getLogger("workers.rfs")


@dataclass
class EncodeCounts:
    """How many chunks each path encoded (the Python path costs about twice the CPU per document)."""

    native_chunks: int = 0
    python_chunks: int = 0


EncodeChunk = Callable[..., tuple[bytes, bytes, bytes, int, int] | None]


def native_encoder() -> EncodeChunk | None:
    """The C chunk encoder, or None when the extension was not built."""
    try:
        from workers.rfs._bulk_lines import encode_chunk
    except ImportError:
        return None
    return encode_chunk


def action_prefix(index: str) -> bytes:
    """The action line up to the id's opening quote, as orjson writes ``{"index": {"_index": …, "_id": …}}``."""
    return b'{"index":{"_index":' + orjson.dumps(index) + b',"_id":"'


def _field_numbers(plan: SegmentPlan) -> tuple[int, int, int, int]:
    by_name = {name: number for number, name in plan.fields.names().items()}
    return tuple(by_name.get(name, -1) for name in ("_id", "_uid", "_routing", "_source"))  # type: ignore[return-value]


def shard_pieces(reader: ShardReader, start: ShardPosition | None, builder: BulkItemBuilder,
                 native: bool = True, counts: EncodeCounts | None = None) -> Iterator[Piece]:
    """One piece per chunk that holds live documents at or after ``start``, in order."""
    counts = counts if counts is not None else EncodeCounts()
    encode = native_encoder() if native and builder.transform is None else None
    if native and encode is None and builder.transform is None:
        log.warning("the C chunk encoder (workers.rfs._bulk_lines) is not built, so every chunk is encoded in "
                    "Python, at about twice the CPU; reinstall with a C compiler and Python's headers to build it")
    prefix = action_prefix(builder.index_name(reader.index, reader.metadata.type_name))
    numbers: dict[str, tuple[int, int, int, int]] = {}
    summary = reader.summary
    for plan, chunk, start_doc in reader.chunks(start):
        if encode is not None:
            fields = numbers.get(plan.name)
            if fields is None:
                fields = numbers[plan.name] = _field_numbers(plan)
            out = encode(chunk.data, chunk.fields, chunk.lengths, chunk.doc_base, start_doc, plan.live,
                         plan.soft_deleted, *fields, prefix)
            if out is not None:
                body, docs, ends, source_bytes, nested = out
                count = len(docs) // 8
                summary.live += count
                summary.source_bytes += source_bytes
                summary.nested_skipped += nested
                counts.native_chunks += 1
                if count:
                    yield Piece(plan.name, body, memoryview(docs).cast("q"), memoryview(ends).cast("q"))
                continue
        counts.python_chunks += 1
        items = list(builder.items(reader.chunk_documents(plan, chunk, start_doc)))
        if items:
            yield piece_of(items)
