"""The decompressors of stored-fields chunks, one per compression mode.

Each reads one compressed piece of ``n`` bytes from a sequential reader and returns it decompressed,
consuming exactly what the writer produced, zero-length pieces included (Lucene's CompressionMode and its
LZ4WithPresetDict/DeflateWithPresetDict modes; the zstd modes of Elasticsearch and OpenSearch).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from workers.lucene import lz4
from workers.lucene.errors import LuceneFormatError
from workers.lucene.store import SequentialReader

Decompressor = Callable[[SequentialReader, int], bytes | bytearray]

# Upper bound of an LZ4 block's size for n bytes of output (liblz4's LZ4_compressBound).
def _lz4_bound(n: int) -> int:
    return n + n // 255 + 16


def lz4_plain(r: SequentialReader, n: int) -> bytes:
    """Lucene50 FAST: one LZ4 block, no recorded length (found by a token scan)."""
    buf, rel = r.ensure(min(_lz4_bound(n), r.end - r.pos))
    length = lz4.compressed_length(buf, rel, n, r.inp.name)
    src = bytes(r.read(length))
    return lz4.decompress(src, n, r.inp.name) if n else b""


def _inflate(data: bytes | memoryview, n: int, where: str, zdict: bytes | None = None) -> bytes:
    try:
        d = zlib.decompressobj(-15, zdict=zdict) if zdict else zlib.decompressobj(-15)
        out = d.decompress(data, n)
    except zlib.error as exc:
        raise LuceneFormatError(f"{where}: structure: bad DEFLATE data ({exc})") from None
    if len(out) != n:
        raise LuceneFormatError(f"{where}: structure: DEFLATE gave {len(out)} bytes, expected {n}")
    return out


def deflate_plain(r: SequentialReader, n: int) -> bytes:
    """Lucene50 HIGH: VInt compressed length, raw DEFLATE."""
    length = r.vint()
    if length == 0:
        if n:
            raise LuceneFormatError(f"{r.inp.name}: structure: empty DEFLATE piece for {n} bytes")
        return b""
    return _inflate(r.read(length), n, r.inp.name)


def _block_count(n: int, dict_len: int, block_len: int, where: str) -> int:
    if n <= dict_len:
        return 0
    if block_len <= 0:
        raise LuceneFormatError(f"{where}: structure: block length {block_len} for {n - dict_len} bytes")
    return (n - dict_len + block_len - 1) // block_len


BlockDecoder = Callable[[bytes | memoryview, int, str, bytes | None], bytes]


def _dictionary(r: SequentialReader, dict_len: int, clen: int, decode: BlockDecoder) -> bytes:
    data = r.read(clen)
    # An empty dictionary still has its (tiny) compressed form in the stream: consumed, not decoded.
    return decode(data, dict_len, r.inp.name, None) if dict_len else b""


def lz4_with_dict(r: SequentialReader, n: int) -> bytes | bytearray:
    """Lucene87/90 FAST: an LZ4 dictionary block, then blocks decoded with the dictionary as prefix.

    All the compressed lengths come first, then the compressed bytes. Every block is decoded in place, into
    one buffer for the whole piece.
    """
    where = r.inp.name
    dict_len = r.vint()
    block_len = r.vint()
    count = _block_count(n, dict_len, block_len, where)
    dict_clen = r.vint()
    lengths = [r.vint() for _ in range(count)]
    if dict_len > n:
        raise LuceneFormatError(f"{where}: structure: LZ4 dictionary of {dict_len} bytes for {n}")
    out = bytearray(n)
    # An empty dictionary still has its (tiny) compressed form in the stream: consumed, not decoded.
    lz4.decompress_into(bytes(r.read(dict_clen)), out, 0, dict_len, 0, where)
    offset = dict_len
    for clen in lengths:
        size = min(block_len, n - offset)
        lz4.decompress_into(bytes(r.read(clen)), out, offset, size, dict_len, where)
        offset += size
    return out


def _dictionary_then_blocks(r: SequentialReader, n: int, decode: BlockDecoder) -> bytes:
    """A compressed dictionary, then blocks each prefixed by its compressed length and decoded with it."""
    where = r.inp.name
    dict_len = r.vint()
    block_len = r.vint()
    count = _block_count(n, dict_len, block_len, where)
    dictionary = _dictionary(r, dict_len, r.vint(), decode)
    out = [dictionary]
    remaining = n - dict_len
    for _ in range(count):
        size = min(block_len, remaining)
        clen = r.vint()
        out.append(decode(r.read(clen), size, where, dictionary or None))
        remaining -= size
    return b"".join(out)


def deflate_with_dict(r: SequentialReader, n: int) -> bytes:
    """Lucene87/90 HIGH: a DEFLATE dictionary, then blocks inflated with it as preset dictionary."""
    return _dictionary_then_blocks(r, n, _inflate)


def _zstd_frame(data: bytes | memoryview, n: int, where: str, dictionary: bytes | None = None) -> bytes:
    import zstandard

    try:
        if dictionary:
            zd = zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            out = zstandard.ZstdDecompressor(dict_data=zd).decompress(bytes(data), max_output_size=n)
        else:
            out = zstandard.ZstdDecompressor().decompress(bytes(data), max_output_size=n)
    except zstandard.ZstdError as exc:
        raise LuceneFormatError(f"{where}: structure: bad zstd frame ({exc})") from None
    if len(out) != n:
        raise LuceneFormatError(f"{where}: structure: zstd gave {len(out)} bytes, expected {n}")
    return out


def zstd_es814(r: SequentialReader, n: int) -> bytes:
    """Elasticsearch 8.14+ Zstd814: VInt length + one zstd frame; nothing at all for zero bytes."""
    if n == 0:
        return b""
    clen = r.vint()
    return _zstd_frame(r.read(clen), n, r.inp.name)


def zstd_opensearch_no_dict(r: SequentialReader, n: int) -> bytes:
    """OpenSearch ZSTD_NO_DICT: VInt block length, then per block VInt length + zstd frame."""
    block_len = r.vint()
    count = _block_count(n, 0, block_len, r.inp.name)
    out = []
    remaining = n
    for _ in range(count):
        size = min(block_len, remaining)
        clen = r.vint()
        out.append(_zstd_frame(r.read(clen), size, r.inp.name))
        remaining -= size
    return b"".join(out)


def zstd_opensearch_dict(r: SequentialReader, n: int) -> bytes:
    """OpenSearch ZSTD: a zstd dictionary frame, then blocks decompressed with it as raw-content dictionary."""
    return _dictionary_then_blocks(r, n, _zstd_frame)
