"""LZ4 as Lucene writes it, decoded by liblz4's *partial* decoders through ctypes.

liblz4's standard safe decoder (what ``lz4.block.decompress`` calls) rejects valid Lucene blocks whose
last match ends within 12 bytes of the output's end; ``LZ4_decompress_safe_partial`` and its ``_usingDict``
variant stop once the wanted bytes are produced and accept them all (Lucene's org.apache.lucene.util.compress.LZ4).
The symbols come from python-lz4's own extension module, or else from the system's liblz4.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from workers.lucene.errors import LuceneFormatError


def _load() -> ctypes.CDLL:
    candidates = []
    try:
        import lz4.block._block as extension

        candidates.append(extension.__file__)
    except ImportError:
        pass
    system = ctypes.util.find_library("lz4")
    if system:
        candidates.append(system)
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            lib.LZ4_decompress_safe_partial  # noqa: B018 - probe the symbol
            lib.LZ4_decompress_safe_partial_usingDict  # noqa: B018
            return lib
        except (OSError, AttributeError):
            continue
    raise ImportError("no liblz4 with LZ4_decompress_safe_partial found (install the lz4 package)")


_LIB = _load()
_partial = _LIB.LZ4_decompress_safe_partial
_partial.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
_partial.restype = ctypes.c_int
_partial_dict = _LIB.LZ4_decompress_safe_partial_usingDict
_partial_dict.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                          ctypes.c_void_p, ctypes.c_int]
_partial_dict.restype = ctypes.c_int


def decompress(src: bytes, n: int, where: str) -> bytes:
    """Decode one Lucene LZ4 block into exactly ``n`` bytes."""
    if n == 0:
        return b""
    out = bytearray(n)
    decompress_into(src, out, 0, n, 0, where)
    return bytes(out)


def decompress_into(src: bytes, out: bytearray, offset: int, n: int, dictionary: int, where: str) -> None:
    """Decode one LZ4 block into ``out[offset:offset + n]``; its matches may reach back into ``out[:dictionary]``
    (Lucene's preset dictionary, the chunk's first bytes). Decoding in place spares a copy per block."""
    if n == 0:
        return
    if offset + n > len(out) or dictionary > offset:
        raise LuceneFormatError(f"{where}: structure: LZ4 block of {n} bytes at {offset} overruns {len(out)}")
    view = (ctypes.c_char * len(out)).from_buffer(out)  # pins ``out`` while liblz4 writes into it
    base = ctypes.addressof(view)
    if dictionary:
        got = _partial_dict(src, base + offset, len(src), n, n, base, dictionary)
    else:
        got = _partial(src, base + offset, len(src), n, n)
    if got != n:
        raise LuceneFormatError(f"{where}: structure: LZ4 block gave {got} bytes, expected {n}")


def compressed_length(buf: bytes | memoryview, pos: int, n: int, where: str) -> int:
    """How many input bytes, from ``pos``, one LZ4 block of ``n`` output bytes takes (a token scan, no copying).

    Plain Lucene LZ4 (Lucene50 FAST) records no compressed length; the next piece starts right after.
    """
    produced = 0
    start = pos
    end = len(buf)
    try:
        while True:
            token = buf[pos]
            pos += 1
            literals = token >> 4
            if literals == 15:
                while True:
                    b = buf[pos]
                    pos += 1
                    literals += b
                    if b != 255:
                        break
            pos += literals
            produced += literals
            if produced >= n:
                break
            pos += 2  # match offset
            match = token & 0x0F
            if match == 15:
                while True:
                    b = buf[pos]
                    pos += 1
                    match += b
                    if b != 255:
                        break
            produced += match + 4
            if produced >= n:
                break
    except IndexError:
        raise LuceneFormatError(f"{where}: structure: LZ4 block runs past the data") from None
    if pos > end:
        raise LuceneFormatError(f"{where}: structure: LZ4 block runs past the data")
    return pos - start
