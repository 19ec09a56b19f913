"""Move one shard: snapshot -> bulk batches -> target, with a lease, checkpoints and dead letters."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any

from opensearchpy.exceptions import ConnectionError as ClientConnectionError
from opensearchpy.exceptions import TransportError

from workers.common.cluster_info import server_version
from workers.common.clusters import build_client
from workers.common.errors import MigrationError
from workers.documents.reader import ReadSummary, ShardPosition, open_shard
from workers.rfs.bulk import Batch, BulkItemBuilder, batches
from workers.rfs.checkpoints import CheckpointWriter
from workers.rfs.concurrency import AdaptiveLimit
from workers.rfs.coordination import WorkCoordinator
from workers.rfs.deadletter import DeadLetterStore, open_dead_letters
from workers.rfs.encode import EncodeCounts, shard_pieces
from workers.rfs.options import BackfillOptions
from workers.rfs.progress import Counters, Progress
from workers.rfs.sender import BatchOutcome, BulkResponseSerializer, BulkSender
from workers.snapshot.blobstore import BlobStore
from workers.snapshot.repository import SnapshotRepository


class TargetUnreachableError(MigrationError):
    """The target did not answer at start: nothing was read or written."""


@dataclass
class ShardResult:
    """The outcome of one shard run."""

    snapshot: str
    index: str
    shard: int
    status: str
    docs_written: int = 0
    bytes_written: int = 0
    retries: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    dead_letters_by_type: dict[str, int] = field(default_factory=dict)
    allowed_failures: int = 0
    concurrency: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    resumed_from: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None
    dead_letter_location: str = ""
    read: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for JSON output and Dagster metadata)."""
        return asdict(self)


def default_worker_id() -> str:
    """host:pid, unique enough to tell two running workers apart."""
    return f"{socket.gethostname()}:{os.getpid()}"


class _Checkpointer:
    """Turns out-of-order batch completions into a resume point: after the last batch of the acked prefix."""

    def __init__(self, writer: CheckpointWriter, docs: int, nbytes: int) -> None:
        self.writer = writer
        self.next_seq = 0
        self.done: dict[int, tuple[Batch, int, int]] = {}
        self.docs = docs
        self.bytes = nbytes
        self.position: ShardPosition | None = None

    def acknowledge(self, batch: Batch, docs: int, nbytes: int) -> None:
        self.done[batch.seq] = (batch, docs, nbytes)
        advanced = False
        while self.next_seq in self.done:
            acked, d, b = self.done.pop(self.next_seq)
            self.docs += d
            self.bytes += b
            self.position = ShardPosition(acked.last.segment, acked.last.doc + 1)
            self.next_seq += 1
            advanced = True
        if advanced and self.position is not None:
            self.writer.submit(self.position, self.docs, self.bytes)


