"""A stream reader that keeps unconsumed bytes, so that messages can be cut at their exact boundaries."""

from __future__ import annotations

import asyncio

from workers.capture.http1 import HEAD_END, MalformedHttp

READ_SIZE = 256 << 10


class HeadTooLarge(MalformedHttp):
    """A head exceeded the size limit before its empty line."""


class BufferedStream:
    """Bytes read from ``reader`` and not yet consumed live in ``buf``."""

    __slots__ = ("buf", "eof", "reader")

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.buf = bytearray()
        self.eof = False

    async def fill(self) -> bool:
        """Read more bytes into the buffer; False at end of input."""
        if self.eof:
            return False
        data = await self.reader.read(READ_SIZE)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def take(self, n: int) -> bytes:
        """Consume and return the first ``n`` buffered bytes."""
        if n == len(self.buf):
            data = bytes(self.buf)
            self.buf.clear()
            return data
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    async def read_head(self, limit: int, skip_empty_lines: bool = False) -> bytes | None:
        """The next head, up to and including its empty line; None at a clean end of input before it."""
        searched = 0
        while True:
            if skip_empty_lines:
                # RFC 9112 2.2: a server ignores empty lines received before a request line.
                while self.buf[:2] == b"\r\n":
                    del self.buf[:2]
            end = self.buf.find(HEAD_END, searched)
            if end >= 0:
                if end > limit:
                    raise HeadTooLarge(f"head larger than {limit} bytes")
                return self.take(end + len(HEAD_END))
            if len(self.buf) > limit:
                raise HeadTooLarge(f"head larger than {limit} bytes")
            searched = max(0, len(self.buf) - len(HEAD_END) + 1)
            if not await self.fill():
                if self.buf.strip():
                    raise MalformedHttp("connection closed inside a head")
                return None
