"""CodecUtil headers and footers of Lucene files; the byte order of a format from its codec name."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from workers.lucene.datainput import DataInput
from workers.lucene.errors import ChecksumError, LuceneFormatError, UnsupportedFormatError

CODEC_MAGIC = 0x3FD76C17
FOOTER_MAGIC = 0xC02893E8 - (1 << 32)  # as a signed Int32
FOOTER_LENGTH = 16

# Formats of Lucene 9 and later write fixed-width ints little-endian; older ones and every segments_N
# big-endian (Lucene 9 made DataInput/DataOutput little-endian, LUCENE-9047).
_LITTLE_ENDIAN_PREFIXES = ("Lucene90", "Lucene94", "Lucene99", "Lucene912", "Lucene100", "Lucene101",
                           "Lucene103", "Lucene104", "ZstdStoredFields814", "CustomStoredFieldsZstd")


def is_little_endian(codec: str) -> bool:
    """True for the little-endian formats (Lucene 9+, and stored-fields formats built on Lucene90)."""
    return codec.startswith(_LITTLE_ENDIAN_PREFIXES)


@dataclass(frozen=True)
class IndexHeader:
    """A parsed ``IndexHeader``: codec, version, object id and suffix."""

    codec: str
    version: int
    object_id: bytes
    suffix: str
    length: int


VersionRanges: TypeAlias = Mapping[str, tuple[int, int]]
"""Per codec name, the format versions a reader decodes: ``(VERSION_START, VERSION_CURRENT)``, both included."""


def read_index_header(inp: DataInput, *, expected: VersionRanges) -> IndexHeader:
    """Read an IndexHeader at the current position and set the input's byte order from the codec.

    Like Lucene's ``CodecUtil.checkIndexHeader``, the codec must be one of ``expected`` and its version within
    that codec's range: a file of an older or newer format version than the reader knows is refused, never decoded
    with a layout it was not written in.
    """
    start = inp.pos
    if inp.be_int32() != CODEC_MAGIC:
        raise LuceneFormatError(f"{inp.name}: structure: no codec header at offset {start}")
    codec = inp.string()
    version = inp.be_int32()
    supported = expected.get(codec)
    if supported is None:
        raise UnsupportedFormatError(
            f"{inp.name}: codec {codec!r} version {version} is not supported here "
            f"(expected one of {', '.join(expected)})"
        )
    low, high = supported
    if not low <= version <= high:
        relation = "newer" if version > high else "older"
        raise UnsupportedFormatError(
            f"{inp.name}: codec {codec!r} version {version} is {relation} than this reader supports ({low}..{high})"
        )
    object_id = inp.bytes(16)
    suffix = inp.bytes(inp.byte()).decode("ascii", "replace")
    inp.set_little_endian(is_little_endian(codec))
    return IndexHeader(codec, version, object_id, suffix, inp.pos - start)


def check_footer(data: bytes | memoryview, name: str) -> None:
    """Verify the footer magic and the CRC-32 of everything before the checksum."""
    if len(data) < FOOTER_LENGTH:
        raise LuceneFormatError(f"{name}: structure: {len(data)} bytes is too short for a footer")
    magic, algorithm, checksum = struct.unpack_from(">iiq", data, len(data) - FOOTER_LENGTH)
    if magic != FOOTER_MAGIC or algorithm != 0:
        raise LuceneFormatError(f"{name}: structure: no Lucene footer at the end (truncated?)")
    actual = zlib.crc32(data[: len(data) - 8])
    if actual != checksum:
        raise ChecksumError(f"{name}: checksum mismatch (footer {checksum:#010x}, content {actual:#010x})")


def footer_checksum(data: bytes | memoryview) -> int:
    """The checksum recorded in a file's footer."""
    return int(struct.unpack_from(">q", data, len(data) - 8)[0])


def base36(n: int) -> str:
    """Lucene's and Elasticsearch's base-36 (``Long.toString(n, 36)``) for generations and checksums."""
    if n == 0:
        return "0"
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    sign = "-" if n < 0 else ""
    n = abs(n)
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(digits[r])
    return sign + "".join(reversed(out))
