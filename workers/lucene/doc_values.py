"""Soft deletes: the documents that have a value for the soft-deletes doc-values field.

Only what that needs is decoded: the ``.dvm`` entries are walked (other fields' entries skipped) to the
soft-deletes field's NUMERIC entry, whose IndexedDISI in ``.dvd`` lists the documents with a value.
Layouts: Lucene's Lucene70/80/90DocValuesFormat (the producers' readFields) and IndexedDISI.
"""

from __future__ import annotations

from workers.lucene.codec import VersionRanges, base36, check_footer, read_index_header
from workers.lucene.datainput import DataInput
from workers.lucene.errors import LuceneFormatError, UnsupportedFormatError
from workers.lucene.field_infos import FieldInfo, FieldInfos
from workers.lucene.store import Directory

# VERSION_START..VERSION_CURRENT of each DocValuesFormat, for the .dvm and the .dvd alike (Lucene's producers
# require both files at one version): Lucene70 only 0 (7.x); Lucene80 0, 1 (VERSION_BIN_COMPRESSED), 2
# (VERSION_CONFIGURABLE_COMPRESSION), the BINARY layouts _MetaWalker.binary tells apart; Lucene90 0 (9.0 to 10.4),
# 1 and 2 (Lucene 10.5 moved skip indexes to a .dvs file of their own and added a maximum value count to each
# skip-index entry, _MetaWalker.skipper; 10.5 writes 2). Lucene 6's Lucene54 format never holds soft deletes, which
# came with Lucene 7.
META_VERSIONS: VersionRanges = {
    "Lucene70DocValuesMetadata": (0, 0),
    "Lucene80DocValuesMetadata": (0, 2),
    "Lucene90DocValuesMetadata": (0, 2),
}
DATA_VERSIONS: VersionRanges = {
    "Lucene70DocValuesData": (0, 0),
    "Lucene80DocValuesData": (0, 2),
    "Lucene90DocValuesData": (0, 2),
}
_HEADER_PROBE = 128
NUMERIC, BINARY, SORTED, SORTED_SET, SORTED_NUMERIC = 0, 1, 2, 3, 4
_NO_MORE_BLOCKS = 0x7FFF
_LZ4_TERMS_CODE_MIN = 0x10000


def _direct_monotonic(din: DataInput, count: int, block_shift: int) -> None:
    blocks = (count + (1 << block_shift) - 1) >> block_shift if count > 0 else 0
    din.skip(21 * blocks)  # per block: Int64 min, Int32 average, Int64 offset, byte bits