def run_shard(store: BlobStore, snapshot: str, index: str, shard: int, options: BackfillOptions,
              progress: Progress | None = None, *, s3_endpoint: str | None = None,
              s3_region: str | None = None) -> ShardResult:
    """Backfill one shard; resumes from its checkpoint, does nothing for a completed shard unless forced."""
    began = time.monotonic()
    progress = progress or Progress()
    client = build_client(options.target, pool_maxsize=options.max_connections + 2, max_retries=0,
                          serializer=BulkResponseSerializer())
    try:
        server_version(client)
    except (ClientConnectionError, TransportError) as exc:
        raise TargetUnreachableError(f"cannot reach the target {options.target.redacted()}: "
                                     f"{getattr(exc, 'error', exc)}") from None
    coordinator = WorkCoordinator(client, options.coordination_index, options.worker_id or default_worker_id(),
                                  options.lease_seconds, snapshot, index, shard)
    coordinator.ensure_index()
    work = coordinator.acquire(force=options.force)
    result = ShardResult(snapshot, index, shard, "completed")
    if work.completed:
        result.status = "already-completed"
        result.docs_written, result.bytes_written = work.docs_written, work.bytes_written
        return result
    try:
        repo = SnapshotRepository(store)
        reader = open_shard(repo, snapshot, index, shard, verify_checksums=options.verify_checksums)
        dead = open_dead_letters(options.dead_letter, snapshot, index, shard, s3_endpoint=s3_endpoint,
                                 s3_region=s3_region)
        result.dead_letter_location = dead.location
        result.resumed_from = asdict(work.checkpoint) if work.checkpoint else None
        writer = CheckpointWriter(coordinator)
        checkpointer = _Checkpointer(writer, work.docs_written, work.bytes_written)
        counters = Counters()
        total = sum(p.live_count for p in reader.plans)
        progress.start(f"{snapshot}/{index}[{shard}]", total)
        encoded = EncodeCounts()
        pieces = shard_pieces(reader, work.checkpoint, BulkItemBuilder(options), native=options.native,
                              counts=encoded)
        limit = AdaptiveLimit(options.max_connections, adaptive=options.adaptive_concurrency)
        sender = BulkSender(client, options, limit=limit)
        context = {"snapshot": snapshot, "index": index, "shard": shard}
        try:
            _pump(batches(pieces, options), sender, limit, checkpointer, counters, dead, context, progress,
                  coordinator, options.lease_seconds)
        finally:
            writer.close()  # the last resume point is on the target before completion (or a failure) is recorded
        result.concurrency = {"max": limit.maximum, "highest": limit.highest, "lowest": limit.lowest,
                              "final": limit.limit, "cuts": limit.cuts}
        dead.close()
        read = reader.summary
        result.read = {"live": read.live, "deleted": read.deleted, "nested_skipped": read.nested_skipped,
                       "sourceless": read.sourceless, "sourceless_sample": read.sourceless_sample,
                       "segments": read.segments, "chunks_encoded_in_c": encoded.native_chunks,
                       "chunks_encoded_in_python": encoded.python_chunks}
        result.docs_written, result.bytes_written = checkpointer.docs, checkpointer.bytes
        result.retries, result.dead_letters = counters.retries, counters.dead_letters
        result.retry_reasons = dict(counters.retry_reasons)
        result.dead_letters_by_type = dict(counters.dead_by_type)
        result.allowed_failures = counters.allowed_failures
        result.checkpoint = asdict(checkpointer.position) if checkpointer.position else result.resumed_from
        result.seconds = round(time.monotonic() - began, 3)
        progress.finish(counters)
        coordinator.complete(checkpointer.docs, checkpointer.bytes, _summary(result, read))
        return result
    except BaseException:
        coordinator.release()
        raise


def _summary(result: ShardResult, read: ReadSummary) -> dict[str, Any]:
    return {"retries": result.retries, "dead_letters": result.dead_letters,
            "dead_letters_by_type": result.dead_letters_by_type, "sourceless": read.sourceless,
            "nested_skipped": read.nested_skipped, "seconds": result.seconds}


def _pump(work: Iterator[Batch], sender: BulkSender, limit: AdaptiveLimit, checkpointer: _Checkpointer,
          counters: Counters, dead: DeadLetterStore, context: dict[str, Any], progress: Progress,
          coordinator: WorkCoordinator, lease_seconds: float) -> None:
    """Keep up to ``limit.limit`` batches in flight; account for each as it completes."""
    renew_every = max(1.0, lease_seconds / 3)

    def settle(done: set[Future[BatchOutcome]]) -> None:
        for future in done:
            outcome = future.result()
            if outcome.rejected:
                dead.write(outcome.rejected, context)
                counters.dead_letters += len(outcome.rejected)
                for r in outcome.rejected:
                    counters.dead_by_type[r.error_type] = counters.dead_by_type.get(r.error_type, 0) + 1
            written_bytes = outcome.batch.size
            counters.docs += outcome.written
            counters.bytes += written_bytes
            counters.retries += outcome.retries
            for reason, n in outcome.retry_reasons.items():
                counters.retry_reasons[reason] = counters.retry_reasons.get(reason, 0) + n
            counters.allowed_failures += outcome.allowed_failures
            checkpointer.acknowledge(outcome.batch, outcome.written, written_bytes)
        progress.update(counters)

    with ThreadPoolExecutor(max_workers=limit.maximum, thread_name_prefix="bulk") as pool:
        in_flight: set[Future[BatchOutcome]] = set()
        try:
            for batch in work:
                while len(in_flight) >= limit.limit:
                    done, in_flight = wait(in_flight, timeout=renew_every, return_when=FIRST_COMPLETED)
                    settle(done)
                    if not done:
                        coordinator.renew()  # a slow target: keep the lease while waiting
                in_flight.add(pool.submit(sender.send, batch))
            while in_flight:
                done, in_flight = wait(in_flight, timeout=renew_every, return_when=FIRST_COMPLETED)
                settle(done)
                if not done:
                    coordinator.renew()
        except BaseException:
            for future in in_flight:
                future.cancel()
            raise
