"""A request body's way through the proxy: on to the destination as it arrives, recorded on the way, or read past
when the proxy answers the request itself."""

from __future__ import annotations

import contextlib
import time

from workers.capture.body import DISCARD, HeadFirst, copy_body
from workers.capture.buffered import Channel
from workers.capture.http1 import BodyFramer, RequestHead
from workers.capture.metrics import ProxyMetrics
from workers.capture.recorder import MessageRecorder
from workers.capture.transaction import Transaction
from workers.capture.upstream import Upstream

# A request body never ends with the connection (http1 refuses until-close framing for requests).
CUT_SHORT = "client closed the connection inside a request body"


class Forwarder(HeadFirst):
    """Sends one client's requests on to one destination connection, each piece recorded before it leaves.

    Made when the connection to the destination is, and reset for each request: a request costs no object here.
    """

    __slots__ = ("_added_headers", "_client", "_metrics", "held", "hold", "recorder", "size", "upstream")

    def __init__(self, client: Channel, upstream: Upstream, added_headers: tuple[bytes, ...],
                 metrics: ProxyMetrics) -> None:
        super().__init__(upstream.writer, None)
        self._client = client
        self.upstream = upstream
        self._added_headers = added_headers
        self._metrics = metrics
        self.recorder: MessageRecorder | None = None
        self.hold = False
        self.held: bytes | None = None
        self.size = 0

    async def forward(self, txn: Transaction, head: RequestHead, reject: bool) -> None:
        """Send the request on as it arrives; with ``txn.hold``, its last piece waits for the acknowledgement.

        A write whose capture Kafka did not acknowledge is dropped with ``reject`` (the response side answers 503),
        else completed anyway (the request side counted it). ConnectionError when the client closes inside the
        body; MalformedHttp for a malformed chunked body.
        """
        added = self._added_headers
        first = head.raw if not added else with_headers(head.raw, added)
        recorder, writer = txn.recorder, self.channel
        if recorder is not None and recorder.append(head.raw):
            await recorder.emit_full()
        framer = BodyFramer(head.framing, head.length)
        if framer.done:
            held = first if txn.hold else None  # the head is the whole request
            if held is None:
                writer.write(first)
            size = len(head.raw)
        else:
            # A client that sent Expect: 100-continue waits for the source's 100 before the body: its head goes
            # at once. Any other head leaves with the first body bytes that do, so that a small held request
            # leaves whole, in one write, once acknowledged.
            self.head = None if head.expect_continue else first
            if self.head is None:
                writer.write(first)
            self.recorder, self.hold, self.held, self.size = recorder, txn.hold, None, 0
            if not await copy_body(self._client, framer, self):
                raise ConnectionError(CUT_SHORT)
            held, self.held, self.recorder = self.held, None, None
            size = len(head.raw) + self.size
        self._metrics.request_bytes += size
        if recorder is not None:
            await recorder.finish()
        if txn.hold and txn.ticket is not None and txn.ticket.future is not None:
            began = time.perf_counter()
            acknowledged = await txn.ticket.future
            self._metrics.ack_wait.observe(time.perf_counter() - began)
            if not acknowledged and reject:
                # The source has an incomplete request (or none): closing the connection makes it drop it.
                self.head = None
                self.upstream.close()
                return
        if held is not None:
            self.write(held)  # with the head, if it is still held
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        txn.forwarded_ns = time.time_ns()

    async def piece(self, data: bytes) -> None:
        self.size += len(data)
        recorder = self.recorder
        if recorder is not None and recorder.append(data):
            await recorder.emit_full()
        if self.hold:
            # Until the body is complete no piece is known to be the last, so the latest one always waits.
            if self.held is not None:
                self.write(self.held)
            self.held = data
        else:
            self.write(data)
        # A failed write shows on the response side, which answers 502.
        with contextlib.suppress(ConnectionError):
            await self.channel.drain()


async def discard_body(client: Channel, head: RequestHead) -> None:
    """Read past the body of a request answered without the destination, to reach the next request."""
    if not await copy_body(client, BodyFramer(head.framing, head.length), DISCARD):
        raise ConnectionError(CUT_SHORT)


def with_headers(raw: bytes, added: tuple[bytes, ...]) -> bytes:
    """The head with extra header lines before its empty line."""
    return raw[:-2] + b"".join(added) + b"\r\n"

