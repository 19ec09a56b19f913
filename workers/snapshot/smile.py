"""A decoder for SMILE, the binary JSON Elasticsearch writes its snapshot metadata in.

Token tables: Jackson's SMILE format specification (FasterXML smile-format-specification).
"""

from __future__ import annotations

import struct
from typing import Any

from workers.common.errors import MigrationError

_HEADER = b":)\n"
_TABLE_LIMIT = 1024


class SmileError(MigrationError):
    """The bytes are not valid SMILE; the message gives the offset and the token."""


def is_smile(data: bytes | memoryview) -> bool:
    """True when ``data`` starts with the SMILE header ``:)\\n``."""
    return bytes(data[:3]) == _HEADER


def decode(data: bytes | memoryview) -> Any:
    """Decode one SMILE document into dicts, lists, strings, numbers, bools, None and bytes (raw binary)."""
    return _Decoder(bytes(data)).document()


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


class _Decoder:
    __slots__ = ("buf", "names", "pos", "shared_values", "values")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0
        self.names: list[str] = []
        self.values: list[str] = []
        self.shared_values = False

    def fail(self, what: str) -> SmileError:
        return SmileError(f"invalid SMILE at byte {self.pos}: {what}")

    def document(self) -> Any:
        if len(self.buf) < 4 or not is_smile(self.buf):
            raise SmileError("missing SMILE header ':)\\n'")
        flags = self.buf[3]
        if flags >> 4 != 0:
            raise SmileError(f"unsupported SMILE version {flags >> 4}")
        self.shared_values = bool(flags & 0x02)
        self.pos = 4
        value = self.value()
        if self.pos < len(self.buf) and self.buf[self.pos] != 0xFF:
            raise self.fail("trailing bytes after the root value")
        return value

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            raise self.fail("unexpected end of data")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise self.fail(f"needs {n} bytes, {len(self.buf) - self.pos} left")
        chunk = self.buf[self.pos:end]
        self.pos = end
        return chunk

    def vint(self) -> int:
        # Big-endian 7-bit groups; the last byte has bit 7 set and carries only 6 bits.
        value = 0
        while True:
            b = self.byte()
            if b & 0x80:
                return (value << 6) | (b & 0x3F)
            value = (value << 7) | b

    def until_end_marker(self) -> bytes:
        end = self.buf.find(b"\xfc", self.pos)
        if end < 0:
            raise self.fail("unterminated long string")
        chunk = self.buf[self.pos:end]
        self.pos = end + 1
        return chunk

    def seven_bit(self, count: int) -> int:
        value = 0
        for _ in range(count):
            value = (value << 7) | (self.byte() & 0x7F)
        return value

    def seven_bit_bytes(self, length: int) -> bytes:
        # Every 7 output bytes take 8 input bytes of 7 bits; a tail of n bytes takes n+1 input bytes,
        # the last of which carries the remaining n bits, right-aligned.
        out = bytearray()
        full, tail = divmod(length, 7)
        for _ in range(full):
            out += self.seven_bit(8).to_bytes(7, "big")
        if tail:
            value = self.seven_bit(tail)
            value = (value << tail) | (self.byte() & ((1 << tail) - 1))
            out += value.to_bytes(tail, "big")
        return bytes(out)

    def remember_value(self, text: str) -> None:
        if self.shared_values:
            if len(self.values) >= _TABLE_LIMIT:
                self.values.clear()
            self.values.append(text)

    def remember_name(self, name: str) -> None:
        if len(self.names) >= _TABLE_LIMIT:
            self.names.clear()
        self.names.append(name)

    def value(self) -> Any:
        b = self.byte()
        if b < 0x20:
            if b == 0:
                raise self.fail("token 0x00")
            return self._shared_value(b - 1)
        if b < 0x40:
            return self._simple(b)
        if b < 0x60:
            text = self.take((b & 0x1F) + 1).decode("ascii")
            self.remember_value(text)
            return text
        if b < 0x80:
            text = self.take((b & 0x1F) + 33).decode("ascii")
            self.remember_value(text)
            return text
        if b < 0xA0:
            text = self.take((b & 0x1F) + 2).decode("utf-8")
            self.remember_value(text)
            return text
        if b < 0xC0:
            text = self.take((b & 0x1F) + 34).decode("utf-8")
            self.remember_value(text)
            return text
        if b < 0xE0:
            return _zigzag(b & 0x1F)
        return self._structural(b)

    def _shared_value(self, index: int) -> str:
        if index >= len(self.values):
            raise self.fail(f"shared value reference {index} out of range")
        return self.values[index]

    def _simple(self, b: int) -> Any:
        if b == 0x20:
            return ""
        if b == 0x21:
            return None
        if b == 0x22:
            return False
        if b == 0x23:
            return True
        if b in (0x24, 0x25):
            return _zigzag(self.vint())
        if b == 0x26:
            raw = self.seven_bit_bytes(self.vint())
            return int.from_bytes(raw, "big", signed=True)
        if b == 0x28:
            return struct.unpack(">f", (self.seven_bit(5) & 0xFFFFFFFF).to_bytes(4, "big"))[0]
        if b == 0x29:
            return struct.unpack(">d", (self.seven_bit(10) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big"))[0]
        if b == 0x2A:
            scale = _zigzag(self.vint())
            unscaled = int.from_bytes(self.seven_bit_bytes(self.vint()), "big", signed=True)
            from decimal import Decimal

            return Decimal(unscaled).scaleb(-scale)
        raise self.fail(f"reserved token 0x{b:02x}")

    def _structural(self, b: int) -> Any:
        if b == 0xE0:
            text = self.until_end_marker().decode("ascii")
            return text
        if b == 0xE4:
            return self.until_end_marker().decode("utf-8")
        if b == 0xE8:
            return self.seven_bit_bytes(self.vint())
        if 0xEC <= b <= 0xEF:
            return self._shared_value(((b & 0x03) << 8) | self.byte())
        if b == 0xF8:
            items = []
            while self.pos < len(self.buf) and self.buf[self.pos] != 0xF9:
                items.append(self.value())
            self.byte()
            return items
        if b == 0xFA:
            return self._object()
        if b == 0xFD:
            return self.take(self.vint())
        raise self.fail(f"unexpected token 0x{b:02x} in value context")

    def _object(self) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        while True:
            b = self.byte()
            if b == 0xFB:
                return obj
            key = self._key(b)  # before the value: an assignment evaluates its right side first
            obj[key] = self.value()

    def _key(self, b: int) -> str:
        if b == 0x20:
            return ""
        if 0x30 <= b <= 0x33:
            index = ((b & 0x03) << 8) | self.byte()
        elif 0x40 <= b <= 0x7F:
            index = b & 0x3F
        elif 0x80 <= b <= 0xBF:
            name = self.take((b & 0x3F) + 1).decode("ascii")
            self.remember_name(name)
            return name
        elif 0xC0 <= b <= 0xF7:
            name = self.take((b & 0x3F) + 2).decode("utf-8")
            self.remember_name(name)
            return name
        elif b == 0x34:
            name = self.until_end_marker().decode("utf-8")
            self.remember_name(name)
            return name
        else:
            raise self.fail(f"unexpected token 0x{b:02x} in key context")
        if index >= len(self.names):
            raise self.fail(f"shared name reference {index} out of range")
        return self.names[index]
