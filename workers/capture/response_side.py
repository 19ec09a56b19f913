"""A client connection's response side: answers each transaction in request order, and records the responses.

The destination's responses go back unchanged. A mutating request reaches the destination whole only once Kafka
acknowledged its records (the request side holds its last bytes), so its response cannot come before that (see
docs/capture-format.md, "Durability").
"""

from __future__ import annotations

import logging
import time

from workers.capture.body import HeadFirst, copy_body
from workers.capture.buffered import Channel
from workers.capture.context import ConnectionContext
from workers.capture.http1 import BodyFramer, MalformedHttp, parse_response_head
from workers.capture.kafka_sink import Ticket
from workers.capture.recorder import ConnectionRecorder, MessageRecorder
from workers.capture.records import Kind
from workers.capture.responses import BAD_GATEWAY_CLOSE, UNAVAILABLE
from workers.capture.transaction import Handoff, Transaction
from workers.capture.upstream import Upstream

log = logging.getLogger("workers.capture.connection")


class _Relay(HeadFirst):
    """Response body pieces to the client, each recorded after it was written.

    One per connection, reset for each response: a response costs no object of its own here.
    """

    __slots__ = ("recorder", "sent")

    def __init__(self, client: Channel) -> None:
        super().__init__(client, None)
        self.recorder: MessageRecorder | None = None
        self.sent = 0

    async def piece(self, data: bytes) -> None:
        self.write(data)
        self.sent += len(data)
        recorder = self.recorder
        if recorder is not None and recorder.append(data):
            await recorder.emit_full()
        await self.channel.drain()


