"""Turns one connection's events and message bytes into capture records, split to the record size limit."""

from __future__ import annotations

import time
from typing import Any

import orjson

from workers.capture.kafka_sink import KafkaSink, Ticket
from workers.capture.records import METADATA_ROOM, Kind, encode


class ConnectionRecorder:
    """The records of one client connection; every one is keyed by the connection id.

    Its events go to ``topic``, the capture topic of the side (workers.capture.switch) its transactions are on;
    when they move to the other side, ``moved`` closes the connection's records in the former topic and opens them
    in the new one (a segment), so that each topic holds whole transactions and a consistent count of them.
    """

    __slots__ = ("_base", "_key", "_opened", "conn_id", "part_size", "sink", "topic")

    def __init__(self, sink: KafkaSink, node_id: str, conn_id: str, max_record_bytes: int,
                 topic: str | None = None) -> None:
        self.sink = sink
        self.conn_id = conn_id
        self._key = conn_id.encode()
        self._base: dict[str, Any] = {"node": node_id, "conn": conn_id}
        self.part_size = max_record_bytes - METADATA_ROOM
        self.topic = topic
        self._opened: dict[str, Any] = {}

    async def opened(self, client: str, listener: str, tls: bool) -> None:
        """The connection-open event."""
        self._opened = {"client": client, "listener": listener, "tls": tls}
        meta = {**self._base, "t": time.time_ns(), **self._opened}
        await self.sink.produce(self._key, encode(Kind.OPEN, meta), None, topic=self.topic)

    async def closed(self, reason: str, requests: int, suppressed: int = 0, incomplete: int = 0) -> None:
        """The connection-close event: the last ``seq``, how many went unrecorded by rule, the one cut short."""
        meta = {**self._base, "t": time.time_ns(), "reason": reason, "requests": requests, "suppressed": suppressed}
        if incomplete:
            meta["incomplete"] = incomplete
        await self.sink.produce(self._key, encode(Kind.CLOSE, meta), None, topic=self.topic)

    async def moved(self, topic: str | None, side: str, first_seq: int, suppressed: int) -> None:
        """The connection's transactions from ``first_seq`` on are captured to ``topic``: a close record in the
        current topic (reason "switched to SIDE"; ``suppressed`` in this segment), an open record with
        ``first_seq`` in the new one."""
        await self.closed(f"switched to {side}", first_seq - 1, suppressed)
        self.topic = topic
        meta = {**self._base, "t": time.time_ns(), **self._opened, "first_seq": first_seq, "side": side}
        await self.sink.produce(self._key, encode(Kind.OPEN, meta), None, topic=topic)

    def answered(self, seq: int, meta: dict[str, Any], request: bytes, response: bytes,
                 truncated: bool = False, topic: str | None = None) -> LocalRecorder:
        """The recorder of a request the proxy answers itself (``meta``: its status, cause, ...), see LocalRecorder."""
        return LocalRecorder(self, seq, meta, request, response, truncated, topic)

    def message(self, kind: Kind, seq: int, first: dict[str, Any], ticket: Ticket | None = None,
                defer: bool = False, topic: str | None = None) -> MessageRecorder:
        """A recorder for one request or response; ``first`` goes into the metadata of its first part; its records
        go to ``topic`` (None: the proxy's topic).

        With ``defer``, a request that fits in one record waits for its response, so that a small read costs one
        Kafka record (kind TRANSACTION) instead of two.
        """
        return MessageRecorder(self, kind, seq, first, ticket, defer, topic)


