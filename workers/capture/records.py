"""Capture record schema, version 2: encoding and decoding of one Kafka record value (docs/capture-format.md)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import orjson

from workers.common.errors import MigrationError

MAGIC = b"MCAP"
# Written: 2. Read: 1 (no LOCAL records, close records without ``suppressed``) and 2.
VERSION = 2
READABLE_VERSIONS = (1, 2)
# magic, version, kind, length of the JSON metadata that follows; the rest of the value is the payload.
_PREFIX = struct.Struct(">4sBBI")
# Room kept in each record for the prefix and metadata, so that a part never exceeds the record size limit.
METADATA_ROOM = 2048


class Kind(IntEnum):
    """What a record describes."""

    OPEN = 1
    REQUEST = 2
    RESPONSE = 3
    CLOSE = 4
    # A small read: request and response in one record (payload: request bytes, then response bytes).
    TRANSACTION = 5
    # A request the proxy answered itself, never forwarded (payload: what it received, then its answer). Version 2.
    LOCAL = 6


class RecordFormatError(MigrationError):
    """A Kafka record value is not a capture record this reader understands."""


@dataclass(frozen=True)
class CaptureRecord:
    """One decoded record: its kind, its metadata (field names in docs/capture-format.md), its payload bytes."""

    kind: Kind
    meta: dict[str, Any]
    payload: bytes
    version: int = VERSION

    @property
    def connection_id(self) -> str:
        """The connection the record belongs to (also the Kafka key)."""
        return str(self.meta["conn"])


def encode(kind: Kind, meta: dict[str, Any], payload: bytes | bytearray | memoryview = b"") -> bytes:
    """The Kafka record value for one record."""
    head = orjson.dumps(meta)
    return b"".join((_PREFIX.pack(MAGIC, VERSION, kind, len(head)), head, payload))


def decode(value: bytes) -> CaptureRecord:
    """One record from its Kafka value; refuses other formats and unknown versions by name."""
    if len(value) < _PREFIX.size:
        raise RecordFormatError(f"capture record too short ({len(value)} bytes)")
    magic, version, kind, head_len = _PREFIX.unpack_from(value)
    if magic != MAGIC:
        raise RecordFormatError(f"not a capture record (magic {magic!r})")
    if version not in READABLE_VERSIONS:
        raise RecordFormatError(f"capture record version {version} is not supported (this reader knows "
                                f"{', '.join(map(str, READABLE_VERSIONS))})")
    try:
        record_kind = Kind(kind)
    except ValueError:
        raise RecordFormatError(f"capture record kind {kind} is unknown") from None
    if record_kind is Kind.LOCAL and version < 2:
        raise RecordFormatError(f"capture record kind {kind} does not exist in version {version}")
    start = _PREFIX.size
    meta = orjson.loads(value[start:start + head_len])
    return CaptureRecord(record_kind, meta, bytes(value[start + head_len:]), version)
