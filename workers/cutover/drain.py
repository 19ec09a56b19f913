"""Waiting, while the proxies hold writes, until a replayer group has applied everything captured before the hold.

Once every proxy's pause returned, every write it acknowledged is in the topic, below the partitions' high
watermarks read right then. The group has applied a partition's share once its committed offset reached that
watermark: the replayer commits up to the first record of its oldest unfinished transaction, and, with nothing
unfinished, the next offset to read (``workers/replay/offsets.py``), every ``commit_interval_s`` even while idle.
A partition with a watermark of 0, or holding no record any more (retention), has nothing to apply.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from workers.capture import topic_admin
from workers.capture.topic_admin import KafkaToolError


@dataclass(frozen=True)
class Marks:
    """The topic's watermarks per partition when the hold began."""

    low: dict[int, int]
    high: dict[int, int]


def read_marks(brokers: str, config: dict[str, Any] | None, topic: str, timeout_s: float = 10.0) -> Marks:
    """Every partition's low and high watermark now (an error naming the topic or brokers otherwise)."""
    admin = topic_admin.admin_client(brokers, config)
    parts = topic_admin.partitions(admin, brokers, topic, timeout_s)
    return Marks({p.partition: p.low for p in parts}, {p.partition: p.high for p in parts})


def remaining(marks: Marks, committed: dict[int, int]) -> dict[int, int]:
    """Per partition not yet done, how many records lie between the group's commit and the watermark."""
    out: dict[int, int] = {}
    for partition, high in marks.high.items():
        low = marks.low.get(partition, 0)
        if high == 0 or high <= low:
            continue
        position = committed.get(partition, low)
        if position < high:
            out[partition] = high - max(position, low)
    return out


class CommitReader:
    """Reads a group's committed offsets again and again through one consumer that never subscribes (so it never
    joins the group): one connection for the whole drain instead of one per poll."""

    def __init__(self, brokers: str, config: dict[str, Any] | None, group: str, topic: str) -> None:
        self.group, self.topic = group, topic
        self._consumer = Consumer({**topic_admin.client_config(brokers, config), "group.id": group,
                                   "client.id": f"cutover-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
                                   "enable.auto.offset.store": False})

    def read(self, partitions: list[int], timeout_s: float = 5.0) -> dict[int, int]:
        """The group's committed offset per partition (partitions without a commit left out)."""
        try:
            found = self._consumer.committed([TopicPartition(self.topic, p) for p in partitions], timeout=timeout_s)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            reason = error.str() if isinstance(error, KafkaError) else str(exc)
            raise KafkaToolError(f"offsets committed by group {self.group!r} on {self.topic}: {reason}") from None
        return {tp.partition: tp.offset for tp in found if tp.offset >= 0 and tp.error is None}

    def close(self) -> None:
        """Leave nothing open (the consumer never joined the group, so there is nothing to leave)."""
        self._consumer.close()


@dataclass(frozen=True)
class Drained:
    """How the wait ended: done (nothing remaining) or not, the last commits read, the seconds it took."""

    done: bool
    committed: dict[int, int]
    remaining: dict[int, int]
    seconds: float


def wait_for_drain(reader: CommitReader, marks: Marks, *, timeout_s: float, poll_s: float = 0.2,
                   progress: Callable[[dict[int, int]], None] | None = None) -> Drained:
    """Poll the group's commits until every partition reached its watermark, or ``timeout_s`` passed. A failed read
    (a coordinator moving) is retried until the deadline: the hold must end on time either way."""
    started = time.monotonic()
    deadline = started + timeout_s
    partitions = sorted(marks.high)
    committed: dict[int, int] = {}
    left = remaining(marks, committed)
    last_report = started
    while True:
        try:
            committed = reader.read(partitions, timeout_s=max(0.5, min(5.0, deadline - time.monotonic())))
        except KafkaToolError:
            if time.monotonic() >= deadline:
                raise
        else:
            left = remaining(marks, committed)
            if not left:
                return Drained(True, committed, {}, time.monotonic() - started)
        now = time.monotonic()
        if now >= deadline:
            return Drained(False, committed, left, now - started)
        if progress is not None and now - last_report >= 1.0:
            last_report = now
            progress(left)
        time.sleep(min(poll_s, max(0.0, deadline - now)))
