"""One client connection: requests forwarded as they arrive, responses returned in order, both recorded.

Two tasks share a queue of transactions: the request side reads, forwards and records each request; the response
side reads each response from the destination and returns it to the client unchanged. A mutating request's
response is held until Kafka acknowledged the request's records (see docs/capture-format.md, "Durability").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workers.capture.buffered import Channel, HeadTooLarge, release
from workers.capture.classify import changes_data
from workers.capture.http1 import BodyFramer, MalformedHttp, RequestHead, parse_request_head, parse_response_head
from workers.capture.kafka_sink import Ticket
from workers.capture.recorder import ConnectionRecorder, MessageRecorder
from workers.capture.records import Kind
from workers.capture.responses import BAD_GATEWAY, BAD_GATEWAY_CLOSE, BAD_REQUEST, HEAD_TOO_LARGE, UNAVAILABLE
from workers.capture.upstream import Upstream, connect

if TYPE_CHECKING:
    from workers.capture.server import ProxyServer

log = logging.getLogger("workers.capture.connection")


@dataclass(eq=False, slots=True)
class Transaction:
    """One request and, later, its response."""

    seq: int
    head: RequestHead | None
    received_ns: int
    upstream: Upstream | None = None
    recorder: MessageRecorder | None = None
    ticket: Ticket | None = None
    # The response is held until the request's records are acknowledged.
    wait_for_ack: bool = False
    # --on-capture-failure reject: the request's last bytes are held until the acknowledgement (or a 503).
    hold: bool = False
    local: bytes | None = None
    forwarded_ns: int = 0

    @property
    def method(self) -> str:
        """The request method ("" for a malformed request)."""
        return self.head.method if self.head else ""


class _Handoff:
    """Transactions from the request side to the response side, in order (None: no more will come).

    An asyncio.Queue would do, at the cost of a coroutine per put and more bookkeeping per get than a request's
    own framing; this queue is unbounded, the number of requests a client pipelines being its own business.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Transaction | None] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, txn: Transaction | None) -> None:
        self._items.append(txn)
        release(self._waiter)

    async def get(self) -> Transaction | None:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


