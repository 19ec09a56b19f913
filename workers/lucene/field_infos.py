"""``.fnm`` field infos: field numbers to names, doc-values formats, and which field holds soft deletes."""

from __future__ import annotations

from dataclasses import dataclass

from workers.lucene.codec import check_footer, read_index_header
from workers.lucene.datainput import DataInput
from workers.lucene.errors import LuceneFormatError
from workers.lucene.store import FileInput

CODECS = ("Lucene60FieldInfos", "Lucene90FieldInfos", "Lucene94FieldInfos")
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


def read_field_infos(inp: FileInput) -> FieldInfos:
    """Parse a ``.fnm`` (footer checked first)."""
    data = inp.read_all()
    check_footer(data, inp.name)
    din = DataInput(data, inp.name)
    header = read_index_header(din, expected=CODECS)
    codec, version = header.codec, header.version
    fields: dict[int, FieldInfo] = {}
    for _ in range(din.vint()):
        name = din.string()
        number = din.vint()
        if number < 0:
            raise LuceneFormatError(f"{inp.name}: structure: negative field number for {name!r}")
        bits = din.byte()
        din.byte()  # index options
        dv_type = din.byte()
        skip_index = din.byte() if codec == "Lucene94FieldInfos" and version >= 2 else 0  # Lucene 10
        dv_gen = din.int64()
        attributes = din.string_map()
        point_dims = din.vint()
        if point_dims:
            if not (codec == "Lucene60FieldInfos" and version < 2):
                din.vint()  # point index dimensions
            din.vint()  # bytes per dimension
        if codec == "Lucene90FieldInfos":
            din.vint(), din.byte()  # vector dimension, similarity
        elif codec == "Lucene94FieldInfos":
            din.vint(), din.byte(), din.byte()  # vector dimension, encoding, similarity
        fields[number] = FieldInfo(name, number, bits, dv_type, dv_gen, attributes, skip_index)
    return FieldInfos(fields)
