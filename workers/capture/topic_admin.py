"""Looking at the capture topic from outside: its partitions and watermarks, the consumer groups reading it, and a
group's lag (records and seconds). Read-only: nothing here commits an offset or joins a group.

Used by ``console kafka describe|lag`` and, through ``consumer_lag``, by whatever watches the replayer's progress.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import Any

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from workers.common.errors import MigrationError

# The proxy's --kafka-topic default (workers/capture/cli.py) and the replayer's consumer group.
DEFAULT_TOPIC = "capture-traffic"
DEFAULT_GROUP = "migration-replayer"
# What librdkafka says about brokers it cannot reach goes to this logger rather than straight to stderr: the tools
# report the failure once, as an error naming the brokers. An application that configures logging still sees it.
_LOG = logging.getLogger("workers.capture.topic_admin.librdkafka")
_LOG.addHandler(logging.NullHandler())


class KafkaToolError(MigrationError):
    """Kafka could not be reached or refused a request; the message names the brokers, topic or group."""


class TopicNotFoundError(KafkaToolError):
    """The topic does not exist on the brokers."""


@dataclass(frozen=True)
class PartitionInfo:
    """One partition of the topic: where it lives and which offsets it holds (``low`` to ``high`` - 1)."""

    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    low: int
    high: int

    @property
    def records(self) -> int:
        """Records the partition holds now (retention and compaction may have removed earlier ones)."""
        return max(0, self.high - self.low)


@dataclass(frozen=True)
class GroupOffsets:
    """A consumer group that committed offsets on the topic: its state and committed offset per partition."""

    group: str
    state: str
    committed: dict[int, int]
    lag: int


@dataclass(frozen=True)
class TopicDescription:
    """What ``describe_topic`` found."""

    brokers: str
    topic: str
    partitions: tuple[PartitionInfo, ...]
    groups: tuple[GroupOffsets, ...]

    @property
    def records(self) -> int:
        """Records over all partitions."""
        return sum(p.records for p in self.partitions)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``console kafka describe --json``)."""
        return {"brokers": self.brokers, "topic": self.topic, "records": self.records,
                "partitions": [{**asdict(p), "records": p.records} for p in self.partitions],
                "groups": [asdict(g) for g in self.groups]}


@dataclass(frozen=True)
class PartitionLag:
    """How far a group is behind on one partition.

    ``committed`` is the group's committed offset (the next record it will read), None when it committed none here;
    the lag then counts from ``low``, as a group reading from the beginning would. The times are the Kafka
    timestamps (milliseconds since the epoch) of the record at the committed offset and of the newest record, when
    they could be read; both are None when the partition has no lag.
    """

    partition: int
    committed: int | None
    low: int
    high: int
    lag: int
    committed_time_ms: int | None = None
    newest_time_ms: int | None = None

    @property
    def time_lag_s(self) -> float | None:
        """Seconds between the next record the group reads and the newest one (0 without lag; None: unknown)."""
        if self.lag == 0:
            return 0.0
        if self.committed_time_ms is None or self.newest_time_ms is None:
            return None
        return max(0.0, (self.newest_time_ms - self.committed_time_ms) / 1000)


@dataclass(frozen=True)
class GroupLag:
    """A consumer group's lag on a topic: one row per partition and the totals."""

    brokers: str
    topic: str
    group: str
    state: str
    partitions: tuple[PartitionLag, ...]

    @property
    def total_lag(self) -> int:
        """Records the group has not read yet, over all partitions."""
        return sum(p.lag for p in self.partitions)

    @property
    def time_lag_s(self) -> float | None:
        """The largest partition time lag; None when a partition with lag has no known time lag."""
        lags = [p.time_lag_s for p in self.partitions]
        if any(value is None for value in lags):
            return None
        return max((value for value in lags if value is not None), default=0.0)

    @property
    def committed_any(self) -> bool:
        """True when the group committed an offset on at least one partition of the topic."""
        return any(p.committed is not None for p in self.partitions)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``console kafka lag --json``)."""
        return {"brokers": self.brokers, "topic": self.topic, "group": self.group, "state": self.state,
                "total_lag": self.total_lag, "time_lag_s": self.time_lag_s, "committed_any": self.committed_any,
                "partitions": [{**asdict(p), "time_lag_s": p.time_lag_s} for p in self.partitions]}


def client_config(brokers: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """librdkafka settings for a read-only client of ``brokers``; ``config`` adds security settings
    (``workers.capture.kafka_sink.security_config``) or any other property."""
    # Looking must not create: a metadata request for a missing topic would otherwise make the broker create it.
    return {"bootstrap.servers": brokers, "logger": _LOG, "allow.auto.create.topics": False, **(config or {})}


def admin_client(brokers: str, config: dict[str, Any] | None = None) -> AdminClient:
    """An admin client (it never creates or changes anything here)."""
    return AdminClient(client_config(brokers, config))


def reader(brokers: str, config: dict[str, Any] | None = None, **extra: Any) -> Consumer:
    """A consumer for ``assign()``-only reading that never commits: its group id is unique and unused, so it leaves
    no group behind and touches no other group's offsets."""
    return Consumer({**client_config(brokers, config), "group.id": f"migration-console-{uuid.uuid4().hex[:12]}",
                     "enable.auto.commit": False, "enable.auto.offset.store": False,
                     "fetch.message.max.bytes": 16 << 20, **extra})


