"""The stored-fields formats, selected by the ``.fdt`` codec header: chunk layout, byte order, compression."""

from __future__ import annotations

from dataclasses import dataclass

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


FORMATS: dict[str, StoredFieldsFormat] = {
    f.codec: f
    for f in (
        StoredFieldsFormat("Lucene50StoredFieldsFastData", c.lz4_plain, "lucene50", 3),
        StoredFieldsFormat("Lucene50StoredFieldsHighData", c.deflate_plain, "lucene50", 3),
        StoredFieldsFormat("Lucene87StoredFieldsFastData", c.lz4_with_dict, "lucene50", 0),
        StoredFieldsFormat("Lucene87StoredFieldsHighData", c.deflate_with_dict, "lucene50", 0),
        StoredFieldsFormat("Lucene90StoredFieldsFastData", c.lz4_with_dict, "lucene90", 0),
        StoredFieldsFormat("Lucene90StoredFieldsHighData", c.deflate_with_dict, "lucene90", 0),
        # Elasticsearch 8.14+ (best_compression, logsdb) and OpenSearch's custom codecs use the Lucene90 layout.
        StoredFieldsFormat("ZstdStoredFields814", c.zstd_es814, "lucene90", 0),
        StoredFieldsFormat("CustomStoredFieldsZstd", c.zstd_opensearch_dict, "lucene90", 0),
        StoredFieldsFormat("CustomStoredFieldsZstdNoDict", c.zstd_opensearch_no_dict, "lucene90", 0),
    )
}
