"""Reading capture records back: reassembly of split messages into transactions, and a topic reader (replayer API).

Reads record versions 1 and 2 (docs/capture-format.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from workers.capture.records import CaptureRecord, Kind, RecordFormatError, decode


@dataclass(frozen=True)
class ConnectionOpened:
    """A client connected; or, with ``first_seq`` above 1, its records continue in this topic from that request on
    (the proxy's cutover switch moved it, the former topic holding a close record "switched to SIDE")."""

    node: str
    conn: str
    time_ns: int
    client: str
    tls: bool
    first_seq: int = 1


@dataclass(frozen=True)
class ConnectionClosed:
    """A client connection ended (``requests`` is the last sequence number used).

    ``missing``: how many of the connection's ``seq`` numbers neither a Transaction nor a LocalAnswer came for,
    beyond those the close record explains (``suppressed`` by rule; ``incomplete``, the request cut short). Above 0,
    records were lost. None for a version 1 record, which does not say (nor does a reader that started mid-topic
    know what came before).
    """

    node: str
    conn: str
    time_ns: int
    reason: str
    requests: int
    suppressed: int | None = None
    incomplete: int | None = None
    missing: int | None = None


@dataclass(frozen=True)
class Transaction:
    """One request and its response, each exactly as the bytes went over the wire (response None if none came)."""

    node: str
    conn: str
    seq: int
    method: str
    target: str
    request: bytes
    response: bytes | None
    status: int | None
    # received, forwarded, response_started, response_finished: nanoseconds since the epoch.
    timestamps: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class LocalAnswer:
    """A request the proxy answered itself (record version 2): the source never saw it, a replay must not send it.

    ``cause``: ``malformed`` (400), ``head too large`` (431), ``destination unreachable`` (502), ``capture
    unavailable`` (503, reject mode). ``request`` is what the client sent as far as the record holds it: the head
    (up to the head limit for a malformed one); ``truncated`` when the client sent more (a body, or a longer head).
    ``method`` and ``target`` are empty when the head could not be parsed.
    """

    node: str
    conn: str
    seq: int
    method: str
    target: str
    request: bytes
    response: bytes
    status: int
    cause: str
    # received (the request head), answered (the proxy's answer sent): nanoseconds since the epoch.
    timestamps: dict[str, int] = field(default_factory=dict)
    truncated: bool = False
    error: str | None = None


Event = ConnectionOpened | ConnectionClosed | Transaction | LocalAnswer


@dataclass
class _Message:
    data: bytearray = field(default_factory=bytearray)
    first: dict[str, Any] = field(default_factory=dict)
    last: dict[str, Any] | None = None


@dataclass
class _Pending:
    request: _Message | None = None
    response: _Message | None = None


class Reassembler:
    """Joins the parts of each message and pairs requests with responses; feed records in partition order."""

    def __init__(self, *, mid_stream: bool = False) -> None:
        # mid_stream: the reader may start anywhere in a partition (a consumer resuming at a committed offset), so a
        # message whose first part came before the start is skipped rather than refused as a lost record.
        self._mid_stream = mid_stream
        self.skipped = 0
        self._pending: dict[tuple[str, int], _Pending] = {}
        # Per connection: how many transactions (and local answers) came, the highest seq among them, and 1 once
        # its open record came (a write's request record, which another producer carries, may come before it).
        self._seen: dict[str, list[int]] = {}

    @property
    def pending(self) -> int:
        """Transactions started and not yet complete."""
        return len(self._pending)

    def add(self, record: CaptureRecord) -> list[Event]:
        """The events that ``record`` completes (often none, for a part of a larger message)."""
        meta = record.meta
        if record.kind is Kind.OPEN:
            seen = self._seen.setdefault(str(meta["conn"]), [0, 0, 0])
            seen[2] = 1
            first_seq = int(meta.get("first_seq", 1))
            if first_seq > 1:
                # The requests before it were recorded in another topic: counted as seen, not as lost.
                seen[0] += first_seq - 1
                seen[1] = max(seen[1], first_seq - 1)
            return [ConnectionOpened(meta["node"], meta["conn"], meta["t"], meta.get("client", ""),
                                     bool(meta.get("tls")), first_seq)]
        if record.kind is Kind.CLOSE:
            return self._closed(meta)
        key = (str(meta["conn"]), int(meta["seq"]))
        if record.kind is Kind.TRANSACTION:
            split = int(meta["request_bytes"])
            whole = _Pending(_Message(bytearray(record.payload[:split]), meta, meta),
                             _Message(bytearray(record.payload[split:]), meta, meta))
            return [self._emit(key, whole)]
        if record.kind is Kind.LOCAL:
            return [self._local(key, meta, record.payload)]
        attr = "request" if record.kind is Kind.REQUEST else "response"
        if self._mid_stream and meta["offset"] != 0 and getattr(self._pending.get(key), attr, None) is None:
            self.skipped += 1
            return []
        pending = self._pending.setdefault(key, _Pending())
        message: _Message | None = getattr(pending, attr)
        if message is None:
            message = _Message(first=meta)
            setattr(pending, attr, message)
        if meta["offset"] != len(message.data):
            raise RecordFormatError(f"connection {key[0]} #{key[1]} {attr}: part {meta['part']} at offset "
                                    f"{meta['offset']}, expected {len(message.data)} (a record is missing)")
        message.data += record.payload
        if meta["last"]:
            message.last = meta
        if (pending.request is not None and pending.request.last is not None and pending.response is not None
                and pending.response.last is not None):
            del self._pending[key]
            return [self._emit(key, pending)]
        return []

    def has_request(self, conn: str, seq: int) -> bool:
        """True when a part of the request of a pending transaction came."""
        pending = self._pending.get((conn, seq))
        return pending is not None and pending.request is not None

    def discard(self, conn: str, seq: int) -> bool:
        """Forget a transaction that will never complete (its other records were lost, or came before the reader's
        start); True when it was pending."""
        return self._pending.pop((conn, seq), None) is not None

    def _count(self, key: tuple[str, int]) -> None:
        seen = self._seen.setdefault(key[0], [0, 0, 0])
        seen[0] += 1
        seen[1] = max(seen[1], key[1])

    def _closed(self, meta: dict[str, Any]) -> list[Event]:
        conn = str(meta["conn"])
        events: list[Event] = [self._emit(key, p) for key, p in sorted(self._pending.items())
                               if key[0] == conn and p.request is not None and p.request.last is not None]
        for key in [k for k in self._pending if k[0] == conn]:
            del self._pending[key]
        requests = int(meta.get("requests", 0))
        suppressed, incomplete = meta.get("suppressed"), meta.get("incomplete")
        seen = self._seen.pop(conn, None)
        missing = None
        if suppressed is not None and seen is not None and seen[2]:
            # The request cut short is explained unless a record came for it anyway (a local answer, say).
            missing = requests - seen[0] - int(suppressed) - (1 if incomplete and incomplete > seen[1] else 0)
        events.append(ConnectionClosed(meta["node"], conn, meta["t"], meta.get("reason", ""), requests, suppressed,
                                       incomplete, missing))
        return events

    def _local(self, key: tuple[str, int], meta: dict[str, Any], payload: bytes) -> LocalAnswer:
        self._count(key)
        split = int(meta["request_bytes"])
        stamps: dict[str, int] = {name: int(meta[name]) for name in ("received", "answered") if name in meta}
        return LocalAnswer(str(meta["node"]), key[0], key[1], str(meta.get("method", "")), str(meta.get("target", "")),
                           payload[:split], payload[split:], int(meta["status"]), str(meta.get("cause", "")), stamps,
                           bool(meta.get("truncated")), meta.get("error"))

    def _emit(self, key: tuple[str, int], pending: _Pending) -> Transaction:
        self._count(key)
        request = pending.request
        assert request is not None
        response = pending.response if pending.response is not None and pending.response.last is not None else None
        final = response.last if response is not None and response.last is not None else {}
        names = ("received", "forwarded", "response_started", "response_finished")
        stamps: dict[str, int] = {name: int(final[name]) for name in names if name in final}
        stamps.setdefault("received", int(request.first.get("received", 0)))
        return Transaction(str(request.first["node"]), key[0], key[1], str(request.first.get("method", "")),
                           str(request.first.get("target", "")), bytes(request.data),
                           bytes(response.data) if response is not None else None,
                           final.get("status"), stamps, final.get("error"))


def reassemble(records: Iterable[CaptureRecord]) -> Iterator[Event]:
    """Events from records in partition order."""
    assembler = Reassembler()
    for record in records:
        yield from assembler.add(record)


def read_topic(brokers: str, topic: str, *, timeout_s: float = 30.0,
               config: dict[str, Any] | None = None) -> Iterator[CaptureRecord]:
    """Every record of ``topic`` from the beginning up to its end at call time, partition by partition in order."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": f"capture-reader-{time.time_ns()}",
                         "enable.auto.commit": False, "fetch.message.max.bytes": 16 << 20, **(config or {})})
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            raise KafkaException(info.error if info is not None else f"topic {topic} not found")
        for partition in sorted(info.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
            deadline = time.monotonic() + timeout_s
            while True:
                message = consumer.poll(0.5)
                if message is None:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{topic}[{partition}]: offset {high} not reached in {timeout_s}s")
                    continue
                if message.error():
                    raise KafkaException(message.error())
                value = message.value()
                if value is not None:
                    yield decode(value)
                offset = message.offset()
                if offset is not None and offset >= high - 1:
                    break
    finally:
        consumer.close()


def read_transactions(brokers: str, topic: str, *, timeout_s: float = 30.0,
                      config: dict[str, Any] | None = None) -> Iterator[Event]:
    """Connection events and complete transactions of ``topic``, in order per connection. ``config``: extra
    librdkafka settings, such as the proxy's security settings (``workers.capture.kafka_sink.security_config``)."""
    return reassemble(read_topic(brokers, topic, timeout_s=timeout_s, config=config))
