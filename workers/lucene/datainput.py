"""Lucene's DataInput primitives over an in-memory buffer, in the byte order of the file's format."""

from __future__ import annotations

import struct

from workers.lucene.errors import LuceneFormatError

_BE = {2: struct.Struct(">h"), 4: struct.Struct(">i"), 8: struct.Struct(">q")}
_LE = {2: struct.Struct("<h"), 4: struct.Struct("<i"), 8: struct.Struct("<q")}


def read_vint_at(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode a VInt/VLong at ``pos``: little-endian base-128. Returns (value, next position)."""
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    value = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise LuceneFormatError(f"VLong too long at byte {pos}")


class DataInput:
    """Sequential reads from a buffer; fixed-width ints big- or little-endian as the format says."""

    __slots__ = ("buf", "ints", "name", "pos")

    def __init__(self, buf: bytes | memoryview, name: str, *, little_endian: bool = False, pos: int = 0) -> None:
        self.buf = buf
        self.name = name
        self.pos = pos
        self.ints = _LE if little_endian else _BE

    def set_little_endian(self, little: bool) -> None:
        """Switch the byte order of fixed-width reads (chosen from the codec header)."""
        self.ints = _LE if little else _BE

    def _need(self, n: int) -> None:
        if self.pos + n > len(self.buf):
            raise LuceneFormatError(
                f"{self.name}: structure: needs {n} bytes at offset {self.pos}, file has {len(self.buf)}"
            )

    def byte(self) -> int:
        """One unsigned byte."""
        self._need(1)
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def bytes(self, n: int) -> bytes:
        """``n`` raw bytes."""
        self._need(n)
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def skip(self, n: int) -> None:
        """Move forward ``n`` bytes."""
        self._need(n)
        self.pos += n

    def int16(self) -> int:
        """A signed 16-bit int."""
        self._need(2)
        (v,) = self.ints[2].unpack_from(self.buf, self.pos)
        self.pos += 2
        return int(v)

    def int32(self) -> int:
        """A signed 32-bit int."""
        self._need(4)
        (v,) = self.ints[4].unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(v)

    def int64(self) -> int:
        """A signed 64-bit int."""
        self._need(8)
        (v,) = self.ints[8].unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(v)

    def be_int32(self) -> int:
        """A big-endian 32-bit int, whatever the format (codec headers and footers)."""
        self._need(4)
        (v,) = _BE[4].unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(v)

    def vint(self) -> int:
        """A VInt (also reads VLongs)."""
        try:
            value, self.pos = read_vint_at(self.buf, self.pos)
        except IndexError:
            raise LuceneFormatError(f"{self.name}: structure: truncated VInt at offset {self.pos}") from None
        return value

    vlong = vint

    def string(self) -> str:
        """A VInt length and UTF-8 bytes."""
        return self.bytes(self.vint()).decode("utf-8", "replace")

    def string_map(self) -> dict[str, str]:
        """A VInt count of key/value strings."""
        return {self.string(): self.string() for _ in range(self.vint())}

    def string_set(self) -> list[str]:
        """A VInt count of strings."""
        return [self.string() for _ in range(self.vint())]
