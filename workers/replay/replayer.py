"""The replayer: a member of a Kafka consumer group that applies captured traffic to the target.

One asyncio loop does the sending; a single thread talks to Kafka (reads, commits, rebalance callbacks), because the
consumer is not to be used from several threads at once. Per connection, transactions go out in ``seq`` order, each
after the previous one's response; across connections, at the original relative times divided by the speedup factor
(``max_speed`` drops the timing). Offsets are committed per partition up to the first unfinished transaction
(``offsets.py``). A transaction that cannot be finished in ``transaction_timeout_s`` is dead-lettered: its
connection's later transactions waited for it, other connections never did.

Rebalances: partitions are assigned cooperatively (only the partitions that move are revoked). A revoked partition's
in-flight requests get ``revoke_grace_s`` to finish, its finished work is committed, then the rest is abandoned: the
new owner starts at that commit and sends it again (at least once; writes with ids are idempotent, and auto-id
writes are pinned to the source's ids, ``autoid.py``). The old owner never commits a partition after giving it up.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import OFFSET_END, Consumer, KafkaException, Message, TopicPartition

from workers.capture.classify import changes_data
from workers.metadata.rename import RenameRules
from workers.replay.autoid import pin_auto_ids
from workers.replay.deadletter import ReplayDeadLetters
from workers.replay.feed import PartitionFeed, Ready
from workers.replay.messages import HttpResponse, ReplayedTransaction, TargetExchange
from workers.replay.options import ReplayOptions
from workers.replay.parsing import parse_request, parse_response
from workers.replay.sender import NON_RETRYABLE_DOC_ERRORS, TargetSender
from workers.replay.stats import ReplayStats, documents_in, write_status

log = logging.getLogger("workers.replay")

# Answers that depend on the document's state when the write arrives, not on the write: a document missing (404) or
# a version conflict (409). Replaying the overlap before the snapshot, or again after a crash, meets them while the
# documents still end in the source's state; they are compared and counted (status_mismatch), not dead-lettered.
_STATE_DEPENDENT = frozenset({404, 409})
_BATCH = 64


class TupleSink(Protocol):
    """Where tuples go (``workers.replay.tuples``)."""

    def add(self, tx: ReplayedTransaction, comparison: Any) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Connection:
    partition: int
    pending: deque[Ready] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None
    busy: bool = False


def _size(ready: Ready) -> int:
    return len(ready.tx.request) + len(ready.tx.response or b"")


class Replayer:
    """One replayer process's work; ``run()`` until stopped (or idle, with ``exit_when_idle_s``)."""

    def __init__(self, options: ReplayOptions, *, tuples: TupleSink | None = None,
                 compare: Callable[[ReplayedTransaction], Any] | None = None) -> None:
        from workers.replay.transforms.pipeline import TransformOptions, TransformPipeline

        self.options = options
        self.member = options.member or f"{socket.gethostname()}-{os.getpid()}"
        self.pipeline = TransformPipeline(TransformOptions(
            target=options.target, rename=RenameRules.parse(options.rename), type_mode=options.type_mode,
            split_types={k: frozenset(v) for k, v in options.split_types.items()},
            restore_types=dict(options.restore_types), user_transforms=list(options.transforms),
            gzip_target=options.gzip_target))
        self.sender = TargetSender(
            options.target, max_connections=options.max_connections, max_retries=options.max_retries,
            non_retryable=tuple(options.non_retryable) if options.non_retryable is not None
            else NON_RETRYABLE_DOC_ERRORS)
        self.dead_letters = ReplayDeadLetters(options.dead_letters, options.group_id, self.member,
                                              s3_endpoint=options.s3_endpoint, s3_region=options.s3_region)
        self.tuples = tuples
        self.compare = compare
        self.stats = ReplayStats()
        self.feeds: dict[int, PartitionFeed] = {}
        self.connections: dict[str, _Connection] = {}
        self.buffered_bytes = 0
        self._clock: tuple[float, int] | None = None
        self._paused = False
        self._stopping = False
        self._last_read = time.monotonic()
        self._kafka = ThreadPoolExecutor(1, thread_name_prefix="replay-kafka")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer: Consumer | None = None

    # -- Kafka side (runs in the Kafka thread) -------------------------------------------------------------------

    def _consumer_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.options.brokers, "group.id": self.options.group_id,
            "client.id": f"replayer-{self.member}", "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "partition.assignment.strategy": "cooperative-sticky",
            # Bounded prefetch: memory stays flat whatever the backlog (records are at most ~1 MiB).
            "queued.max.messages.kbytes": 16384, "fetch.max.bytes": 8 << 20, "max.partition.fetch.bytes": 2 << 20,
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 2000, "max.poll.interval.ms": 300000,
            **self.options.kafka_config,
        }

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        starts: dict[int, int | None] = {p.partition: None for p in partitions}
        if partitions:
            committed = consumer.committed(partitions, timeout=30)
            fresh = [tp for tp in committed if tp.offset < 0]
            for tp in committed:
                if tp.offset >= 0:
                    starts[tp.partition] = tp.offset
            if fresh and self.options.from_timestamp_ms is not None:
                asked = [TopicPartition(tp.topic, tp.partition, self.options.from_timestamp_ms) for tp in fresh]
                for tp in consumer.offsets_for_times(asked, timeout=30):
                    # -1: no record at or after the time yet, so start at the end.
                    offset = tp.offset if tp.offset >= 0 else OFFSET_END
                    for original in partitions:
                        if original.partition == tp.partition:
                            original.offset = offset
            consumer.incremental_assign(partitions)
            if self._paused:
                consumer.pause(partitions)
        log.info("assigned partitions %s (starts %s)", sorted(starts), starts)
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._assigned(starts), self._loop).result()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assert self._loop is not None
        numbers = [p.partition for p in partitions]
        positions = asyncio.run_coroutine_threadsafe(self._revoked(numbers), self._loop).result(
            self.options.revoke_grace_s + 30)
        self._commit_now(consumer, positions)
        log.info("revoked partitions %s (committed %s)", numbers, positions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assert self._loop is not None
        numbers = [p.partition for p in partitions]
        # Lost, not revoked: another member may already own them, so nothing is committed.
        asyncio.run_coroutine_threadsafe(self._revoked(numbers), self._loop).result(self.options.revoke_grace_s + 30)
        log.warning("lost partitions %s (nothing committed)", numbers)

    def _commit_now(self, consumer: Consumer, positions: dict[int, int]) -> bool:
        """Commit ``positions``; False when the brokers refused (a rebalance under way): the next tick tries again."""
        if not positions:
            return True
        offsets = [TopicPartition(self.options.topic, p, o) for p, o in positions.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("commit of %s failed: %s", positions, exc)
            return False
        return True

    def _consume(self, consumer: Consumer) -> list[Message]:
        # A small batch: records of bulk traffic are up to 1 MiB each, and a batch is held whole until dispatched.
        return consumer.consume(num_messages=_BATCH, timeout=0.2)

    # -- loop side -----------------------------------------------------------------------------------------------

    async def _assigned(self, starts: dict[int, int | None]) -> None:
        for partition, start in starts.items():
            self.feeds[partition] = PartitionFeed(partition, start)
        self._last_read = time.monotonic()

    async def _revoked(self, partitions: list[int]) -> dict[int, int]:
        feeds = {p: self.feeds[p] for p in partitions if p in self.feeds}
        for feed in feeds.values():
            feed.revoked = True
        owned = [c for c in self.connections.values() if c.partition in feeds]
        deadline = time.monotonic() + self.options.revoke_grace_s
        while any(c.busy for c in owned) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        positions: dict[int, int] = {}
        for p, feed in feeds.items():
            position = feed.offsets.position()
            if position is not None and position > feed.offsets.committed:
                positions[p] = position
        for name in [n for n, c in self.connections.items() if c.partition in feeds]:
            connection = self.connections.pop(name)
            self.buffered_bytes -= sum(_size(r) for r in connection.pending)
            if connection.task is not None:
                connection.task.cancel()
        for p in feeds:
            del self.feeds[p]
        return positions

    def _dispatch(self, ready: Ready) -> None:
        connection = self.connections.get(ready.tx.conn)
        if connection is None:
            connection = self.connections[ready.tx.conn] = _Connection(ready.partition)
        connection.pending.append(ready)
        self.buffered_bytes += _size(ready)
        if connection.task is None:
            connection.task = asyncio.get_running_loop().create_task(self._drain(ready.tx.conn, connection))

    async def _drain(self, name: str, connection: _Connection) -> None:
        try:
            while connection.pending:
                ready = connection.pending[0]
                feed = self.feeds.get(ready.partition)
                if feed is None or feed.revoked:
                    return
                connection.busy = True
                try:
                    await self._replay(ready, feed)
                finally:
                    connection.busy = False
                connection.pending.popleft()
                self.buffered_bytes -= _size(ready)
        finally:
            connection.task = None
            if not connection.pending and self.connections.get(name) is connection:
                del self.connections[name]

    async def _wait_for_schedule(self, received_ns: int) -> None:
        if self.options.max_speed or not received_ns:
            return
        if self._clock is None:
            self._clock = (time.monotonic(), received_ns)
        start, first_ns = self._clock
        due = start + (received_ns - first_ns) / 1e9 / self.options.speedup_factor
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _replay(self, ready: Ready, feed: PartitionFeed) -> None:
        tx = ready.tx
        await self._wait_for_schedule(tx.timestamps.get("received", 0))
        result = ReplayedTransaction(tx.conn, tx.seq, ready.partition, ready.offset, None, None,
                                     tx.timestamps.get("received", 0), tx.timestamps.get("response_finished"))
        reason: str | None = None
        try:
            async with asyncio.timeout(self.options.transaction_timeout_s):
                reason = await self._send(tx.request, tx.response, result)
        except TimeoutError:
            reason = f"not finished after {self.options.transaction_timeout_s:g}s"
        except Exception as exc:  # a bug or an unexpected failure must not stall the partition's commits
            log.exception("connection %s #%s: replay failed", tx.conn, tx.seq)
            reason = f"replay failed: {type(exc).__name__}: {exc}"
        if reason is not None:
            result.error = result.error or reason
            result.dead_lettered = True
            self.stats.dead_letters += 1
            await asyncio.get_running_loop().run_in_executor(None, self.dead_letters.write, result, reason)
        comparison = self.compare(result) if self.compare is not None else None
        if comparison is not None:
            self.stats.comparisons[str(getattr(comparison, "kind", comparison))] += 1
        if self.tuples is not None:
            self.tuples.add(result, comparison)
        self.stats.transactions += 1
        if not feed.revoked:
            feed.offsets.finish((tx.conn, tx.seq))

    async def _send(self, raw_request: bytes, raw_response: bytes | None, result: ReplayedTransaction) -> str | None:
        """Send the transaction's request(s); the reason to dead-letter it, or None."""
        try:
            request = parse_request(raw_request)
        except Exception as exc:
            return f"captured request unreadable: {exc}"
        result.source_request = request
        source: HttpResponse | None = None
        if raw_response is not None:
            try:
                source = parse_response(raw_response, request_method=request.method)
            except Exception as exc:
                log.warning("connection %s #%s: captured response unreadable: %s", result.conn, result.seq, exc)
        else:
            self.stats.without_source_response += 1
        result.source_response = source
        pinned = pin_auto_ids(request, source)
        self.stats.auto_ids_pinned += pinned.pinned
        self.stats.auto_ids_unpinned += pinned.unpinned
        outcome = self.pipeline.apply(pinned.request)
        if outcome.error is not None:
            self.stats.transform_errors += 1
            result.error = outcome.error
            return f"transform failed: {outcome.error}"
        if not outcome.requests:
            self.stats.dropped_by_transform += 1
            return None
        deadline = time.monotonic() + self.options.transaction_timeout_s
        source_status = source.status if source is not None else None
        writes = changes_data(request.method, request.path)
        for outgoing in outcome.requests:
            exchange = await self.sender.send(outgoing, source_status=source_status, deadline=deadline)
            result.exchanges.append(exchange)
            self.stats.requests_sent += 1
            self.stats.retries += exchange.attempts - 1
            self.stats.bytes_sent += len(outgoing.body)
            if exchange.response is not None and exchange.response.status < 300:
                self.stats.documents += documents_in(outgoing.method, outgoing.segments, outgoing.body)
            if not writes:
                continue
            if exchange.response is None:
                return f"target unreachable: {exchange.error}"
            status = exchange.response.status
            if (status >= 400 and status not in _STATE_DEPENDENT and (source_status is None or source_status < 400)
                    and not _already_there(exchange)):
                return f"target answered {status} where the source answered {source_status}"
        return None

    # -- the main loop -------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish in-flight work, commit, leave the group (safe from a signal handler)."""
        self._stopping = True

    def status(self) -> dict[str, Any]:
        """What the status file holds."""
        return {
            "member": self.member, "group": self.options.group_id, "topic": self.options.topic, "pid": os.getpid(),
            "time": time.time(), "paused": self._paused, "buffered_bytes": self.buffered_bytes,
            "connections": len(self.connections),
            "partitions": {str(p): {"position": f.offsets.position(), "committed": f.offsets.committed,
                                    "unfinished": f.offsets.unfinished, "local_answers": f.counts.local_answers,
                                    "incomplete": f.counts.incomplete, "lost": f.counts.lost,
                                    "before_start": f.counts.before_start,
                                    "bad_records": f.counts.bad_records} for p, f in sorted(self.feeds.items())},
            "stats": self.stats.as_dict(), "dead_letters": self.dead_letters.location,
        }

    async def _commit(self, consumer: Consumer) -> None:
        positions = {}
        unread = []
        for p, feed in self.feeds.items():
            position = feed.offsets.position()
            if feed.revoked:
                continue
            if position is None:
                unread.append(p)
            elif position > feed.offsets.committed:
                positions[p] = position
        loop = asyncio.get_running_loop()
        if unread:
            # Nothing read there yet: the start the consumer resolved (a time after every record, say) is where
            # this partition stands, and committing it lets the group know the partition is done.
            fetched = await loop.run_in_executor(self._kafka, consumer.position,
                                                 [TopicPartition(self.options.topic, p) for p in unread])
            for tp in fetched:
                waiting = self.feeds.get(tp.partition)
                if waiting is not None and waiting.offsets.position() is None and tp.offset > waiting.offsets.committed:
                    positions[tp.partition] = tp.offset
        if not positions:
            return
        if not await loop.run_in_executor(self._kafka, self._commit_now, consumer, positions):
            return
        for p, position in positions.items():
            owned = self.feeds.get(p)
            if owned is not None and not owned.revoked:
                owned.offsets.committed = position

    async def _flow_control(self, consumer: Consumer) -> None:
        limit = self.options.max_buffered_bytes
        loop = asyncio.get_running_loop()
        if not self._paused and self.buffered_bytes > limit:
            self._paused = True
            await loop.run_in_executor(self._kafka, lambda: consumer.pause(consumer.assignment()))
        elif self._paused and self.buffered_bytes < limit // 2:
            self._paused = False
            await loop.run_in_executor(self._kafka, lambda: consumer.resume(consumer.assignment()))

    async def _idle(self, consumer: Consumer) -> bool:
        """Caught up: nothing read for ``exit_when_idle_s``, nothing in flight, everything committed, and the
        group's commits at the end of every partition of the topic."""
        idle_s = self.options.exit_when_idle_s
        if not (idle_s is not None and self.feeds and time.monotonic() - self._last_read > idle_s
                and not self.connections
                and all(f.offsets.unfinished == 0 and f.offsets.position() in (None, f.offsets.committed)
                        for f in self.feeds.values())):
            return False

        def at_end() -> bool:
            # The whole group caught up, not only this member: a partition whose member died is not done until the
            # group gave it to another one and that one committed its end.
            topic = self.options.topic
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            every = [TopicPartition(topic, p) for p in sorted(partitions)]
            for tp in consumer.committed(every, timeout=10):
                low, high = consumer.get_watermark_offsets(tp, timeout=10)
                if high > low and tp.offset < high:
                    return False
            return True

        return await asyncio.get_running_loop().run_in_executor(self._kafka, at_end)

    async def run(self) -> dict[str, Any]:
        """Replay until ``stop()`` (or idle); the final status."""
        self._loop = asyncio.get_running_loop()
        await self.sender.start()
        loop = self._loop
        consumer = await loop.run_in_executor(self._kafka, Consumer, self._consumer_config())
        self._consumer = consumer
        await loop.run_in_executor(self._kafka, lambda: consumer.subscribe(
            [self.options.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost))
        next_tick = time.monotonic()
        try:
            while not self._stopping:
                messages = await loop.run_in_executor(self._kafka, self._consume, consumer)
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.fatal():
                            raise KafkaException(error)
                        log.warning("kafka: %s", error)
                        continue
                    feed = self.feeds.get(message.partition() or 0)
                    offset = message.offset()
                    if feed is None or feed.revoked or offset is None:
                        continue
                    self._last_read = time.monotonic()
                    stamp = message.timestamp()[1]
                    for ready in feed.add(offset, message.value(), stamp):
                        self._dispatch(ready)
                # After every batch, not every tick: a backlog fills the buffer within one tick otherwise.
                await self._flow_control(consumer)
                if not messages:
                    await asyncio.sleep(0)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.options.commit_interval_s
                    for feed in self.feeds.values():
                        feed.expire(self.options.incomplete_timeout_s)
                    await self._commit(consumer)
                    if self.options.status_file:
                        write_status(self.options.status_file, self.status())
                    if await self._idle(consumer):
                        break
            await self._shutdown(consumer)
        finally:
            await self.sender.close()
            if self.tuples is not None:
                self.tuples.close()
            self._kafka.shutdown(wait=True)
        final = self.status()
        if self.options.status_file:
            write_status(self.options.status_file, final | {"finished": True})
        return final

    async def _shutdown(self, consumer: Consumer) -> None:
        deadline = time.monotonic() + self.options.revoke_grace_s
        while any(c.busy for c in self.connections.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for connection in self.connections.values():
            if connection.task is not None and not connection.busy:
                connection.task.cancel()
        await self._commit(consumer)
        for feed in self.feeds.values():
            feed.revoked = True
        await asyncio.get_running_loop().run_in_executor(self._kafka, consumer.close)


def _already_there(exchange: TargetExchange) -> bool:
    """An index (or template) creation the target refused because the metadata migration already made it: replaying
    the capture from before the snapshot meets these, and they leave nothing to do."""
    response = exchange.response
    return (response is not None and response.status == 400 and exchange.request.method == "PUT"
            and b"resource_already_exists_exception" in response.body)


def _bounded_malloc() -> None:
    """Large buffers (bulk bodies of a few hundred KB) allocated outside the heap, and returned to the system when
    freed: glibc otherwise raises its mmap threshold after the first ones are freed and serves later ones from
    heap arenas, whose fragmentation kept the process's memory at several times what it held."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    m_mmap_threshold, m_arena_max = -3, -8
    libc.mallopt(m_mmap_threshold, 128 * 1024)
    libc.mallopt(m_arena_max, 2)


def run_replayer(options: ReplayOptions, *, tuples: TupleSink | None = None,
                 compare: Callable[[ReplayedTransaction], Any] | None = None) -> dict[str, Any]:
    """Run a replayer in this process until SIGTERM/SIGINT (or idle); its final status."""
    import uvloop

    _bounded_malloc()

    replayer = Replayer(options, tuples=tuples, compare=compare)

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, replayer.stop)
        return await replayer.run()

    return uvloop.run(main())