class _MetaWalker:
    """Walks a ``.dvm`` entry by entry; ``generation`` 70, 80 or 90 selects the per-format layouts."""

    def __init__(self, din: DataInput, codec: str, version: int, fields: FieldInfos) -> None:
        self.din = din
        self.gen = {"Lucene70DocValuesMetadata": 70, "Lucene80DocValuesMetadata": 80}.get(codec, 90)
        self.version = version
        self.fields = fields
        self.dense_rank_power = -1

    def numeric(self) -> tuple[int, int]:
        d = self.din
        docs_offset, docs_length = d.int64(), d.int64()
        if self.gen >= 80:
            d.int16()  # jump table entries
            power = d.byte()
            self.dense_rank_power = power - 256 if power > 127 else power
        d.int64()  # number of values
        table_size = d.int32()
        if table_size > 256:
            raise LuceneFormatError(f"{d.name}: structure: numeric table of {table_size} entries")
        if table_size > 0:
            d.skip(8 * table_size)
        d.byte()  # bits per value
        d.skip(8 * 4)  # min, gcd, values offset, values length
        if self.gen >= 80:
            d.int64()  # value jump table offset
        return docs_offset, docs_length

    def binary(self, info: FieldInfo) -> None:
        d = self.din
        d.skip(8 * 4)
        if self.gen >= 80:
            d.int16(), d.byte()
        num_docs, min_len, max_len = d.int32(), d.int32(), d.int32()
        compressed = False
        if self.gen == 80:
            compressed = self.version == 1 or (
                self.version >= 2 and info.attributes.get("Lucene80DocValuesFormat.mode") == "BEST_COMPRESSION"
            )
        if (compressed and num_docs > 0) or min_len < max_len:
            d.int64()
            count = num_docs + 1
            if compressed:
                count = d.vint()
                d.vint(), d.vint()
            _direct_monotonic(d, count, d.vint())
            d.int64()

    def terms_dict(self) -> None:
        d = self.din
        size = d.vlong()
        compressed = self.gen == 90
        dict_shift = 6
        if self.gen < 90:
            code = d.int32()
            if code >= _LZ4_TERMS_CODE_MIN:
                compressed = True
            else:
                dict_shift = code
        block_shift = d.int32()
        _direct_monotonic(d, (size + (1 << dict_shift) - 1) >> dict_shift, block_shift)
        d.int32()  # max term length
        if compressed:
            d.int32()  # max block length
        d.skip(8 * 4)
        index_shift = d.int32()
        _direct_monotonic(d, 1 + ((size + (1 << index_shift) - 1) >> index_shift), block_shift)
        d.skip(8 * 4)

    def sorted_legacy(self) -> None:
        d = self.din
        d.skip(16)
        if self.gen >= 80:
            d.int16(), d.byte()
        d.int32(), d.byte()
        d.skip(16)

    def sorted(self) -> None:
        # Lucene90 stores a SORTED field's ordinals as a NUMERIC entry (checked on Lucene 9.12 files).
        if self.gen == 90:
            self.numeric()
        else:
            self.sorted_legacy()
        self.terms_dict()

    def numeric_count_check(self) -> None:
        d = self.din
        # A NUMERIC entry whose value count we need, then the per-document address table when multi-valued.
        d.int64(), d.int64()
        if self.gen >= 80:
            d.int16(), d.byte()
        num_values = d.int64()
        table_size = d.int32()
        if table_size > 256:
            raise LuceneFormatError(f"{d.name}: structure: numeric table of {table_size} entries")
        if table_size > 0:
            d.skip(8 * table_size)
        d.byte()
        d.skip(32)
        if self.gen >= 80:
            d.int64()
        num_docs = d.int32()
        if num_docs != num_values:
            d.int64()
            _direct_monotonic(d, num_docs + 1, d.vint())
            d.int64()

    def sorted_set(self) -> None:
        d = self.din
        multi = d.byte()
        if multi == 0:
            self.sorted()
            return
        if multi != 1:
            raise LuceneFormatError(f"{d.name}: structure: sorted-set flag {multi}")
        if self.gen == 90:
            self.numeric_count_check()
        else:
            d.skip(16)
            if self.gen >= 80:
                d.int16(), d.byte()
            d.byte()
            d.skip(16)
            num_docs = d.int32()
            d.int64()
            _direct_monotonic(d, num_docs + 1, d.vint())
            d.int64()
        self.terms_dict()

    def skipper(self) -> None:
        # Lucene 10 doc-values skip index metadata (data in .dvs): offset, length, max, min, doc count, max doc,
        # and from metadata version 2 the maximum value count (seen in OpenSearch 3.8 / Lucene 10 files).
        self.din.skip(8 * 4 + 4 + 4 + (4 if self.version >= 2 else 0))