class ClientConnection:
    """Serves one accepted connection until either side closes it."""

    def __init__(self, server: ProxyServer, channel: Channel, conn_id: str) -> None:
        self.server = server
        # One channel, two names: the request side reads the client, the response side writes to it.
        self.client = channel
        self.writer = channel
        self.conn_id = conn_id
        self.recorder = (ConnectionRecorder(server.sink, server.options.node_id, conn_id,
                                            server.options.max_record_bytes) if server.sink else None)
        self.queue = _Handoff()
        self.upstream: Upstream | None = None
        self.seq = 0
        self.pending = 0
        self.idle = False
        self.draining = False
        self._reader_task: asyncio.Task[None] | None = None
        # The latest mutating request's ticket: its records go through the urgent producer, and the close record
        # must not overtake them (docs/capture-format.md, "Producers").
        self.last_urgent: Ticket | None = None

    async def serve(self) -> None:
        """Run both sides until the connection ends; records the open and close events."""
        peer = self.writer.get_extra_info("peername")
        local = self.writer.get_extra_info("sockname")
        if self.recorder:
            await self.recorder.opened(_address(peer), _address(local), self.writer.get_extra_info("sslcontext")
                                       is not None)
        self._reader_task = asyncio.create_task(self._read_requests())
        reason = "closed"
        try:
            reason = await self._write_responses()
        finally:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
            if self.upstream:
                self.upstream.close()
            self.writer.close()
            if self.recorder:
                urgent = self.last_urgent
                if urgent is not None and urgent.sealed and urgent.future is not None and not urgent.future.done():
                    timeout = self.server.options.kafka.delivery_timeout_ms / 1000 if self.server.options.kafka else 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(urgent.future), timeout)
                await self.recorder.closed(reason, self.seq)

    def begin_drain(self) -> None:
        """Shutdown: finish what was received, then close; an idle connection closes now."""
        self.draining = True
        if self.idle and self._reader_task:
            self._reader_task.cancel()

    # The request side.

    async def _read_requests(self) -> None:
        options = self.server.options
        try:
            while not self.draining:
                self.idle = not self.client.buf
                try:
                    raw = await self.client.read_head(options.max_head_bytes, skip_empty_lines=True)
                except HeadTooLarge:
                    await self._refuse(HEAD_TOO_LARGE)
                    return
                except MalformedHttp:
                    await self._refuse(BAD_REQUEST)
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
                    await self._refuse(BAD_REQUEST)
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
            self.queue.put(None)

    async def _refuse(self, response: bytes) -> None:
        self.server.metrics.malformed.inc()
        self.seq += 1
        self.pending += 1
        self.server.metrics.in_flight += 1
        self.queue.put(Transaction(self.seq, None, time.time_ns(), local=response))

    async def _handle(self, head: RequestHead, received: int) -> None:
        server, metrics = self.server, self.server.metrics
        self.seq += 1
        self.pending += 1
        metrics.count_request(head.method)
        txn = Transaction(self.seq, head, received)
        mutating = changes_data(head.method, head.path, server.options.durable_read_posts)
        capture = self.recorder is not None
        if capture and server.options.suppression and server.options.suppression.matches(
                head.method, head.path, head.headers):
            metrics.suppressed.inc()
            capture = False
        reject = server.options.on_capture_failure == "reject"
        if capture and mutating and reject and server.sink is not None and not server.sink.healthy:
            metrics.rejected.labels(head.method).inc()
            txn.local = UNAVAILABLE
            self.queue.put(txn)
            await self._discard_body(head)
            return
        upstream = await self._upstream()
        if upstream is None:
            # The request never reached the source, so it is not recorded: a replay must not apply it.
            metrics.upstream_errors.inc()
            txn.local = BAD_GATEWAY
            self.queue.put(txn)
            await self._discard_body(head)
            return
        txn.upstream = upstream
        if capture and self.recorder is not None and server.sink is not None:
            future = asyncio.get_running_loop().create_future() if mutating else None
            txn.ticket = Ticket(future)
            if mutating:
                self.last_urgent = txn.ticket
            txn.hold = mutating and reject
            txn.wait_for_ack = mutating and not reject and server.sink.healthy
            if not txn.hold:
                method = head.method
                txn.ticket.on_done(lambda ok: None if ok else self._uncaptured(method))
            txn.recorder = self.recorder.message(
                Kind.REQUEST, txn.seq, {"received": received, "method": head.method,
                                        "target": head.target.decode("latin-1")}, txn.ticket, defer=not mutating)
        self.queue.put(txn)
        await self._forward(txn, head, upstream)

    def _uncaptured(self, method: str) -> None:
        self.server.metrics.uncaptured.labels(method).inc()
        self.server.uncaptured += 1
        now = time.monotonic()
        # While Kafka is down every request fails: one line per 10 s with the running count, not one per request.
        if now - self.server.uncaptured_logged >= 10.0:
            self.server.uncaptured_logged = now
            log.warning("%s: request not captured (Kafka did not acknowledge it), forwarded anyway; %d so far",
                        self.conn_id, self.server.uncaptured)

    async def _upstream(self) -> Upstream | None:
        if self.upstream is not None and self.upstream.usable:
            return self.upstream
        if self.upstream is not None:
            self.upstream.close()
        options = self.server.options
        try:
            self.upstream = await connect(options.destination, self.server.destination_ssl, options.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            log.warning("%s: destination %s:%d unreachable: %s", self.conn_id, options.destination.host,
                        options.destination.port, exc)
            self.upstream = None
        return self.upstream

    async def _forward(self, txn: Transaction, head: RequestHead, upstream: Upstream) -> None:
        """Send the request on as it arrives; with ``hold``, its last piece waits for the acknowledgement."""
        added = self.server.options.added_headers
        first = head.raw if not added else _with_headers(head.raw, added)
        recorder, writer = txn.recorder, upstream.writer
        if recorder and recorder.append(head.raw):
            await recorder.emit_full()
        framer = BodyFramer(head.framing, head.length)
        held: bytes | None = None
        prefix: bytes | None = None
        if framer.done and txn.hold:
            held = first  # the head is the whole request
        elif not framer.done and not txn.hold and not head.expect_continue:
            # The head waits for the first body bytes, to leave in one write: clients (urllib3 among them) often
            # send the head and the body apart, and each write to the source costs a system call and a wake-up.
            prefix = first
        else:
            # Sent at once: a client that sent Expect: 100-continue waits for the source's 100 before the body.
            writer.write(first)
        size = len(head.raw)
        while not framer.done:
            if not self.client.buf and not await self.client.fill():
                raise ConnectionError("client closed the connection inside a request body")
            n = framer.feed(self.client.buf)
            if n == 0:
                if prefix is not None:
                    writer.write(prefix)
                    prefix = None
                if not framer.done and not await self.client.fill():
                    raise ConnectionError("client closed the connection inside a request body")
                continue
            piece = self.client.take(n)
            size += n
            if recorder and recorder.append(piece):
                await recorder.emit_full()
            if txn.hold:
                if held is not None:
                    writer.write(held)
                held = piece
            elif prefix is not None:
                writer.write(prefix + piece)
                prefix = None
            else:
                writer.write(piece)
            await self._drain_upstream(writer)
        self.server.metrics.request_bytes += size
        if recorder:
            await recorder.finish()
        if txn.hold and txn.ticket is not None and txn.ticket.future is not None and not await txn.ticket.future:
            # The source has an incomplete request: closing the connection makes it drop it.
            upstream.close()
            return
        if held is not None:
            writer.write(held)
            await self._drain_upstream(writer)
        txn.forwarded_ns = time.time_ns()

    @staticmethod
    async def _drain_upstream(writer: Channel) -> None:
        # A failed write shows on the response side, which answers 502.
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    async def _discard_body(self, head: RequestHead) -> None:
        framer = BodyFramer(head.framing, head.length)
        while not framer.done:
            if not self.client.buf and not await self.client.fill():
                raise ConnectionError("client closed the connection inside a request body")
            n = framer.feed(self.client.buf)
            if n:
                self.client.take(n)
            elif not framer.done and not await self.client.fill():
                raise ConnectionError("client closed the connection inside a request body")

    # The response side.

    async def _write_responses(self) -> str:
        """Answer transactions in order; returns why the connection ended."""
        while True:
            txn = await self.queue.get()
            if txn is None:
                return "client closed" if not self.draining else "shutdown"
            try:
                keep = await self._answer(txn)
            except ConnectionError:
                return "client gone"
            finally:
                self.pending -= 1
                self.server.metrics.in_flight -= 1
                if txn.recorder is not None and txn.recorder.deferred:
                    await txn.recorder.flush()  # its response was not recorded: the request still is
            if not keep:
                return "closed after response"

    async def _answer(self, txn: Transaction) -> bool:
        if txn.local is not None:
            await self._send(txn.local, int(txn.local[9:12]))
            return b"Connection: close" not in txn.local
        return await self._relay(txn)

    async def _send(self, data: bytes, status: int) -> None:
        self.writer.write(data)
        await self.writer.drain()
        self.server.metrics.count_response(status, len(data))

    async def _relay(self, txn: Transaction) -> bool:
        """Return the destination's response unchanged; False when the connection must close after it."""
        assert txn.upstream is not None and txn.head is not None
        upstream, stream = txn.upstream, txn.upstream.stream
        recorder = (self.recorder.message(Kind.RESPONSE, txn.seq, {})
                    if self.recorder is not None and txn.recorder is not None else None)
        started = 0
        sent = 0
        limit = self.server.options.max_head_bytes
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
                self.writer.write(raw)
                sent += len(raw)
                if recorder:
                    await recorder.add(raw)
        except (ConnectionError, MalformedHttp, OSError) as exc:
            upstream.close()
            metrics = self.server.metrics
            future = txn.ticket.future if txn.ticket is not None else None
            if txn.hold and future is not None and future.done() and not future.result():
                # The request side held the request's last bytes back and closed the source's connection.
                metrics.rejected.labels(txn.method).inc()
                log.warning("%s: write refused with 503: Kafka did not acknowledge its capture", self.conn_id)
                await self._send(UNAVAILABLE, 503)
                return True
            log.warning("%s: destination failed before responding: %s", self.conn_id, exc)
            metrics.upstream_errors.inc()
            await self._send(BAD_GATEWAY_CLOSE, 502)
            if recorder:
                await recorder.add(BAD_GATEWAY_CLOSE)
                await recorder.finish(self._timestamps(txn, started, 502, sent + len(BAD_GATEWAY_CLOSE),
                                                       error=str(exc) or exc.__class__.__name__), txn.recorder)
            return False
        if txn.wait_for_ack and txn.ticket is not None and txn.ticket.future is not None:
            began = time.perf_counter()
            await txn.ticket.future
            self.server.metrics.ack_wait.observe(time.perf_counter() - began)
        sent += len(raw)
        if recorder and recorder.append(raw):
            await recorder.emit_full()
        # The head waits for the first body bytes, to leave in one write (sources often send them apart).
        prefix: bytes | None = raw
        framer = BodyFramer(head.framing, head.length)
        while not framer.done:
            if not stream.buf and not await stream.fill():
                if framer.finish_at_eof():
                    break
                # The response is cut short: the client must see the connection end, not a truncation.
                if prefix is not None:
                    self.writer.write(prefix)
                upstream.close()
                await self.writer.drain()
                return False
            n = framer.feed(stream.buf)
            if n == 0:
                if prefix is not None:
                    self.writer.write(prefix)
                    prefix = None
                if not framer.done and not await stream.fill() and not framer.finish_at_eof():
                    upstream.close()
                    return False
                continue
            piece = stream.take(n)
            self.writer.write(prefix + piece if prefix is not None else piece)
            prefix = None
            sent += n
            if recorder and recorder.append(piece):
                await recorder.emit_full()
            await self.writer.drain()
        if prefix is not None:
            self.writer.write(prefix)
        await self.writer.drain()
        self.server.metrics.count_response(head.status, sent)
        if recorder:
            await recorder.finish(self._timestamps(txn, started, head.status, sent), txn.recorder)
        if not head.keep_alive:
            upstream.close()
            return False
        return True

    @staticmethod
    def _timestamps(txn: Transaction, started: int, status: int, size: int, error: str | None = None) -> dict[
            str, object]:
        meta: dict[str, object] = {
            "status": status, "received": txn.received_ns, "forwarded": txn.forwarded_ns,
            "response_started": started, "response_finished": time.time_ns(),
            "request_bytes": txn.recorder.size if txn.recorder else 0, "response_bytes": size,
        }
        if error:
            meta["error"] = error
        return meta


def _with_headers(raw: bytes, added: tuple[bytes, ...]) -> bytes:
    """The head with extra header lines before its empty line."""
    return raw[:-2] + b"".join(added) + b"\r\n"


def _address(addr: object) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr)
