"""``.liv`` live-docs bitsets (Lucene50 big-endian words, Lucene90 little-endian)."""

from __future__ import annotations

from workers.lucene.codec import FOOTER_LENGTH, VersionRanges, check_footer, read_index_header
from workers.lucene.datainput import DataInput
from workers.lucene.errors import LuceneFormatError
from workers.lucene.store import FileInput

# Lucene50LiveDocsFormat (Lucene 5-8, big-endian) and Lucene90LiveDocsFormat: VERSION_START = VERSION_CURRENT = 0.
VERSIONS: VersionRanges = {"Lucene50LiveDocs": (0, 0), "Lucene90LiveDocs": (0, 0)}


def read_live_docs(inp: FileInput, max_doc: int, del_count: int) -> bytes:
    """A bitmap where bit ``d & 7`` of byte ``d >> 3`` is 1 when document d is live."""
    data = inp.read_all()
    check_footer(data, inp.name)
    din = DataInput(data, inp.name)
    header = read_index_header(din, expected=VERSIONS)
    words = (max_doc + 63) // 64
    if din.pos + words * 8 + FOOTER_LENGTH != len(data):
        raise LuceneFormatError(f"{inp.name}: structure: {len(data)} bytes for {max_doc} documents")
    raw = bytes(data[din.pos : din.pos + words * 8])
    if header.codec == "Lucene50LiveDocs":
        # Big-endian 64-bit words: reverse each word so that byte k holds documents 8k..8k+7.
        raw = b"".join(raw[i : i + 8][::-1] for i in range(0, len(raw), 8))
    live = int.from_bytes(raw, "little") & ((1 << max_doc) - 1)
    dead = max_doc - live.bit_count()
    if dead != del_count:
        raise LuceneFormatError(f"{inp.name}: structure: {dead} deleted documents, the commit says {del_count}")
    return raw
