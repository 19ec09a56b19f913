"""One partition's records turned into transactions to replay, with the bookkeeping its commits need.

Records of a connection are all in one partition, so each partition is reassembled on its own. A consumer may start
anywhere in a partition (a committed offset), so the reassembler runs in mid-stream mode: a message whose first
part came before the start is skipped (its transaction finished before the offset was committed, or it will be
counted as incomplete). Every transaction is tracked from its first record until the replayer finishes it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from workers.capture.reader import ConnectionClosed, LocalAnswer, Reassembler, Transaction
from workers.capture.records import Kind, RecordFormatError, decode
from workers.replay.offsets import PartitionOffsets

log = logging.getLogger("workers.replay")


@dataclass(frozen=True)
class Ready:
    """A complete transaction to replay, where it sits in its partition."""

    partition: int
    offset: int
    tx: Transaction


@dataclass
class FeedCounts:
    """What a partition's records held that is not replayed."""

    local_answers: int = 0
    incomplete: int = 0
    bad_records: int = 0
    lost: int = 0
    # Responses whose request came before the reader's start (a resumption point, a start time).
    before_start: int = 0


@dataclass
class PartitionFeed:
    """Reassembly and commit tracking for one assigned partition."""

    partition: int
    start: int | None
    offsets: PartitionOffsets = field(init=False)
    counts: FeedCounts = field(default_factory=FeedCounts)
    revoked: bool = False

    def __post_init__(self) -> None:
        self.offsets = PartitionOffsets(self.start)
        self._assembler = Reassembler(mid_stream=True)
        # Transactions begun and not yet complete: key -> when their first record was read (monotonic seconds).
        self._assembling: dict[tuple[str, int], float] = {}
        # The Kafka time of the first record read: a transaction whose request arrived at the proxy before it had its
        # request records before this reader's start.
        self._first_ms: int | None = None

    def add(self, offset: int, value: bytes | None, timestamp_ms: int = 0) -> list[Ready]:
        """The transactions the record at ``offset`` (written at ``timestamp_ms``) completes."""
        self.offsets.seen(offset)
        if self._first_ms is None and timestamp_ms > 0:
            self._first_ms = timestamp_ms
        if value is None:
            return []
        try:
            record = decode(value)
        except RecordFormatError as exc:
            self.counts.bad_records += 1
            log.warning("partition %s offset %s: skipped: %s", self.partition, offset, exc)
            return []
        kind = record.kind
        if kind in (Kind.REQUEST, Kind.RESPONSE, Kind.TRANSACTION, Kind.LOCAL):
            key = (str(record.meta["conn"]), int(record.meta["seq"]))
            skipped = self._assembler.skipped
            try:
                events = self._assembler.add(record)
            except RecordFormatError as exc:
                self.counts.bad_records += 1
                log.warning("partition %s offset %s: %s", self.partition, offset, exc)
                return []
            if self._assembler.skipped == skipped:
                self.offsets.begin(key, offset)
                if kind in (Kind.REQUEST, Kind.RESPONSE):
                    self._assembling.setdefault(key, time.monotonic())
                if (kind is Kind.RESPONSE and record.meta.get("last") and not events
                        and self._before_start(key, record.meta)):
                    return []
        else:
            events = self._assembler.add(record)
        ready: list[Ready] = []
        for event in events:
            if isinstance(event, Transaction):
                key = (event.conn, event.seq)
                self._assembling.pop(key, None)
                first = self.offsets.first_offset(key)
                ready.append(Ready(self.partition, offset if first is None else first, event))
            elif isinstance(event, LocalAnswer):
                self.counts.local_answers += 1
                self.offsets.finish((event.conn, event.seq))
            elif isinstance(event, ConnectionClosed):
                self._closed(event)
        return ready

    def _before_start(self, key: tuple[str, int], meta: dict[str, object]) -> bool:
        """A complete response whose request came before this reader's start (it resumed after the request's
        records, or started at a time): its transaction was finished before, or is out of the replay's range."""
        received = meta.get("received")
        if (self._assembler.has_request(*key) or self._first_ms is None or not isinstance(received, int)
                or received // 1_000_000 >= self._first_ms):
            return False
        self._assembler.discard(*key)
        self._assembling.pop(key, None)
        self.offsets.finish(key)
        self.counts.before_start += 1
        return True

    def _closed(self, event: ConnectionClosed) -> None:
        # The reassembler dropped the connection's transactions whose request never completed.
        for key in [k for k in self._assembling if k[0] == event.conn]:
            del self._assembling[key]
            self.offsets.finish(key)
            self.counts.incomplete += 1
        if event.missing:
            self.counts.lost += event.missing
            log.warning("connection %s: %s request(s) whose capture records were lost", event.conn, event.missing)

    def expire(self, older_than_s: float) -> int:
        """Give up on transactions still incomplete after ``older_than_s`` seconds (their proxy died, or their
        other records came before this reader's start); returns how many."""
        limit = time.monotonic() - older_than_s
        stale = [key for key, since in self._assembling.items() if since < limit]
        for key in stale:
            del self._assembling[key]
            self._assembler.discard(*key)
            self.offsets.finish(key)
        self.counts.incomplete += len(stale)
        return len(stale)
