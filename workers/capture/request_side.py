"""A client connection's request side: reads each request, decides how it is captured, and forwards it.

Every request, forwarded or answered locally, becomes a Transaction handed to the response side in order.
"""

from __future__ import annotations

import asyncio
import logging
import time

from workers.capture.buffered import Channel, HeadTooLarge, ReadTimeout
from workers.capture.classify import changes_data
from workers.capture.context import ConnectionContext
from workers.capture.forward import Forwarder, discard_body
from workers.capture.http1 import Framing, MalformedHttp, RequestHead, parse_request_head
from workers.capture.kafka_sink import Ticket
from workers.capture.recorder import ConnectionRecorder
from workers.capture.records import Kind
from workers.capture.responses import BAD_GATEWAY, BAD_REQUEST, HEAD_TOO_LARGE, UNAVAILABLE
from workers.capture.switch import Route, is_write
from workers.capture.transaction import Handoff, Transaction
from workers.capture.upstream import Upstream, connect

log = logging.getLogger("workers.capture.connection")


class RequestSide:
    """Reads requests until the client stops, a request ends the connection, or shutdown (``draining``)."""

    __slots__ = ("_client", "_ctx", "_forwarder", "_queue", "_recorder", "_route", "_unreachable", "conn_id",
                 "draining", "idle", "incomplete", "last_urgent", "seq", "suppressed")

    def __init__(self, ctx: ConnectionContext, client: Channel, conn_id: str, recorder: ConnectionRecorder | None,
                 queue: Handoff) -> None:
        self._ctx = ctx
        self._client = client
        self.conn_id = conn_id
        self._recorder = recorder
        self._queue = queue
        # The sequence number of the latest request (the close record reports it), how many requests a suppression
        # rule kept out of the capture, and the request cut short (its bytes did not all arrive), if any.
        self.seq = 0
        self.suppressed = 0
        self.incomplete = 0
        # Why the destination could not be reached, for the record of the 502 that answers it.
        self._unreachable = ""
        # True while waiting for a request with nothing of one received: shutdown may cancel the wait.
        self.idle = False
        self.draining = False
        # Bound to the destination connection, reused while it lasts (the response side reads from it too).
        self._forwarder: Forwarder | None = None
        # The side (workers.capture.switch) the destination connection is to.
        self._route: Route | None = None
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
                except HeadTooLarge as exc:
                    self._refuse(HEAD_TOO_LARGE, "head too large", client.buf, exc)
                    return
                except MalformedHttp as exc:
                    self._refuse(BAD_REQUEST, "malformed", client.buf, exc)
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
                    self._refuse(BAD_REQUEST, "malformed", raw, exc)
                    return
                try:
                    await self._handle(head, received)
                except BaseException:
                    self.incomplete = self.seq  # the close record tells why this request's records stop short
                    raise
                if not head.keep_alive:
                    return
        except (OSError, MalformedHttp) as exc:
            # A request cut short or malformed inside its body: the source holds a partial request, and
            # closing its connection makes the response side answer 502 and end.
            if not isinstance(exc, ReadTimeout):  # the connection logs its timeouts
                log.info("%s: request side ended: %s", self.conn_id, exc)
            if self.upstream is not None:
                self.upstream.close()
        finally:
            self._queue.put(None)

    def _refuse(self, response: bytes, cause: str, received: bytes | bytearray, exc: Exception) -> None:
        """Answer a malformed request (and close): recorded with the head bytes received, up to the head limit."""
        metrics = self._ctx.metrics
        metrics.malformed.inc()
        self.seq += 1
        metrics.in_flight += 1
        txn = Transaction(self.seq, None, time.time_ns(), local=response, route=self._ctx.switch.route)
        if self._recorder is not None:
            limit = self._ctx.max_head_bytes
            self._record_local(txn, cause, bytes(received[:limit]), len(received) > limit, str(exc))
        self._queue.put(txn)

    def _record_local(self, txn: Transaction, cause: str, request: bytes, truncated: bool, error: str = "") -> None:
        """Give a request the proxy answers itself (``txn.local``) its record: it is produced once the answer is sent.

        The source never sees such a request, so it is a record of its own kind (LOCAL), which a replay skips.
        """
        assert self._recorder is not None and txn.local is not None
        meta: dict[str, object] = {"received": txn.received_ns, "status": int(txn.local[9:12]), "cause": cause}
        if txn.head is not None:
            meta["method"], meta["target"] = txn.head.method, txn.head.target.decode("latin-1")
        if error:
            meta["error"] = error
        txn.recorder = self._recorder.answered(txn.seq, meta, request, txn.local, truncated,
                                               txn.route.topic if txn.route is not None else None)

    async def _handle(self, head: RequestHead, received: int) -> None:
        ctx = self._ctx
        metrics = ctx.metrics
        self.seq += 1
        metrics.count_request(head.method)
        switch = ctx.switch
        route = switch.route
        txn = Transaction(self.seq, head, received, route=route)
        mutating = changes_data(head.method, head.path, ctx.durable_read_posts)
        capture = self._recorder is not None
        if capture and ctx.suppression and ctx.suppression.matches(head.method, head.path, head.headers):
            metrics.suppressed.inc()
            self.suppressed += 1
            capture = False
        reject = ctx.reject_uncaptured
        if capture and mutating and reject and ctx.sink is not None and not ctx.sink.healthy:
            metrics.rejected.labels(head.method).inc()
            txn.local = UNAVAILABLE
            # Recorded with its head (the body is read past, not kept): the client sent it, the source never saw it.
            self._record_local(txn, "capture unavailable", head.raw, head.framing is not Framing.NONE)
            self._queue.put(txn)
            await discard_body(self._client, head)
            return
        if mutating and (not ctx.durable_read_posts or is_write(head.method, head.path)):
            # The switch: a write waits while writes are paused, and goes to the side current when it is admitted;
            # it counts as in flight until answered and captured (the response side settles it).
            if switch.paused:
                txn.route = route = await switch.hold()
            else:
                switch.in_flight += 1
            txn.write = True
        forwarder = self._forwarder
        if forwarder is None or route is not self._route or not forwarder.upstream.usable:
            try:
                forwarder = await self._reconnect(route)
            except BaseException:
                if txn.write:
                    switch.finished()
                raise
        if forwarder is None:
            # The request never reached the source: recorded as answered by the proxy, which a replay skips.
            metrics.upstream_errors.inc()
            txn.local = BAD_GATEWAY
            if capture:
                self._record_local(txn, "destination unreachable", head.raw, head.framing is not Framing.NONE,
                                   self._unreachable)
            self._queue.put(txn)
            await discard_body(self._client, head)
            return
        txn.upstream = forwarder.upstream
        if capture and self._recorder is not None and ctx.sink is not None:
            future = asyncio.get_running_loop().create_future() if mutating else None
            txn.ticket = Ticket(future)
            if mutating:
                self.last_urgent = txn.ticket
            # Release-after-ack: a write's last bytes reach the source only once Kafka acknowledged its capture, so
            # that no crash of the proxy leaves the source with a write Kafka lacks. While Kafka is known to be
            # unreachable, forward mode forwards at once (and counts what is not captured); reject mode holds,
            # and answers 503 when the acknowledgement fails (docs/capture-format.md, "Durability").
            healthy = ctx.sink.healthy
            txn.hold = mutating and (reject or (healthy and ctx.release_after_ack))
            # Only with the bench's forward-before-ack: the write is at the source, its response waits instead.
            txn.wait_for_ack = mutating and healthy and not txn.hold
            if not (txn.hold and reject):
                method, conn_id, uncaptured = head.method, self.conn_id, ctx.uncaptured
                txn.ticket.on_done(lambda ok: None if ok else uncaptured.report(method, conn_id))
            txn.recorder = self._recorder.message(
                Kind.REQUEST, txn.seq, {"received": received, "method": head.method,
                                        "target": head.target.decode("latin-1")}, txn.ticket, not mutating,
                route.topic)
        self._queue.put(txn)
        await forwarder.forward(txn, head, reject)

    async def _reconnect(self, route: Route) -> Forwarder | None:
        """A forwarder on a new connection to ``route``'s destination, the old one closed (None if the destination
        is unreachable).

        Called only when there is no usable connection to the side the request is on: the common case, reuse,
        costs no coroutine.
        """
        if self._forwarder is not None:
            if route is self._route:
                self._forwarder.upstream.close()
            # Else the switch moved the connection to the other side: the former side's connection may still carry
            # the responses of earlier requests; the response side closes it once done with it.
            self._forwarder = None
        self._route = route
        ctx = self._ctx
        destination = route.destination
        try:
            upstream = await connect(destination, route.ssl, ctx.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            log.warning("%s: destination %s:%d unreachable: %s", self.conn_id, destination.host,
                        destination.port, exc)
            self._unreachable = str(exc) or exc.__class__.__name__
            return None
        self._forwarder = Forwarder(self._client, upstream, ctx.added_headers, ctx.metrics)
        return self._forwarder
