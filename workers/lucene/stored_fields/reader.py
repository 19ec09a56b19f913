"""Sequential reading of a segment's stored fields, chunk by chunk, with memory bounded by one chunk."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from workers.lucene.codec import read_index_header
from workers.lucene.datainput import DataInput
from workers.lucene.errors import LuceneFormatError
from workers.lucene.store import Directory, SequentialReader
from workers.lucene.stored_fields.formats import DATA_VERSIONS, FORMATS, META_VERSIONS, StoredFieldsFormat

_HEADER_PROBE = 512


def _packed_ints(r: SequentialReader, n: int, bpv: int) -> list[int]:
    """PackedInts (format PACKED): n values of bpv bits, one big-endian bit stream, MSB first."""
    nbytes = (n * bpv + 7) // 8
    big = int.from_bytes(r.read(nbytes), "big")
    total = nbytes * 8
    mask = (1 << bpv) - 1
    return [(big >> (total - (i + 1) * bpv)) & mask for i in range(n)]


def _stored_fields_ints(r: SequentialReader, n: int) -> list[int]:
    """Lucene90 StoredFieldsInts: 0 (one VInt for all), or blocks of 128 values in LE 64-bit words, then a tail."""
    bpv = r.byte()
    if bpv == 0:
        return [r.vint()] * n
    if bpv not in (8, 16, 32):
        raise LuceneFormatError(f"{r.inp.name}: structure: StoredFieldsInts width {bpv}")
    values = [0] * n
    words = 128 * bpv // 64
    lanes = 64 // bpv
    mask = (1 << bpv) - 1
    k = 0
    while n - k >= 128:
        raw = r.read(words * 8)
        for i in range(words):
            word = int.from_bytes(raw[i * 8 : i * 8 + 8], "little")
            for lane in range(lanes):
                values[k + lane * words + i] = (word >> (64 - bpv * (lane + 1))) & mask
        k += 128
    width = bpv // 8
    if k < n:
        raw = r.read((n - k) * width)
        for j in range(n - k):
            values[k + j] = int.from_bytes(raw[j * width : (j + 1) * width], "little")
    return values


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """One decompressed chunk: documents ``doc_base`` to ``doc_base + len(lengths) - 1``, back to back in ``data``."""

    doc_base: int
    fields: list[int]
    lengths: list[int]
    data: bytes | bytearray


class StoredFieldsReader:
    """Yields a segment's stored-fields chunks in order, each decompressed with its documents' field counts and
    lengths."""

    def __init__(self, directory: Directory, segment: str, max_doc: int) -> None:
        self.segment = segment
        self.max_doc = max_doc
        self.fdt = directory.open(f"{segment}.fdt")
        probe = DataInput(self.fdt.read_at(0, min(self.fdt.length, _HEADER_PROBE)), self.fdt.name)
        header = read_index_header(probe, expected=DATA_VERSIONS)
        fmt = FORMATS[header.codec]
        self.format: StoredFieldsFormat = fmt
        self.codec_version = header.version
        if header.version < fmt.meta_in_fdm_from:
            self.chunk_size = probe.vint()
            probe.vint()  # packedIntsVersion (2 in every released format)
        else:
            meta = directory.open(f"{segment}.fdm")
            mdin = DataInput(meta.read_at(0, min(meta.length, _HEADER_PROBE)), meta.name)
            read_index_header(mdin, expected=META_VERSIONS[fmt.layout])
            self.chunk_size = mdin.vint()
        self.data_start = probe.pos
        if self.chunk_size <= 0:
            raise LuceneFormatError(f"{self.fdt.name}: structure: chunk size {self.chunk_size}")

    def chunks(self) -> Iterator[StoredChunk]:
        """Every chunk of the segment in order, decompressed (one chunk in memory at a time)."""
        r = SequentialReader(self.fdt, self.data_start, self.fdt.length)
        # The chunk token's bit 1 marks a "dirty" chunk in the Lucene90 layout and, from format version 4
        # (Lucene 8.8+), in the Lucene50/87 layout too; the document count sits above it.
        shift = 2 if self.format.layout == "lucene90" or self.codec_version >= 4 else 1
        produced = 0
        while produced < self.max_doc:
            doc_base = r.vint()
            if doc_base != produced:
                raise LuceneFormatError(
                    f"{self.fdt.name}: structure: chunk starts at document {doc_base}, expected {produced}"
                )
            token = r.vint()
            count = token >> shift
            sliced = token & 1
            if count <= 0 or produced + count > self.max_doc:
                raise LuceneFormatError(f"{self.fdt.name}: structure: chunk of {count} documents at {produced}")
            fields, lengths = self._chunk_header(r, count)
            total = sum(lengths)
            if sliced:
                pieces = []
                done = 0
                while done < total:
                    size = min(self.chunk_size, total - done)
                    pieces.append(self.format.decompress(r, size))
                    done += size
                data: bytes | bytearray = b"".join(pieces)
            else:
                data = self.format.decompress(r, total)
            yield StoredChunk(produced, fields, lengths, data)
            produced += count

    def _chunk_header(self, r: SequentialReader, count: int) -> tuple[list[int], list[int]]:
        if count == 1:
            return [r.vint()], [r.vint()]
        if self.format.layout == "lucene90":
            return _stored_fields_ints(r, count), _stored_fields_ints(r, count)
        bpv = r.vint()
        fields = [r.vint()] * count if bpv == 0 else _packed_ints(r, count, bpv)
        bpv = r.vint()
        lengths = [r.vint()] * count if bpv == 0 else _packed_ints(r, count, bpv)
        return fields, lengths
