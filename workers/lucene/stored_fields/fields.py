"""The fields of one stored document: (field number, type, value) decoding, skipping what is not wanted.

This runs once per document, so VInts are decoded inline (one-byte values are by far the most common).
"""

from __future__ import annotations

from workers.lucene.datainput import read_vint_at
from workers.lucene.errors import LuceneFormatError

STRING, BYTE_ARR, INT, FLOAT, LONG, DOUBLE = range(6)


def wanted_fields(doc: memoryview, count: int, wanted: dict[int, str], where: str) -> dict[str, bytes | str]:
    """The values of the fields in ``wanted`` (number to name); strings decoded, binaries as bytes."""
    out: dict[str, bytes | str] = {}
    pos = 0
    try:
        for _ in range(count):
            info = doc[pos]
            if info < 0x80:
                pos += 1
            else:
                info, pos = read_vint_at(doc, pos)
            kind = info & 7
            if kind <= BYTE_ARR:
                length = doc[pos]
                if length < 0x80:
                    pos += 1
                else:
                    length, pos = read_vint_at(doc, pos)
                name = wanted.get(info >> 3)
                end = pos + length
                if name is not None:
                    out[name] = bytes(doc[pos:end]) if kind == BYTE_ARR else str(doc[pos:end], "utf-8")
                pos = end
            elif kind == INT:
                _, pos = read_vint_at(doc, pos)
            elif kind == FLOAT:
                b = doc[pos]
                pos += 5 if b == 0xFF else 1 if b & 0x80 else 4
            elif kind == LONG:
                header = doc[pos]
                pos += 1
                if header & 0x20:
                    _, pos = read_vint_at(doc, pos)
            elif kind == DOUBLE:
                b = doc[pos]
                pos += 9 if b == 0xFF else 5 if b == 0xFE else 1 if b & 0x80 else 8
            else:
                raise LuceneFormatError(f"{where}: structure: stored field type {kind} of field {info >> 3}")
    except IndexError:
        raise LuceneFormatError(f"{where}: structure: stored document runs past its length") from None
    if pos != len(doc):
        raise LuceneFormatError(f"{where}: structure: stored document has {len(doc) - pos} trailing bytes")
    return out
