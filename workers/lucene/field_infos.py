"""``.fnm`` field infos: field numbers to names, doc-values formats, and which field holds soft deletes.

One reader per format version, chosen by the file's codec header: Lucene60FieldInfosFormat (big-endian; Lucene 6.0
to 8.x, and updated field infos of those segments), Lucene90FieldInfosFormat (9.0-9.3) and Lucene94FieldInfosFormat
(9.4 on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workers.lucene.codec import VersionRanges, check_footer, read_index_header
from workers.lucene.datainput import DataInput
from workers.lucene.errors import LuceneFormatError
from workers.lucene.store import FileInput

SOFT_DELETES_BIT = 0x08


@dataclass(frozen=True)
class FieldInfo:
    """One field of a segment."""

    name: str
    number: int
    bits: int
    dv_type: int
    dv_gen: int
    attributes: dict[str, str]
    dv_skip_index: int = 0

    @property
    def is_soft_deletes(self) -> bool:
        """True for the field Lucene uses to mark soft-deleted documents."""
        return bool(self.bits & SOFT_DELETES_BIT)


@dataclass(frozen=True)
class FieldInfos:
    """The fields of a segment, by number."""

    by_number: dict[int, FieldInfo]

    def soft_deletes_field(self) -> FieldInfo | None:
        """The soft-deletes field, if the segment has one."""
        return next((f for f in self.by_number.values() if f.is_soft_deletes), None)

    def names(self) -> dict[int, str]:
        """Field number to name."""
        return {n: f.name for n, f in self.by_number.items()}


FieldReader = Callable[[DataInput], FieldInfo]


def _head(din: DataInput) -> tuple[str, int, int, int]:
    """Name, number, field bits (the index options byte skipped) and doc-values type: every format starts so."""
    name = din.string()
    number = din.vint()
    if number < 0:
        raise LuceneFormatError(f"{din.name}: structure: negative field number for {name!r}")
    bits = din.byte()
    din.byte()  # index options
    return name, number, bits, din.byte()


def _lucene60_v0(din: DataInput) -> FieldInfo:
    """Lucene60FieldInfos 0 (FORMAT_START) and 1 (FORMAT_SOFT_DELETES, a field bit only): one point dimension
    count, then bytes per dimension."""
    name, number, bits, dv_type = _head(din)
    dv_gen, attributes = din.int64(), din.string_map()
    if din.vint():  # point dimensions
        din.vint()  # bytes per dimension
    return FieldInfo(name, number, bits, dv_type, dv_gen, attributes)


def _lucene60_v2(din: DataInput) -> FieldInfo:
    """Lucene60FieldInfos 2 (FORMAT_SELECTIVE_INDEXING): point data and index dimension counts, then bytes."""
    name, number, bits, dv_type = _head(din)
    dv_gen, attributes = din.int64(), din.string_map()
    if din.vint():  # point data dimensions
        din.vint(), din.vint()  # point index dimensions, bytes per dimension
    return FieldInfo(name, number, bits, dv_type, dv_gen, attributes)


def _lucene90(din: DataInput) -> FieldInfo:
    """Lucene90FieldInfos 0: as Lucene60 2, then vector dimension and similarity."""
    name, number, bits, dv_type = _head(din)
    dv_gen, attributes = din.int64(), din.string_map()
    if din.vint():
        din.vint(), din.vint()
    din.vint(), din.byte()  # vector dimension, similarity
    return FieldInfo(name, number, bits, dv_type, dv_gen, attributes)


def _lucene94(din: DataInput) -> FieldInfo:
    """Lucene94FieldInfos 0 and 1 (FORMAT_PARENT_FIELD, a field bit only): vector dimension, encoding, similarity."""
    name, number, bits, dv_type = _head(din)
    dv_gen, attributes = din.int64(), din.string_map()
    if din.vint():
        din.vint(), din.vint()
    din.vint(), din.byte(), din.byte()  # vector dimension, encoding, similarity
    return FieldInfo(name, number, bits, dv_type, dv_gen, attributes)


def _lucene94_v2(din: DataInput) -> FieldInfo:
    """Lucene94FieldInfos 2 (FORMAT_DOCVALUE_SKIPPER, Lucene 10): the doc-values skip index type follows the
    doc-values type."""
    name, number, bits, dv_type = _head(din)
    skip_index = din.byte()
    dv_gen, attributes = din.int64(), din.string_map()
    if din.vint():
        din.vint(), din.vint()
    din.vint(), din.byte(), din.byte()
    return FieldInfo(name, number, bits, dv_type, dv_gen, attributes, skip_index)


# (codec, format version) -> the reader of one field in that version.
_READERS: dict[tuple[str, int], FieldReader] = {
    ("Lucene60FieldInfos", 0): _lucene60_v0,
    ("Lucene60FieldInfos", 1): _lucene60_v0,
    ("Lucene60FieldInfos", 2): _lucene60_v2,
    ("Lucene90FieldInfos", 0): _lucene90,
    ("Lucene94FieldInfos", 0): _lucene94,
    ("Lucene94FieldInfos", 1): _lucene94,
    ("Lucene94FieldInfos", 2): _lucene94_v2,
}

# FORMAT_START..FORMAT_CURRENT of each format, every version of which has its reader above: Lucene60 0 (6.x),
# 1 (FORMAT_SOFT_DELETES, 7.x), 2 (FORMAT_SELECTIVE_INDEXING, 7.x-8.x); Lucene90 only ever 0; Lucene94 0 (9.4),
# 1 (FORMAT_PARENT_FIELD, later 9.x), 2 (FORMAT_DOCVALUE_SKIPPER, Lucene 10). Lucene50FieldInfos (Lucene 5) is not
# read.
VERSIONS: VersionRanges = {
    "Lucene60FieldInfos": (0, 2),
    "Lucene90FieldInfos": (0, 0),
    "Lucene94FieldInfos": (0, 2),
}


def read_field_infos(inp: FileInput) -> FieldInfos:
    """Parse a ``.fnm`` (footer checked first)."""
    data = inp.read_all()
    check_footer(data, inp.name)
    din = DataInput(data, inp.name)
    header = read_index_header(din, expected=VERSIONS)
    read_field = _READERS[(header.codec, header.version)]
    fields: dict[int, FieldInfo] = {}
    for _ in range(din.vint()):
        info = read_field(din)
        fields[info.number] = info
    return FieldInfos(fields)
