"""One TCP (or TLS) connection as the proxy uses it: received bytes kept until consumed, writes with flow control.

A protocol, not asyncio's streams: received bytes go straight into the buffer the HTTP framing cuts messages from
(a StreamReader copies them twice more on their way there), and a reader waits on a future only when the buffer
holds nothing new. Per request, asyncio's streams cost more Python than the proxy's own work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from workers.capture.http1 import HEAD_END, MalformedHttp

# Reading pauses while this many received bytes wait to be consumed (a slow destination or Kafka), and resumes when
# the consumer asks for more: memory per connection stays bounded whatever the peer sends.
HIGH_WATER = 2 << 20

# Why a client connection timed out (the close record's reason, docs/capture-format.md).
IDLE_TIMEOUT = "idle timeout"
HEADER_TIMEOUT = "header timeout"
BODY_TIMEOUT = "body timeout"
# A timer firing this close before its deadline counts as on time (the loop's clock has millisecond steps).
_SLACK = 0.005


class ReadTimeout(TimeoutError):
    """The peer kept the proxy waiting longer than a limit allows; the message is the limit's reason."""


def release(waiter: asyncio.Future[None] | None) -> None:
    """Wake whoever awaits ``waiter`` (if anyone still does)."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class HeadTooLarge(MalformedHttp):
    """A head exceeded the size limit before its empty line."""


class Channel(asyncio.Protocol):
    """Bytes received and not yet consumed live in ``buf``; ``write`` and ``drain`` send with back-pressure.

    With ``timeouts`` (seconds by reason, 0 for no limit: a client connection), a read that waits too long ends
    the connection: ``IDLE_TIMEOUT`` while no request is on its way (``busy`` tells whether a response still is:
    the idle clock starts at the last byte written), ``HEADER_TIMEOUT`` from a head's first byte to its end,
    ``BODY_TIMEOUT`` between two pieces of a body. Each wait stores a deadline; one timer per connection, re-armed
    only when it fires or a deadline comes earlier than it, checks them: a request costs no timer of its own.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, on_open: Callable[[Channel], None] | None = None,
                 timeouts: dict[str, float] | None = None) -> None:
        self.buf = bytearray()
        self.eof = False
        self.transport: asyncio.Transport | None = None
        self._loop = loop
        self._on_open = on_open
        self._waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._lost = False
        self._error: BaseException | None = None
        self._over_tls = False
        self.timeouts = timeouts
        # Set when a timeout ended the connection: its reason.
        self.timed_out: str | None = None
        # True while a request is still being answered (the idle clock waits for its response).
        self.busy: Callable[[], bool] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        # While a read waits: when it times out, and why (0: no read waits, or no limit).
        self._deadline = 0.0
        self._why = ""
        self._written = 0.0

    # asyncio.Protocol callbacks.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without deriving from it.
        self.transport = cast(asyncio.Transport, transport)
        self._over_tls = self.transport.get_extra_info("sslcontext") is not None
        if self._on_open is not None:
            self._on_open(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        release(self._waiter)

    def eof_received(self) -> bool:
        self.eof = True
        release(self._waiter)
        # A client that half-closes after its request still gets the response (TLS cannot half-close).
        return not self._over_tls

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self._lost = True
        self._error = self._error or exc
        release(self._waiter)
        waiter, self._drain_waiter = self._drain_waiter, None
        release(waiter)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        release(waiter)

    # Reading.

    async def fill(self, why: str = BODY_TIMEOUT, since: float = 0.0) -> bool:
        """Wait for more bytes in the buffer; False at end of input (every byte received is already in it).

        With timeouts, the wait may last the limit of ``why`` from ``since`` (loop time; 0: now), else ReadTimeout.
        """
        if self._error is not None:
            raise self._error
        if self.eof:
            return False
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        size = len(self.buf)
        while len(self.buf) == size and not self.eof:
            if self.timeouts is not None:
                self._arm(why, since)
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
                self._deadline = 0.0
        if len(self.buf) == size and self._error is not None:
            raise self._error
        return len(self.buf) > size

    # Timeouts.

    def _arm(self, why: str, since: float) -> None:
        """Set the waiting read's deadline; the timer moves only when the deadline comes before it."""
        assert self.timeouts is not None
        limit = self.timeouts[why]
        if not limit:
            return
        deadline = (since or self._loop.time()) + limit
        self._why, self._deadline = why, deadline
        if self._timer is None or deadline < self._timer_at:
            self._start_timer(deadline)

    def _start_timer(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        """The timer: end the connection if the waiting read is past its deadline, else wait for the deadline."""
        self._timer = None
        deadline, why, timeouts = self._deadline, self._why, self.timeouts
        if not deadline or self._lost or timeouts is None:
            return  # no read waits: the next wait starts the timer again
        now = self._loop.time()
        if why == IDLE_TIMEOUT:
            if self.busy is not None and self.busy():
                # A response is still on its way: look again one period later (its last write restarts the clock).
                self._start_timer(now + timeouts[why])
                return
            deadline = self._deadline = max(deadline, self._written + timeouts[why])
        if now < deadline - _SLACK:
            self._start_timer(deadline)
            return
        self.timed_out = why
        self._error = ReadTimeout(why)
        self.eof = True
        if why == IDLE_TIMEOUT:
            self.close()
        else:
            # Inside a request: no response may follow it (nor one still on its way to the client).
            self._lost = True
            self.abort()
        release(self._waiter)

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
        started = 0.0
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
            if self.timeouts is None:
                more = await self.fill()
            elif self.buf:
                # From the head's first byte to its end (a head sent a byte at a time must not last for ever).
                started = started or self._loop.time()
                more = await self.fill(HEADER_TIMEOUT, started)
            else:
                more = await self.fill(IDLE_TIMEOUT)
            if not more:
                if self.buf.strip():
                    raise MalformedHttp("connection closed inside a head")
                return None

    # Writing.

    def write(self, data: bytes) -> None:
        """Queue bytes for sending (the transport sends at once what the socket takes).

        Bytes for a connection that is closed or closing are dropped, as asyncio's own transports do (uvloop's
        raise instead); ``drain`` reports the loss.
        """
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)
            if self.timeouts is not None:
                self._written = self._loop.time()

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark; ConnectionError once it is lost."""
        if self._lost:
            raise ConnectionResetError("connection lost")
        if not self._writing_paused:
            return
        self._drain_waiter = self._loop.create_future()
        await self._drain_waiter
        if self._lost:
            raise ConnectionResetError("connection lost")

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The transport's ``get_extra_info`` (peername, sockname, socket, sslcontext, ...)."""
        return self.transport.get_extra_info(name, default) if self.transport is not None else default

    def is_closing(self) -> bool:
        """True once the connection is closed or closing."""
        return self._lost or self.transport is None or self.transport.is_closing()

    def close(self) -> None:
        """Close after the queued bytes are sent."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        """Close at once; queued bytes are dropped."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()