def _result(future: Future[Any], what: str, timeout_s: float) -> Any:
    try:
        return future.result(timeout_s)
    except KafkaException as exc:
        raise KafkaToolError(f"{what}: {_reason(exc)}") from None
    except TimeoutError:
        raise KafkaToolError(f"{what}: no answer in {timeout_s:.0f}s") from None


def _reason(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)


def partitions(admin: AdminClient, brokers: str, topic: str, timeout_s: float) -> list[PartitionInfo]:
    """Every partition of ``topic`` with its leader, replicas and watermarks; an error naming the topic when it
    does not exist and the brokers when they cannot be reached."""
    try:
        metadata = admin.list_topics(topic, timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaToolError(f"cannot reach Kafka at {brokers}: {_reason(exc)}") from None
    info = metadata.topics.get(topic)
    if info is None or (info.error is not None and info.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
        raise TopicNotFoundError(f"topic {topic!r} does not exist on {brokers}")
    if info.error is not None:
        raise KafkaToolError(f"topic {topic!r} on {brokers}: {info.error.str()}")
    low, high = watermarks(admin, topic, sorted(info.partitions), timeout_s)
    return [PartitionInfo(p, meta.leader, tuple(meta.replicas), tuple(meta.isrs), low[p], high[p])
            for p, meta in sorted(info.partitions.items())]


def watermarks(admin: AdminClient, topic: str, ids: Iterable[int],
               timeout_s: float) -> tuple[dict[int, int], dict[int, int]]:
    """The low and high watermark (first offset held, next offset written) of each partition."""
    wanted = list(ids)
    found: list[dict[int, int]] = []
    for spec, name in ((OffsetSpec.earliest(), "low"), (OffsetSpec.latest(), "high")):
        futures = admin.list_offsets({TopicPartition(topic, p): spec for p in wanted}, request_timeout=timeout_s)
        found.append({tp.partition: _result(f, f"{name} watermark of {topic}[{tp.partition}]", timeout_s).offset
                      for tp, f in futures.items()})
    return found[0], found[1]


def offsets_for_time(admin: AdminClient, topic: str, ids: Iterable[int], time_ms: int,
                     timeout_s: float) -> dict[int, int | None]:
    """Per partition, the first offset whose record's timestamp is at or after ``time_ms``; None when no record is."""
    futures = admin.list_offsets({TopicPartition(topic, p): OffsetSpec.for_timestamp(time_ms) for p in ids},
                                 request_timeout=timeout_s)
    out: dict[int, int | None] = {}
    for tp, future in futures.items():
        offset = _result(future, f"offset for time {time_ms} in {topic}[{tp.partition}]", timeout_s).offset
        out[tp.partition] = offset if offset >= 0 else None
    return out


# Answers of a group coordinator that is not ready yet (a fresh broker creating its offsets topic, a move).
_COORDINATOR_NOT_READY = frozenset({KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
                                    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError._WAIT_COORD})


def committed_offsets(brokers: str, config: dict[str, Any] | None, group: str, topic: str, ids: Iterable[int],
                      timeout_s: float) -> dict[int, int]:
    """The offsets ``group`` committed on the partitions of ``topic`` (partitions without a commit left out).

    Read by a consumer of the group that never subscribes (so never joins it), not by the admin API: librdkafka's
    admin request crashes the process when the coordinator answers NOT_COORDINATOR (confluentinc/librdkafka#5040),
    as on a fresh broker; a consumer's request retries that, and so does this loop.
    """
    consumer = Consumer({**client_config(brokers, config), "group.id": group, "enable.auto.commit": False,
                         "enable.auto.offset.store": False})
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                found = consumer.committed([TopicPartition(topic, p) for p in ids],
                                           timeout=max(1.0, deadline - time.monotonic()))
                return {tp.partition: tp.offset for tp in found if tp.offset >= 0 and tp.error is None}
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                code = error.code() if isinstance(error, KafkaError) else None
                if code not in _COORDINATOR_NOT_READY or time.monotonic() >= deadline:
                    raise KafkaToolError(f"offsets committed by group {group!r}: {_reason(exc)}") from None
            time.sleep(0.2)
    finally:
        consumer.close()


def group_state(admin: AdminClient, group: str, timeout_s: float) -> str:
    """The group's state in lower case (``stable``, ``empty``, ``dead`` for a group the brokers do not know, …)."""
    description = _result(admin.describe_consumer_groups([group], request_timeout=timeout_s)[group],
                          f"describing group {group!r}", timeout_s)
    return str(getattr(description.state, "name", description.state)).lower()


def describe_topic(brokers: str, topic: str = DEFAULT_TOPIC, config: dict[str, Any] | None = None, *,
                   timeout_s: float = 10.0) -> TopicDescription:
    """The topic's partitions (leader, replicas, in-sync replicas, watermarks, records) and every consumer group
    that committed an offset on it."""
    admin = admin_client(brokers, config)
    parts = partitions(admin, brokers, topic, timeout_s)
    ids = [p.partition for p in parts]
    listing = _result(admin.list_consumer_groups(request_timeout=timeout_s), "listing consumer groups", timeout_s)
    states = {g.group_id: str(getattr(g.state, "name", g.state)).lower() for g in listing.valid}
    groups = []
    for group in sorted(states):
        committed = committed_offsets(brokers, config, group, topic, ids, timeout_s)
        if committed:
            lag = sum(_lag(p, committed.get(p.partition)) for p in parts)
            groups.append(GroupOffsets(group, states[group], committed, lag))
    return TopicDescription(brokers, topic, tuple(parts), tuple(groups))


def _lag(partition: PartitionInfo, committed: int | None) -> int:
    # kafka-consumer-groups' definition (log end minus committed); without a commit, everything still held.
    start = partition.low if committed is None else committed
    return max(0, partition.high - start)


def consumer_lag(brokers: str, topic: str = DEFAULT_TOPIC, group: str = DEFAULT_GROUP,
                 config: dict[str, Any] | None = None, *, timestamps: bool = True,
                 timeout_s: float = 10.0) -> GroupLag:
    """How far ``group`` is behind on ``topic``: per partition its committed offset, the high watermark and the lag
    in records; with ``timestamps``, also the time lag, from the Kafka timestamps of the record at the committed
    offset and of the newest record (two small reads per partition with lag, within ``timeout_s``; a time that
    cannot be read in that time is left None). Reads only: never joins nor commits for ``group``."""
    admin = admin_client(brokers, config)
    parts = partitions(admin, brokers, topic, timeout_s)
    committed = committed_offsets(brokers, config, group, topic, [p.partition for p in parts], timeout_s)
    state = group_state(admin, group, timeout_s)
    rows = [PartitionLag(p.partition, committed.get(p.partition), p.low, p.high, _lag(p, committed.get(p.partition)))
            for p in parts]
    if timestamps:
        rows = _with_times(brokers, topic, rows, config, timeout_s)
    return GroupLag(brokers, topic, group, state, tuple(rows))


def _with_times(brokers: str, topic: str, rows: list[PartitionLag], config: dict[str, Any] | None,
                timeout_s: float) -> list[PartitionLag]:
    lagging = [r for r in rows if r.lag > 0]
    if not lagging:
        return rows
    # The next record the group reads (at least the oldest one still held), and the newest record.
    next_times = record_times(brokers, topic, {r.partition: max(r.low, r.committed if r.committed is not None
                                                                else r.low) for r in lagging}, config, timeout_s)
    newest_times = record_times(brokers, topic, {r.partition: r.high - 1 for r in lagging}, config, timeout_s)
    return [PartitionLag(r.partition, r.committed, r.low, r.high, r.lag, next_times.get(r.partition),
                         newest_times.get(r.partition)) if r.lag > 0 else r for r in rows]


def record_times(brokers: str, topic: str, positions: dict[int, int], config: dict[str, Any] | None = None,
                 timeout_s: float = 10.0) -> dict[int, int]:
    """Per partition, the Kafka timestamp (ms) of the record at ``positions[partition]`` (or the first one after
    it); partitions whose record could not be read within ``timeout_s`` are left out."""
    if not positions:
        return {}
    # Small fetches: one record per partition is wanted, not the batches after it.
    consumer = reader(brokers, config, **{"max.partition.fetch.bytes": 65536, "fetch.wait.max.ms": 50})
    found: dict[int, int] = {}
    done: set[int] = set()
    try:
        consumer.assign([TopicPartition(topic, p, offset) for p, offset in positions.items()])
        deadline = time.monotonic() + timeout_s
        while len(done) < len(positions) and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            partition, offset = message.partition(), message.offset()
            if partition is None or offset is None or partition in done or offset < positions.get(partition, 0):
                continue
            done.add(partition)
            kind, stamp = message.timestamp()
            if kind != TIMESTAMP_NOT_AVAILABLE:
                found[partition] = stamp
            consumer.pause([TopicPartition(topic, partition)])
    finally:
        consumer.close()
    return found