class MessageRecorder:
    """Collects one message's bytes and produces a record each time a part is full, then the last part."""

    __slots__ = ("_buf", "_conn", "_defer", "_first", "_kind", "_offset", "_part", "deferred", "seq", "size",
                 "ticket", "topic")

    def __init__(self, conn: ConnectionRecorder, kind: Kind, seq: int, first: dict[str, Any],
                 ticket: Ticket | None, defer: bool = False, topic: str | None = None) -> None:
        self._conn = conn
        self.topic = topic
        self._kind = kind
        self.seq = seq
        self._first: dict[str, Any] | None = first
        self.ticket = ticket
        self._buf = bytearray()
        self._part = 0
        self._offset = 0
        self._defer = defer
        # True while a finished message waits to be combined with its response (see ``message``).
        self.deferred = False
        self.size = 0

    def append(self, data: bytes) -> bool:
        """Append message bytes; True when a full part is due: then ``await emit_full()`` before more bytes.

        Split from ``add`` because most messages fit in one part: the common case then costs no coroutine.
        """
        self._buf += data
        self.size += len(data)
        return len(self._buf) > self._conn.part_size

    async def emit_full(self) -> None:
        """Produce every full part, so that a large body is never held whole."""
        limit = self._conn.part_size
        while len(self._buf) > limit:
            chunk = bytes(self._buf[:limit])
            del self._buf[:limit]
            await self._emit(chunk, False, None)

    async def add(self, data: bytes) -> None:
        """Append message bytes; full parts go to Kafka at once."""
        if self.append(data):
            await self.emit_full()

    async def finish(self, last: dict[str, Any] | None = None, request: MessageRecorder | None = None) -> None:
        """Produce the last part (``last`` goes into its metadata) and seal the message's ticket.

        For a response, ``request`` is its request's recorder: a deferred request is combined with the response
        into one TRANSACTION record when both fit, else produced first.
        """
        if self._defer and self._part == 0:
            self.deferred = True
            return
        if request is not None and request.deferred:
            room = self._conn.part_size
            if self._part == 0 and len(request._buf) + len(self._buf) <= room:
                await request._combine(self._buf, last or {})
                self._buf.clear()
                return
            await request.flush()
        chunk = bytes(self._buf)
        self._buf.clear()
        await self._emit(chunk, True, last)
        if self.ticket is not None:
            self.ticket.seal()

    async def flush(self) -> None:
        """Produce a deferred message on its own (its response will not come, or does not fit with it)."""
        if self.deferred:
            self.deferred = False
            self._defer = False
            await self.finish()

    async def _combine(self, response: bytearray, last: dict[str, Any]) -> None:
        meta: dict[str, Any] = {**self._conn._base, "seq": self.seq, **(self._first or {}), **last}
        self._first = None
        self.deferred = False
        self._buf += response
        value = encode(Kind.TRANSACTION, meta, self._buf)
        self._buf.clear()
        sink = self._conn.sink
        if sink.has_room(len(value)):
            sink.enqueue(self._conn._key, value, self.ticket, False, self.topic)
        else:
            await sink.produce(self._conn._key, value, self.ticket, False, self.topic)
        if self.ticket is not None:
            self.ticket.seal()

    async def _emit(self, chunk: bytes, last: bool, extra: dict[str, Any] | None) -> None:
        meta: dict[str, Any] = {**self._conn._base, "seq": self.seq, "part": self._part, "offset": self._offset,
                                "last": last}
        if self._first is not None:
            meta.update(self._first)
            self._first = None
        if extra:
            meta.update(extra)
        self._part += 1
        self._offset += len(chunk)
        # A response waits for this record only when its ticket has a future (a mutating request's parts).
        urgent = self.ticket is not None and self.ticket.future is not None
        await self._conn.sink.produce(self._conn._key, encode(self._kind, meta, chunk), self.ticket, urgent,
                                      self.topic)


class LocalRecorder(MessageRecorder):
    """The one record (kind LOCAL) of a request the proxy answered itself: what it received, then its answer.

    Made deferred, like a small read waiting for its response: the response side flushes a transaction's deferred
    recorder once it has answered it, in request order, so this record too completes in ``seq`` order. The request
    bytes are cut to what fits in one record (``truncated``); the payload is never split.
    """

    __slots__ = ("_response",)

    def __init__(self, conn: ConnectionRecorder, seq: int, meta: dict[str, Any], request: bytes, response: bytes,
                 truncated: bool, topic: str | None = None) -> None:
        super().__init__(conn, Kind.LOCAL, seq, meta, None, defer=True, topic=topic)
        # Room: the record limit less the metadata (its fields known now, and the few added at flush) and the answer.
        room = conn.part_size + METADATA_ROOM - len(orjson.dumps(meta)) - 256 - len(response)
        if len(request) > room:
            request, truncated = request[:max(0, room)], True
        if truncated:
            meta["truncated"] = True
        self._buf += request
        self.size = len(request)
        self._response = response
        self.deferred = True

    async def flush(self) -> None:
        """Produce the record (the proxy's answer has just been sent)."""
        if not self.deferred:
            return
        self.deferred = False
        meta: dict[str, Any] = {**self._conn._base, "seq": self.seq, **(self._first or {}),
                                "answered": time.time_ns(), "request_bytes": self.size,
                                "response_bytes": len(self._response)}
        self._buf += self._response
        value = encode(Kind.LOCAL, meta, self._buf)
        self._buf.clear()
        await self._conn.sink.produce(self._conn._key, value, None, False, self.topic)
