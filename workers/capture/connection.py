"""One client connection: requests forwarded as they arrive, responses returned in order, both recorded.

Two tasks share a queue of transactions: the request side (request_side.py) reads, forwards and records each
request; the response side (response_side.py) reads each response from the destination and returns it to the client
unchanged. This module runs both and records the connection's open and close events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from workers.capture.buffered import Channel
from workers.capture.context import ConnectionContext
from workers.capture.request_side import RequestSide
from workers.capture.response_side import ResponseSide
from workers.capture.transaction import Handoff

log = logging.getLogger("workers.capture.connection")


class ClientConnection:
    """Serves one accepted connection until either side closes it."""

    __slots__ = ("_ctx", "_queue", "_reader_task", "conn_id", "recorder", "requests", "responses", "writer")

    def __init__(self, ctx: ConnectionContext, channel: Channel, conn_id: str) -> None:
        self._ctx = ctx
        # The server aborts it when the connection outlasts the shutdown timeout.
        self.writer = channel
        self.conn_id = conn_id
        self.recorder = ctx.recorder(conn_id)
        queue = self._queue = Handoff()
        self.requests = RequestSide(ctx, channel, conn_id, self.recorder, queue)
        self.responses = ResponseSide(ctx, channel, conn_id, self.recorder, queue)
        self._reader_task: asyncio.Task[None] | None = None
        # The idle timeout runs only while nothing is being answered.
        channel.busy = queue.busy

    async def serve(self) -> None:
        """Run both sides until the connection ends; records the open and close events."""
        writer = self.writer
        if self.recorder:
            await self.recorder.opened(_address(writer.get_extra_info("peername")),
                                       _address(writer.get_extra_info("sockname")),
                                       writer.get_extra_info("sslcontext") is not None)
        self._reader_task = asyncio.create_task(self.requests.run())
        reason = "closed"
        try:
            # None: the requests ran out, because shutdown stopped reading them or because the client stopped.
            reason = await self.responses.run() or ("shutdown" if self.requests.draining else "client closed")
        finally:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
            for txn in self._queue.drain():
                if txn is not None and txn.write:
                    self._ctx.switch.finished()  # a write never answered: no longer in flight
            if self.requests.upstream:
                self.requests.upstream.close()
            if self.responses.upstream:
                self.responses.upstream.close()
            writer.close()
            if writer.timed_out is not None:
                reason = writer.timed_out
                self._ctx.metrics.timeouts.labels(reason.split()[0]).inc()
                limit = writer.timeouts[reason] if writer.timeouts else 0
                log.info("%s: closed: %s (%g s)", self.conn_id, reason, limit)
            if self.recorder:
                urgent = self.requests.last_urgent
                if urgent is not None and urgent.sealed and urgent.future is not None and not urgent.future.done():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(urgent.future), self._ctx.close_wait_s)
                await self.recorder.closed(reason, self.requests.seq,
                                           self.requests.suppressed - self.responses.segment_suppressed,
                                           self.requests.incomplete)

    def begin_drain(self) -> None:
        """Shutdown: finish what was received, then close; an idle connection closes now."""
        self.requests.draining = True
        if self.requests.idle and self._reader_task:
            self._reader_task.cancel()


def _address(addr: object) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr)
