"""A client connection's request side: reads each request, decides how it is captured, and forwards it.

Every request, forwarded or answered locally, becomes a Transaction handed to the response side in order.
"""

from __future__ import annotations

import asyncio
import logging
import time

from workers.capture.buffered import Channel, HeadTooLarge
from workers.capture.classify import changes_data
from workers.capture.context import ConnectionContext
from workers.capture.forward import Forwarder, discard_body
from workers.capture.http1 import MalformedHttp, RequestHead, parse_request_head
from workers.capture.kafka_sink import Ticket
from workers.capture.recorder import ConnectionRecorder
from workers.capture.records import Kind
from workers.capture.responses import BAD_GATEWAY, BAD_REQUEST, HEAD_TOO_LARGE, UNAVAILABLE
from workers.capture.transaction import Handoff, Transaction
from workers.capture.upstream import Upstream, connect

log = logging.getLogger("workers.capture.connection")


class RequestSide:
    """Reads requests until the client stops, a request ends the connection, or shutdown (``draining``)."""

    __slots__ = ("_client", "_ctx", "_forwarder", "_queue", "_recorder", "conn_id", "draining", "idle",
                 "last_urgent", "seq")

    def __init__(self, ctx: ConnectionContext, client: Channel, conn_id: str, recorder: ConnectionRecorder | None,
                 queue: Handoff) -> None:
        self._ctx = ctx
        self._client = client
        self.conn_id = conn_id
        self._recorder = recorder
        self._queue = queue
        # The sequence number of the latest request (the close record reports it).
        self.seq = 0
        # True while waiting for a request with nothing of one received: shutdown may cancel the wait.
        self.idle = False
        self.draining = False
        # Bound to the destination connection, reused while it lasts (the response side reads from it too).
        self._forwarder: Forwarder | None = None
        # The latest mutating request's ticket: its records go through the urgent producer, and the close record
        # must not overtake them (docs/capture-format.md, "Producers").
        self.last_urgent: Ticket | None = None

    @property
    def upstream(self) -> Upstream | None:
        """The current destination connection, if any."""
        return self._forwarder.upstream if self._forwarder is not None else None

    async def run(self) -> None:
        """Serve requests; always tells the response side (a None) that no more will come."""
        client = self._client
        try:
            while not self.draining:
                self.idle = not client.buf
                try:
                    raw = await client.read_head(self._ctx.max_head_bytes, skip_empty_lines=True)
                except HeadTooLarge:
                    self._refuse(HEAD_TOO_LARGE)
                    return
                except MalformedHttp:
                    self._refuse(BAD_REQUEST)
                    return
                finally:
                    self.idle = False
                if raw is None:
                    return
                received = time.time_ns()
                try:
                    head = parse_request_head(raw)
                except MalformedHttp as exc:
                    log.info("%s: malformed request: %s", self.conn_id, exc)
                    self._refuse(BAD_REQUEST)
                    return
                await self._handle(head, received)
                if not head.keep_alive:
                    return
        except (OSError, MalformedHttp) as exc:
            # A request cut short or malformed inside its body: the source holds a partial request, and
            # closing its connection makes the response side answer 502 and end.
            log.info("%s: request side ended: %s", self.conn_id, exc)
            if self.upstream is not None:
                self.upstream.close()
        finally:
            self._queue.put(None)

    def _refuse(self, response: bytes) -> None:
        metrics = self._ctx.metrics
        metrics.malformed.inc()
        self.seq += 1
        metrics.in_flight += 1
        self._queue.put(Transaction(self.seq, None, time.time_ns(), local=response))

    async def _handle(self, head: RequestHead, received: int) -> None:
        ctx = self._ctx
        metrics = ctx.metrics
        self.seq += 1
        metrics.count_request(head.method)
        txn = Transaction(self.seq, head, received)
        mutating = changes_data(head.method, head.path, ctx.durable_read_posts)
        capture = self._recorder is not None
        if capture and ctx.suppression and ctx.suppression.matches(head.method, head.path, head.headers):
            metrics.suppressed.inc()
            capture = False
        reject = ctx.reject_uncaptured
        if capture and mutating and reject and ctx.sink is not None and not ctx.sink.healthy:
            metrics.rejected.labels(head.method).inc()
            txn.local = UNAVAILABLE
            self._queue.put(txn)
            await discard_body(self._client, head)
            return
        forwarder = self._forwarder
        if forwarder is None or not forwarder.upstream.usable:
            forwarder = await self._reconnect()
        if forwarder is None:
            # The request never reached the source, so it is not recorded: a replay must not apply it.
            metrics.upstream_errors.inc()
            txn.local = BAD_GATEWAY
            self._queue.put(txn)
            await discard_body(self._client, head)
            return
        txn.upstream = forwarder.upstream
        if capture and self._recorder is not None and ctx.sink is not None:
            future = asyncio.get_running_loop().create_future() if mutating else None
            txn.ticket = Ticket(future)
            if mutating:
                self.last_urgent = txn.ticket
            txn.hold = mutating and reject
            txn.wait_for_ack = mutating and not reject and ctx.sink.healthy
            if not txn.hold:
                method, conn_id, uncaptured = head.method, self.conn_id, ctx.uncaptured
                txn.ticket.on_done(lambda ok: None if ok else uncaptured.report(method, conn_id))
            txn.recorder = self._recorder.message(
                Kind.REQUEST, txn.seq, {"received": received, "method": head.method,
                                        "target": head.target.decode("latin-1")}, txn.ticket, defer=not mutating)
        self._queue.put(txn)
        await forwarder.forward(txn, head)

    async def _reconnect(self) -> Forwarder | None:
        """A forwarder on a new destination connection, the old one closed (None if the destination is unreachable).

        Called only when there is no usable connection: the common case, reuse, costs no coroutine.
        """
        if self._forwarder is not None:
            self._forwarder.upstream.close()
            self._forwarder = None
        ctx = self._ctx
        try:
            upstream = await connect(ctx.destination, ctx.destination_ssl, ctx.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            log.warning("%s: destination %s:%d unreachable: %s", self.conn_id, ctx.destination.host,
                        ctx.destination.port, exc)
            return None
        self._forwarder = Forwarder(self._client, upstream, ctx.added_headers, ctx.metrics)
        return self._forwarder
