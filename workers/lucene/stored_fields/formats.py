"""The stored-fields formats, selected by the ``.fdt`` codec header: chunk layout, byte order, compression."""

from __future__ import annotations

from dataclasses import dataclass

from workers.lucene.codec import VersionRanges
from workers.lucene.stored_fields import compression as c
from workers.lucene.stored_fields.compression import Decompressor


@dataclass(frozen=True)
class StoredFieldsFormat:
    """How one ``.fdt`` codec lays out its chunks."""

    codec: str
    decompress: Decompressor
    # "lucene50": token >> 1, PackedInts chunk headers; "lucene90": token >> 2, StoredFieldsInts, little-endian.
    layout: str
    # Below this .fdt version, chunkSize and packedIntsVersion follow the .fdt header; from it on, the .fdm header.
    meta_in_fdm_from: int
    # The .fdt format versions this reader decodes (first, last).
    versions: tuple[int, int]


# .fdt versions: Lucene50 (CompressingStoredFieldsWriter, 6.0-8.6; Lucene50CompressingStoredFieldsReader in
# 9.x backward-codecs) 1 (VERSION_CHUNK_STATS, current in 6.x-7.x), 2 (VERSION_OFFHEAP_INDEX), 3 (VERSION_META: the
# chunk size moves to the .fdm), 4 (VERSION_NUM_CHUNKS: the dirty-chunk bit in every chunk token); 0 is Lucene 5's.
# Lucene87 (8.7+) shares those constants and was written at 3 and 4 only. Lucene90CompressingStoredFieldsWriter has
# VERSION_START = VERSION_CURRENT = 1, and Elasticsearch's Zstd814StoredFieldsFormat and OpenSearch custom-codecs'
# Zstd formats are Lucene90CompressingStoredFieldsFormats under their own names, so they write 1 too.
FORMATS: dict[str, StoredFieldsFormat] = {
    f.codec: f
    for f in (
        StoredFieldsFormat("Lucene50StoredFieldsFastData", c.lz4_plain, "lucene50", 3, (1, 4)),
        StoredFieldsFormat("Lucene50StoredFieldsHighData", c.deflate_plain, "lucene50", 3, (1, 4)),
        StoredFieldsFormat("Lucene87StoredFieldsFastData", c.lz4_with_dict, "lucene50", 0, (3, 4)),
        StoredFieldsFormat("Lucene87StoredFieldsHighData", c.deflate_with_dict, "lucene50", 0, (3, 4)),
        StoredFieldsFormat("Lucene90StoredFieldsFastData", c.lz4_with_dict, "lucene90", 0, (1, 1)),
        StoredFieldsFormat("Lucene90StoredFieldsHighData", c.deflate_with_dict, "lucene90", 0, (1, 1)),
        # Elasticsearch 8.14+ (best_compression, logsdb) and OpenSearch's custom codecs use the Lucene90 layout.
        StoredFieldsFormat("ZstdStoredFields814", c.zstd_es814, "lucene90", 0, (1, 1)),
        StoredFieldsFormat("CustomStoredFieldsZstd", c.zstd_opensearch_dict, "lucene90", 0, (1, 1)),
        StoredFieldsFormat("CustomStoredFieldsZstdNoDict", c.zstd_opensearch_no_dict, "lucene90", 0, (1, 1)),
    )
}

DATA_VERSIONS: VersionRanges = {f.codec: f.versions for f in FORMATS.values()}

# The .fdm of each layout, where it holds the chunk size: Lucene50CompressingStoredFieldsWriter's
# "Lucene85FieldsIndex" + "Meta", written at the .fdt's version (3 and 4 start with the chunk size; 2 has the index
# only), and Lucene90CompressingStoredFieldsWriter's "Lucene90FieldsIndexMeta" at its VERSION_CURRENT 1.
META_VERSIONS: dict[str, VersionRanges] = {
    "lucene50": {"Lucene85FieldsIndexMeta": (3, 4)},
    "lucene90": {"Lucene90FieldsIndexMeta": (1, 1)},
}