def soft_deleted_docs(directory: Directory, segment: str, fields: FieldInfos, max_doc: int) -> bytearray:
    """A bitmap (bit d of byte d >> 3) of the soft-deleted documents of a segment."""
    field = fields.soft_deletes_field()
    deleted = bytearray((max_doc + 7) // 8)
    if field is None:
        return deleted
    fmt = field.attributes.get("PerFieldDocValuesFormat.format")
    suffix = field.attributes.get("PerFieldDocValuesFormat.suffix")
    if not fmt or suffix is None:
        raise LuceneFormatError(f"segment {segment}: soft-deletes field {field.name!r} has no doc-values format")
    base = f"{segment}_{base36(field.dv_gen)}_{fmt}_{suffix}" if field.dv_gen != -1 else f"{segment}_{fmt}_{suffix}"
    meta_in = directory.open(base + ".dvm")
    meta = meta_in.read_all()
    check_footer(meta, meta_in.name)
    din = DataInput(meta, meta_in.name)
    header = read_index_header(din, expected=META_VERSIONS)
    walker = _MetaWalker(din, header.codec, header.version, fields)
    while True:
        number = din.int32()
        if number == -1:
            raise LuceneFormatError(f"{meta_in.name}: structure: no entry for soft-deletes field {field.name!r}")
        kind = din.byte()
        info = fields.by_number.get(number)
        if info is None:
            raise LuceneFormatError(f"{meta_in.name}: structure: entry for unknown field number {number}")
        if info.dv_skip_index:
            walker.skipper()
        if number == field.number:
            if kind != NUMERIC:
                raise LuceneFormatError(f"{meta_in.name}: soft-deletes field has doc-values type {kind}")
            offset, length = walker.numeric()
            break
        if kind == NUMERIC:
            walker.numeric()
        elif kind == BINARY:
            walker.binary(info)
        elif kind == SORTED:
            walker.sorted()
        elif kind == SORTED_SET:
            walker.sorted_set()
        elif kind == SORTED_NUMERIC:
            walker.numeric_count_check()
        else:
            raise UnsupportedFormatError(f"{meta_in.name}: doc-values type {kind} of field {info.name!r}")
    if offset == -2:
        return deleted
    if offset == -1:
        for i in range(max_doc):
            deleted[i >> 3] |= 1 << (i & 7)
        return deleted
    data_in = directory.open(base + ".dvd")
    data_codec = header.codec.replace("Metadata", "Data")
    probe = DataInput(data_in.read_at(0, min(data_in.length, _HEADER_PROBE)), data_in.name)
    data_version = read_index_header(probe, expected={data_codec: DATA_VERSIONS[data_codec]}).version
    if data_version != header.version:
        raise LuceneFormatError(f"{data_in.name}: structure: version {data_version}, its .dvm is {header.version}")
    region = data_in.read_at(offset, length)
    disi = DataInput(region, data_in.name, little_endian=walker.gen == 90)
    _read_indexed_disi(disi, walker.gen, walker.dense_rank_power, deleted, max_doc)
    return deleted


def _read_indexed_disi(din: DataInput, gen: int, rank_power: int, out: bytearray, max_doc: int) -> None:
    """Mark every document an IndexedDISI lists."""
    while True:
        block = din.int16() & 0xFFFF
        if block == _NO_MORE_BLOCKS:
            return
        cardinality = (din.int16() & 0xFFFF) + 1
        base = block << 16
        if cardinality <= 4095:
            for _ in range(cardinality):
                _mark(out, base + (din.int16() & 0xFFFF), max_doc, din.name)
        elif cardinality < 65536:
            if gen >= 80 and rank_power != -1:
                din.skip(1024 >> (rank_power - 7))  # rank table: two bytes per 2^power documents
            words = din.bytes(8192)
            _mark_dense(out, base, words, gen, max_doc, din.name)
        else:
            for d in range(base, min(base + 65536, max_doc)):
                out[d >> 3] |= 1 << (d & 7)


def _mark(out: bytearray, doc: int, max_doc: int, name: str) -> None:
    if doc >= max_doc:
        raise LuceneFormatError(f"{name}: structure: document {doc} beyond the segment's {max_doc}")
    out[doc >> 3] |= 1 << (doc & 7)


def _mark_dense(out: bytearray, base: int, words: bytes, gen: int, max_doc: int, name: str) -> None:
    little = gen == 90
    for w in range(1024):
        chunk = words[w * 8 : w * 8 + 8]
        word = int.from_bytes(chunk, "little") if little else int.from_bytes(chunk, "big")
        while word:
            low = word & -word
            _mark(out, base + w * 64 + low.bit_length() - 1, max_doc, name)
            word ^= low
