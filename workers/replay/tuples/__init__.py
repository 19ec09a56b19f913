"""Tuples: what was sent and received on both sides of each replayed transaction, with the comparison's verdict,
written as Parquet files to a local folder or S3."""

from workers.replay.tuples.location import TupleLocation, TupleStoreError, open_location
from workers.replay.tuples.patterns import path_pattern
from workers.replay.tuples.schema import DEFAULT_MAX_BODY_BYTES, REDACTED_HEADERS, SCHEMA, tuple_row
from workers.replay.tuples.writer import NullTupleWriter, TupleSink, TupleWriter, open_tuple_writer

__all__ = [
    "DEFAULT_MAX_BODY_BYTES", "REDACTED_HEADERS", "SCHEMA", "NullTupleWriter", "TupleLocation", "TupleSink",
    "TupleStoreError", "TupleWriter", "open_location", "open_tuple_writer", "path_pattern", "tuple_row",
]