class ResponseSide:
    """Answers what the request side hands over, in order, until it hands over None or the connection must end."""

    __slots__ = ("_client", "_ctx", "_queue", "_recorder", "_sink", "conn_id", "segment_suppressed", "suppressed",
                 "upstream")

    def __init__(self, ctx: ConnectionContext, client: Channel, conn_id: str, recorder: ConnectionRecorder | None,
                 queue: Handoff) -> None:
        self._ctx = ctx
        self._client = client
        self.conn_id = conn_id
        self._recorder = recorder
        self._queue = queue
        self._sink = _Relay(client)
        # The destination connection of the latest transaction: once a transaction comes on another (the switch
        # moved the connection to the other side), this one carries no more responses and is closed.
        self.upstream: Upstream | None = None
        # Transactions not captured by rule, in all and before the current capture topic's segment (see
        # ConnectionRecorder.moved).
        self.suppressed = 0
        self.segment_suppressed = 0

    async def run(self) -> str | None:
        """Answer transactions in order; returns why the connection ended, or None when the requests ran out."""
        switch = self._ctx.switch
        while True:
            txn = await self._queue.get()
            if txn is None:
                return None
            try:
                recorder = self._recorder
                if recorder is not None:
                    route = txn.route
                    if route is not None and route.topic != recorder.topic:
                        # The first transaction on the other side of the switch: the earlier ones are all recorded.
                        await recorder.moved(route.topic, route.side, txn.seq,
                                             self.suppressed - self.segment_suppressed)
                        self.segment_suppressed = self.suppressed
                    if txn.recorder is None:
                        self.suppressed += 1
                upstream = txn.upstream
                if upstream is not self.upstream and upstream is not None:
                    if self.upstream is not None:
                        self.upstream.close()
                    self.upstream = upstream
                keep = await (self._relay(txn) if txn.local is None else self._send_local(txn.local))
            except ConnectionError:
                return "client gone"
            finally:
                self._ctx.metrics.in_flight -= 1
                if txn.write:
                    switch.settle(txn.ticket, txn.response_ticket)
                if txn.recorder is not None and txn.recorder.deferred:
                    await txn.recorder.flush()  # its response was not recorded: the request still is
            if not keep:
                return "closed after response"

    async def _send_local(self, response: bytes) -> bool:
        """A response the proxy made; False when it closes the connection."""
        await self._send(response, int(response[9:12]))
        return b"Connection: close" not in response

    async def _send(self, data: bytes, status: int) -> None:
        self._client.write(data)
        await self._client.drain()
        self._ctx.metrics.count_response(status, len(data))

    async def _relay(self, txn: Transaction) -> bool:
        """Return the destination's response unchanged; False when the connection must close after it."""
        assert txn.upstream is not None and txn.head is not None
        upstream, stream, client = txn.upstream, txn.upstream.stream, self._client
        recorder = None
        if self._recorder is not None and txn.recorder is not None:
            if txn.write:
                txn.response_ticket = Ticket()
            recorder = self._recorder.message(Kind.RESPONSE, txn.seq, {}, txn.response_ticket, False,
                                              self._recorder.topic)
        started = 0
        sent = 0
        limit = self._ctx.max_head_bytes
        try:
            while True:
                raw = await stream.read_head(limit)
                if raw is None:
                    raise ConnectionError("destination closed the connection before responding")
                started = started or time.time_ns()
                head = parse_response_head(raw, txn.head.method)
                if not head.interim:
                    break
                # 100 Continue and friends are not the answer: they pass at once.
                client.write(raw)
                sent += len(raw)
                if recorder is not None:
                    await recorder.add(raw)
        except (ConnectionError, MalformedHttp, OSError) as exc:
            upstream.close()
            return await self._failed(txn, recorder, started, sent, exc)
        if txn.wait_for_ack and txn.ticket is not None and txn.ticket.future is not None:
            began = time.perf_counter()
            await txn.ticket.future
            self._ctx.metrics.ack_wait.observe(time.perf_counter() - began)
        if recorder is not None and recorder.append(raw):
            await recorder.emit_full()
        relay = self._sink
        relay.head, relay.recorder, relay.sent = raw, recorder, sent + len(raw)
        complete = await copy_body(stream, BodyFramer(head.framing, head.length), relay)
        if relay.head is not None:
            relay.stalled()  # the head, with no body to go with it
        relay.recorder, sent = None, relay.sent
        if not complete:
            # The response is cut short: the client must see the connection end, not a truncation.
            upstream.close()
            await client.drain()
            return False
        await client.drain()
        self._ctx.metrics.count_response(head.status, sent)
        if recorder is not None:
            await recorder.finish(_timestamps(txn, started, head.status, sent), txn.recorder)
        if not head.keep_alive:
            upstream.close()
            return False
        return True

    async def _failed(self, txn: Transaction, recorder: MessageRecorder | None, started: int, sent: int,
                      exc: Exception) -> bool:
        """The destination failed before a final response head: answer 503 or 502 in its place."""
        metrics = self._ctx.metrics
        future = txn.ticket.future if txn.ticket is not None else None
        if txn.hold and self._ctx.reject_uncaptured and future is not None and future.done() and not future.result():
            # Reject mode: the request side held the request's last bytes back and closed the source's connection.
            metrics.rejected.labels(txn.method).inc()
            log.warning("%s: write refused with 503: Kafka did not acknowledge its capture", self.conn_id)
            await self._send(UNAVAILABLE, 503)
            return True
        if self._client.is_closing():
            # The request side closed the source's connection because the client went (or timed out) mid-request.
            raise ConnectionError("client gone")
        log.warning("%s: destination failed before responding: %s", self.conn_id, exc)
        metrics.upstream_errors.inc()
        await self._send(BAD_GATEWAY_CLOSE, 502)
        if recorder is not None:
            await recorder.add(BAD_GATEWAY_CLOSE)
            await recorder.finish(_timestamps(txn, started, 502, sent + len(BAD_GATEWAY_CLOSE),
                                              error=str(exc) or exc.__class__.__name__), txn.recorder)
        return False


def _timestamps(txn: Transaction, started: int, status: int, size: int, error: str | None = None) -> dict[str, object]:
    """The metadata of a response's last record."""
    meta: dict[str, object] = {
        "status": status, "received": txn.received_ns, "forwarded": txn.forwarded_ns,
        "response_started": started, "response_finished": time.time_ns(),
        "request_bytes": txn.recorder.size if txn.recorder else 0, "response_bytes": size,
    }
    if error:
        meta["error"] = error
    return meta
