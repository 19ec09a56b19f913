"""``.si`` files: a segment's document count, compound flag and attributes. One reader per format."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workers.lucene.codec import VersionRanges, check_footer, read_index_header
from workers.lucene.datainput import DataInput
from workers.lucene.errors import LuceneFormatError
from workers.lucene.store import FileInput


@dataclass(frozen=True)
class SegmentInfo:
    """What the reader needs from a ``.si``."""

    name: str
    max_doc: int
    is_compound: bool
    version: tuple[int, int, int]
    files: tuple[str, ...]
    attributes: dict[str, str]


def _compound(din: DataInput) -> bool:
    flag = din.byte()
    if flag not in (1, 0xFF):
        raise LuceneFormatError(f"{din.name}: structure: bad compound flag {flag}")
    return flag == 1


def _lucene62(din: DataInput, name: str) -> SegmentInfo:
    version = (din.int32(), din.int32(), din.int32())
    max_doc = din.int32()
    compound = _compound(din)
    din.string_map()  # diagnostics
    files = tuple(din.string_set())
    return SegmentInfo(name, max_doc, compound, version, files, din.string_map())


def _lucene70(din: DataInput, name: str) -> SegmentInfo:
    # Lucene70SegmentInfo, Lucene86SegmentInfo and Lucene90SegmentInfo share this start; 90 is little-endian
    # and, from Lucene 9.9 on, has a ``hasBlocks`` byte after the compound flag.
    version = (din.int32(), din.int32(), din.int32())
    if din.byte() == 1:
        din.int32(), din.int32(), din.int32()  # min version
    max_doc = din.int32()
    compound = _compound(din)
    if version >= (9, 9, 0):
        din.byte()  # hasBlocks
    din.string_map()  # diagnostics
    files = tuple(din.string_set())
    return SegmentInfo(name, max_doc, compound, version, files, din.string_map())


_READERS: dict[str, Callable[[DataInput, str], SegmentInfo]] = {
    "Lucene62SegmentInfo": _lucene62,
    "Lucene70SegmentInfo": _lucene70,
    "Lucene86SegmentInfo": _lucene70,
    "Lucene90SegmentInfo": _lucene70,
}

# The format versions each reader decodes (VERSION_START..VERSION_CURRENT of Lucene's SegmentInfoFormats):
# Lucene62SegmentInfo 0 and 1 (VERSION_MULTI_VALUED_SORT, later 6.x: only the index sort, after the attributes,
# changed); Lucene70, Lucene86 and Lucene90 (Lucene90SegmentInfoFormat and, from 9.9 on, Lucene99SegmentInfoFormat,
# which keeps that codec name and version) never left 0. Lucene 6.0-6.1's Lucene50SegmentInfo is not read.
VERSIONS: VersionRanges = {
    "Lucene62SegmentInfo": (0, 1),
    "Lucene70SegmentInfo": (0, 0),
    "Lucene86SegmentInfo": (0, 0),
    "Lucene90SegmentInfo": (0, 0),
}


def read_segment_info(inp: FileInput, segment: str) -> SegmentInfo:
    """Parse a segment's ``.si`` (footer checked first)."""
    data = inp.read_all()
    check_footer(data, inp.name)
    din = DataInput(data, inp.name)
    header = read_index_header(din, expected=VERSIONS)
    info = _READERS[header.codec](din, segment)
    if info.max_doc < 0:
        raise LuceneFormatError(f"{inp.name}: structure: negative document count {info.max_doc}")
    return info
