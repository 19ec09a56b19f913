"""Moving one message body across the proxy: cut from the buffer piece by piece as it arrives, by its framing.

Requests forwarded, requests discarded and responses relayed all go through ``copy_body``; what each does with a
piece is its ``BodySink``.
"""

from __future__ import annotations

from typing import Protocol

from workers.capture.buffered import Channel
from workers.capture.http1 import BodyFramer


class BodySink(Protocol):
    """Where the pieces of a body go."""

    def stalled(self) -> None:
        """The buffered bytes do not complete the next piece (a partial chunk line): more must be awaited."""

    async def piece(self, data: bytes) -> None:
        """The next bytes of the body, in order."""


async def copy_body(source: Channel, framer: BodyFramer, sink: BodySink) -> bool:
    """Feed the body ``framer`` delimits from ``source`` to ``sink``; False when input ended before the body did.

    Each piece is whatever arrived, not a whole body: a large body passes through without being held whole.
    """
    while not framer.done:
        if not source.buf and not await source.fill():
            return framer.finish_at_eof()
        n = framer.feed(source.buf)
        if n == 0:
            sink.stalled()
            if not await source.fill():
                return framer.finish_at_eof()
            continue
        await sink.piece(source.take(n))
    return True


class HeadFirst:
    """Writes to a channel with a message's head held back until its first body bytes, to leave in one write.

    Peers (urllib3 among clients, and sources) often send a head and its body apart, and each write costs a
    system call and a wake-up of the other end. A sink that derives from this holds the head until its first piece,
    or until the body stalls, since the head must not wait on bytes that may be slow to come.
    """

    __slots__ = ("channel", "head")

    def __init__(self, channel: Channel, head: bytes | None) -> None:
        self.channel = channel
        self.head = head

    def write(self, data: bytes) -> None:
        """Write body bytes (after the head, in the same write, if it is still held)."""
        if self.head is not None:
            data = self.head + data
            self.head = None
        self.channel.write(data)

    def stalled(self) -> None:
        """Write the head if still held."""
        if self.head is not None:
            self.channel.write(self.head)
            self.head = None


class Discard:
    """A sink that drops the body: a request answered locally must still be read past to reach the next one."""

    __slots__ = ()

    def stalled(self) -> None:
        pass

    async def piece(self, data: bytes) -> None:
        pass


DISCARD = Discard()
