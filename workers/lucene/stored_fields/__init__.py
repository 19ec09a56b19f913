"""Stored fields (``.fdt``/``.fdm``): one format description per codec, read chunk by chunk."""

from workers.lucene.stored_fields.reader import StoredChunk, StoredFieldsReader

__all__ = ["StoredChunk", "StoredFieldsReader"]
