"""Snapshot metadata blobs: Lucene codec header and footer (CRC-checked), optional compression, SMILE or JSON.

Layouts: Lucene's CodecUtil (writeHeader/checkHeader, checkFooter) and Elasticsearch's ChecksumBlobStoreFormat.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from workers.common.errors import MigrationError
from workers.lucene.codec import CODEC_MAGIC, FOOTER_LENGTH, check_footer
from workers.lucene.errors import LuceneFormatError
from workers.snapshot import smile


class CorruptBlobError(MigrationError):
    """A blob failed its checksum or does not have the expected structure; the message names the blob."""


def verify_footer(data: bytes | memoryview, where: str) -> None:
    """Check the Lucene footer: magic, algorithm 0, and the CRC-32 of everything before the checksum."""
    try:
        check_footer(data, where)
    except LuceneFormatError as exc:  # the same footer as any Lucene file; reported as a bad blob
        raise CorruptBlobError(str(exc)) from None


def read_header(data: bytes | memoryview, where: str) -> tuple[str, int, int]:
    """Parse a plain codec header; returns (codec name, version, header length)."""
    if len(data) < 9:
        raise CorruptBlobError(f"{where}: structure: too short for a codec header")
    (magic,) = struct.unpack_from(">I", data, 0)
    if magic != CODEC_MAGIC:
        raise CorruptBlobError(f"{where}: structure: no codec header (magic 0x{magic:08x})")
    # The codec name is a Lucene string: a VInt length (always one byte for these names) and ASCII.
    name_len = data[4]
    if name_len >= 0x80 or 5 + name_len + 4 > len(data):
        raise CorruptBlobError(f"{where}: structure: bad codec name length {name_len}")
    name = bytes(data[5 : 5 + name_len]).decode("ascii", "replace")
    (version,) = struct.unpack_from(">i", data, 5 + name_len)
    return name, version, 5 + name_len + 4


def decode_body(body: bytes | memoryview, where: str) -> Any:
    """Decode a metadata body: DEFLATE (``DFL\\0``) or LZF (``ZV``) unwrapped, then SMILE or JSON."""
    raw = bytes(body)
    if raw.startswith(b"DFL\x00"):
        try:
            raw = zlib.decompressobj(-15).decompress(raw[4:])
        except zlib.error as exc:
            raise CorruptBlobError(f"{where}: structure: bad DEFLATE data ({exc})") from None
    elif raw.startswith(b"ZV"):
        raw = _lzf_unwrap(raw, where)
    try:
        if smile.is_smile(raw):
            return smile.decode(raw)
        return json.loads(raw)
    except (smile.SmileError, ValueError, UnicodeDecodeError) as exc:
        raise CorruptBlobError(f"{where}: structure: {exc}") from None


def read_metadata_blob(data: bytes, where: str, expected_codec: str | None = None) -> Any:
    """Decode a checksummed snapshot metadata blob (``snap-*.dat``, ``meta-*.dat``, shard ``index-N``)."""
    verify_footer(data, where)
    codec, _version, header_len = read_header(data, where)
    if expected_codec is not None and codec != expected_codec:
        raise CorruptBlobError(f"{where}: structure: codec {codec!r}, expected {expected_codec!r}")
    return decode_body(memoryview(data)[header_len : len(data) - FOOTER_LENGTH], where)


def _lzf_unwrap(raw: bytes, where: str) -> bytes:
    """ES 1.x LZF chunks: ``ZV``, type (0 stored, 1 compressed), BE lengths, payload."""
    out = bytearray()
    pos = 0
    while pos < len(raw):
        if raw[pos : pos + 2] != b"ZV" or pos + 5 > len(raw):
            raise CorruptBlobError(f"{where}: structure: bad LZF chunk at byte {pos}")
        kind = raw[pos + 2]
        (length,) = struct.unpack_from(">H", raw, pos + 3)
        if kind == 0:
            out += raw[pos + 5 : pos + 5 + length]
            pos += 5 + length
        elif kind == 1:
            (plain_len,) = struct.unpack_from(">H", raw, pos + 5)
            out += _lzf_decompress(raw[pos + 7 : pos + 7 + length], plain_len, where)
            pos += 7 + length
        else:
            raise CorruptBlobError(f"{where}: structure: unknown LZF chunk type {kind}")
    return bytes(out)


def _lzf_decompress(src: bytes, plain_len: int, where: str) -> bytes:
    # LZF is only met in ES 1.x-era metadata: small blobs, so a plain loop is fine here.
    out = bytearray()
    i = 0
    while i < len(src):
        ctrl = src[i]
        i += 1
        if ctrl < 32:
            out += src[i : i + ctrl + 1]
            i += ctrl + 1
            continue
        length = ctrl >> 5
        if length == 7:
            length += src[i]
            i += 1
        ref = len(out) - ((ctrl & 0x1F) << 8) - src[i] - 1
        i += 1
        if ref < 0:
            raise CorruptBlobError(f"{where}: structure: LZF back-reference before start")
        for _ in range(length + 2):
            out.append(out[ref])
            ref += 1
    if len(out) != plain_len:
        raise CorruptBlobError(f"{where}: structure: LZF chunk gave {len(out)} bytes, expected {plain_len}")
    return bytes(out)
