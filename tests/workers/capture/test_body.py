"""Copying one body by its framing, and the head held back for the body's first bytes (no sockets needed)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

from workers.capture.body import DISCARD, HeadFirst, copy_body
from workers.capture.buffered import BODY_TIMEOUT, Channel
from workers.capture.http1 import BodyFramer, Framing


class _Written:
    """Stands in for the channel written to: every write, as one item."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)


class _Sink(HeadFirst):
    def __init__(self, out: _Written, head: bytes | None) -> None:
        super().__init__(cast(Channel, out), head)

    async def piece(self, data: bytes) -> None:
        self.write(data)


class _Arrivals(Channel):
    """A channel whose bytes arrive one item per wait for more, then end of input (if ``eof``)."""

    def __init__(self, arrivals: list[bytes], eof: bool) -> None:
        super().__init__(asyncio.get_running_loop())
        self._arrivals = deque(arrivals)
        self._eof = eof

    async def fill(self, why: str = BODY_TIMEOUT, since: float = 0.0) -> bool:
        if self._arrivals:
            self.data_received(self._arrivals.popleft())
            return True
        if self._eof:
            self.eof_received()
        return await super().fill(why, since)


def _copy(framing: Framing, length: int, arrivals: list[bytes], eof: bool,
          head: bytes | None = b"HEAD") -> tuple[bool, list[bytes], bytes]:
    """copy_body over ``arrivals``: (its result, the writes, what stayed buffered)."""
    async def scenario() -> tuple[bool, list[bytes], bytes]:
        source = _Arrivals(arrivals, eof)
        out = _Written()
        ok = await asyncio.wait_for(copy_body(source, BodyFramer(framing, length), _Sink(out, head)), 5)
        return ok, out.writes, bytes(source.buf)

    return asyncio.run(scenario())


def test_head_leaves_with_the_first_body_bytes_and_the_next_message_stays_buffered() -> None:
    ok, writes, rest = _copy(Framing.LENGTH, 10, [b"01234", b"56789GET / HTTP/1.1\r\n"], eof=False)
    assert ok and writes == [b"HEAD01234", b"56789"] and rest == b"GET / HTTP/1.1\r\n"


def test_a_stalled_chunk_line_sends_the_head_alone_first() -> None:
    ok, writes, _ = _copy(Framing.CHUNKED, 0, [b"5", b"\r\nhello\r\n0\r\n\r\n"], eof=False)
    assert ok and writes == [b"HEAD", b"5\r\nhello\r\n0\r\n\r\n"]


def test_end_of_input_ends_an_until_close_body_and_truncates_the_others() -> None:
    assert _copy(Framing.UNTIL_CLOSE, 0, [b"abc"], eof=True) == (True, [b"HEADabc"], b"")
    assert _copy(Framing.LENGTH, 10, [b"abc"], eof=True) == (False, [b"HEADabc"], b"")
    assert _copy(Framing.CHUNKED, 0, [b"5\r\nhe"], eof=True)[0] is False


def test_discarding_reads_exactly_the_body() -> None:
    async def scenario() -> tuple[bool, bytes]:
        source = Channel(asyncio.get_running_loop())
        source.data_received(b"3\r\nabc\r\n0\r\n\r\nNEXT")
        return await copy_body(source, BodyFramer(Framing.CHUNKED), DISCARD), bytes(source.buf)

    assert asyncio.run(scenario()) == (True, b"NEXT")
