"""Reading capture records back: reassembly of split messages into transactions, and a topic reader (replayer API)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from workers.capture.records import CaptureRecord, Kind, RecordFormatError, decode


@dataclass(frozen=True)
class ConnectionOpened:
    """A client connected."""

    node: str
    conn: str
    time_ns: int
    client: str
    tls: bool


@dataclass(frozen=True)
class ConnectionClosed:
    """A client connection ended (``requests`` is the last sequence number used)."""

    node: str
    conn: str
    time_ns: int
    reason: str
    requests: int


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


Event = ConnectionOpened | ConnectionClosed | Transaction


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

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int], _Pending] = {}

    @property
    def pending(self) -> int:
        """Transactions started and not yet complete."""
        return len(self._pending)

    def add(self, record: CaptureRecord) -> list[Event]:
        """The events that ``record`` completes (often none, for a part of a larger message)."""
        meta = record.meta
        if record.kind is Kind.OPEN:
            return [ConnectionOpened(meta["node"], meta["conn"], meta["t"], meta.get("client", ""),
                                     bool(meta.get("tls")))]
        if record.kind is Kind.CLOSE:
            events: list[Event] = [self._emit(key, p) for key, p in sorted(self._pending.items())
                                   if key[0] == meta["conn"] and p.request is not None and p.request.last is not None]
            for key in [k for k in self._pending if k[0] == meta["conn"]]:
                del self._pending[key]
            events.append(ConnectionClosed(meta["node"], meta["conn"], meta["t"], meta.get("reason", ""),
                                           meta.get("requests", 0)))
            return events
        key = (str(meta["conn"]), int(meta["seq"]))
        if record.kind is Kind.TRANSACTION:
            split = int(meta["request_bytes"])
            whole = _Pending(_Message(bytearray(record.payload[:split]), meta, meta),
                             _Message(bytearray(record.payload[split:]), meta, meta))
            return [self._emit(key, whole)]
        pending = self._pending.setdefault(key, _Pending())
        attr = "request" if record.kind is Kind.REQUEST else "response"
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

    @staticmethod
    def _emit(key: tuple[str, int], pending: _Pending) -> Transaction:
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


def read_transactions(brokers: str, topic: str, *, timeout_s: float = 30.0) -> Iterator[Event]:
    """Connection events and complete transactions of ``topic``, in order per connection."""
    return reassemble(read_topic(brokers, topic, timeout_s=timeout_s))
