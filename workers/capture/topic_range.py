"""Reading a slice of the capture topic (``console kafka dump``): by partition, offsets or times, with ``assign()``,
never committing."""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaError, TopicPartition

from workers.capture.topic_admin import KafkaToolError, admin_client, offsets_for_time, partitions, reader
from workers.common.errors import ConfigurationError


@dataclass(frozen=True)
class TopicRecord:
    """One Kafka record as read: where it is, its Kafka timestamp (ms since the epoch), its key and value."""

    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class Span:
    """The offsets to read from one partition: ``start`` up to ``end``, excluded."""

    partition: int
    start: int
    end: int


@dataclass(frozen=True)
class Selection:
    """Which records to read. Offsets and times apply to every partition read; an end is excluded (the
    records *before* it are read); times are milliseconds since the epoch, compared with the Kafka timestamps."""

    partition: int | None = None
    start_offset: int | None = None
    end_offset: int | None = None
    start_time_ms: int | None = None
    end_time_ms: int | None = None

    def __post_init__(self) -> None:
        if self.start_offset is not None and self.start_time_ms is not None:
            raise ConfigurationError("--start-offset and --start-time exclude each other")
        if self.end_offset is not None and self.end_time_ms is not None:
            raise ConfigurationError("--end-offset and --end-time exclude each other")
        for name, value in (("--start-offset", self.start_offset), ("--end-offset", self.end_offset),
                            ("--partition", self.partition)):
            if value is not None and value < 0:
                raise ConfigurationError(f"{name} must be 0 or more, not {value}")


def plan(brokers: str, topic: str, selection: Selection, config: dict[str, Any] | None = None,
         timeout_s: float = 10.0) -> list[Span]:
    """The span of each selected partition, from its watermarks now (records written later are not read)."""
    admin = admin_client(brokers, config)
    parts = {p.partition: p for p in partitions(admin, brokers, topic, timeout_s)}
    if selection.partition is not None and selection.partition not in parts:
        raise ConfigurationError(f"--partition {selection.partition}: topic {topic!r} has partitions "
                                 f"0 to {max(parts)}")
    ids = [selection.partition] if selection.partition is not None else sorted(parts)
    starts: dict[int, int | None] = {p: selection.start_offset for p in ids}
    ends: dict[int, int | None] = {p: selection.end_offset for p in ids}
    if selection.start_time_ms is not None:
        starts = offsets_for_time(admin, topic, ids, selection.start_time_ms, timeout_s)
        starts = {p: parts[p].high if o is None else o for p, o in starts.items()}
    if selection.end_time_ms is not None:
        ends = offsets_for_time(admin, topic, ids, selection.end_time_ms, timeout_s)
    spans = []
    for p in ids:
        low, high = parts[p].low, parts[p].high
        start, end = starts[p], ends[p]
        span = Span(p, max(low, start if start is not None else low), min(high, end if end is not None else high))
        if span.start < span.end:
            spans.append(span)
    return spans


def read_range(brokers: str, topic: str, selection: Selection | None = None, config: dict[str, Any] | None = None,
               *, timeout_s: float = 10.0) -> Generator[TopicRecord, None, None]:
    """The selected records, partition by partition, each in offset order (so a connection's records come in the
    order the reassembly needs). Stop iterating at any time: the consumer is closed, nothing is committed."""
    spans = plan(brokers, topic, selection or Selection(), config, timeout_s)
    if not spans:
        return
    consumer = reader(brokers, config, **{"enable.partition.eof": True})
    try:
        for span in spans:
            consumer.assign([TopicPartition(topic, span.partition, span.start)])
            deadline = time.monotonic() + timeout_s
            while True:
                message = consumer.poll(0.5)
                if message is None:
                    if time.monotonic() > deadline:
                        raise KafkaToolError(f"{topic}[{span.partition}]: no record in {timeout_s:.0f}s while "
                                             f"reading offsets {span.start} to {span.end - 1} from {brokers}")
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        break
                    raise KafkaToolError(f"{topic}[{span.partition}] on {brokers}: {error.str()}")
                offset = message.offset()
                if offset is None or offset >= span.end:
                    break
                deadline = time.monotonic() + timeout_s
                kind, stamp = message.timestamp()
                yield TopicRecord(span.partition, offset, None if kind == TIMESTAMP_NOT_AVAILABLE else stamp,
                                  message.key(), message.value() or b"")
                if offset >= span.end - 1:
                    break
    finally:
        consumer.close()
