"""Move shards: snapshot -> bulk batches -> target, each shard with a lease, checkpoints and dead letters.

One shard is what a workflow partition runs. Several shards of one index can also go through one run, one after
another, sharing the connections and the in-flight limit (the next shard's requests follow the previous shard's
without a pause, at the limit the target allowed it); each keeps its own lease, checkpoints and completion record.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as ClientConnectionError
from opensearchpy.exceptions import SSLError, TransportError

from workers.common.cluster_info import server_version
from workers.common.clusters import build_client
from workers.common.connection_check import tls_reason
from workers.common.errors import MigrationError
from workers.documents.reader import ReadSummary, ShardPosition, ShardReader, open_shard
from workers.rfs.bulk import Batch, BulkItemBuilder, Piece, batches
from workers.rfs.checkpoints import CheckpointWriter
from workers.rfs.concurrency import AdaptiveLimit
from workers.rfs.coordination import (
    LeaseHeldError,
    ShardIdentity,
    WorkCoordinator,
    stale_reason,
    target_index_uuids,
)
from workers.rfs.deadletter import DeadLetterStore, open_dead_letters
from workers.rfs.encode import EncodeCounts, shard_pieces
from workers.rfs.fingerprints import ShardFingerprints, recorded_fingerprints
from workers.rfs.naming import TargetNames
from workers.rfs.options import BackfillOptions, ShardWorkerRequest
from workers.rfs.progress import Counters, Progress
from workers.rfs.sender import BatchOutcome, BulkResponseSerializer, BulkSender
from workers.rfs.status import ShardOutcome
from workers.snapshot.blobstore import BlobStore, open_blob_store
from workers.snapshot.repository import SnapshotRepository

log = logging.getLogger("workers.rfs")


class TargetUnreachableError(MigrationError):
    """The target did not answer at start: nothing was read or written."""


class TargetTLSError(TargetUnreachableError):
    """The target answered, but TLS with it failed (its certificate not trusted, say): nothing was written."""


@dataclass
class ShardResult:
    """The outcome of one shard run."""

    snapshot: str
    index: str
    shard: int
    status: ShardOutcome
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
    # What the record is about beyond names (see coordination.py): the snapshot's UUID, each target index's UUID.
    snapshot_uuid: str = ""
    target_uuids: dict[str, str | None] = field(default_factory=dict)
    # Why a recorded completion or checkpoint was not trusted and the shard ran from its start (None otherwise).
    restarted_because: str | None = None
    # Per target index: documents and content digest of what the shard sent (workers/rfs/fingerprints.py); empty when
    # fingerprinting is off or the shard resumed from a checkpoint that kept none. The 256 buckets stay in the
    # coordination record (too big for a result line).
    fingerprints: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for JSON output and Dagster metadata)."""
        return {**asdict(self), "status": self.status.value}


def default_worker_id() -> str:
    """host:pid, unique enough to tell two running workers apart."""
    return f"{socket.gethostname()}:{os.getpid()}"


class _Checkpointer:
    """Turns out-of-order batch completions into a resume point: after the last batch of the acked prefix."""

    def __init__(self, writer: CheckpointWriter, docs: int, nbytes: int,
                 fingerprints: ShardFingerprints | None = None) -> None:
        self.writer = writer
        # Counted in with the acked prefix, so a checkpoint's fingerprint covers exactly the documents before it.
        self.fingerprints = fingerprints
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
            if self.fingerprints is not None:
                self.fingerprints.add_batch(acked)
            self.docs += d
            self.bytes += b
            self.position = ShardPosition(acked.last.segment, acked.last.doc + 1)
            self.next_seq += 1
            advanced = True
        if advanced and self.position is not None:
            self.writer.submit(self.position, self.docs, self.bytes, self.fingerprint())

    def fingerprint(self) -> dict[str, Any] | None:
        """The fingerprints of the acknowledged documents, as records keep them (None when not kept)."""
        return self.fingerprints.to_dict() if self.fingerprints is not None else None


@dataclass(frozen=True)
class _Source:
    """Where the shards come from, and what every shard run of one call shares."""

    repo: SnapshotRepository
    snapshot: str
    index: str
    options: BackfillOptions
    client: OpenSearch
    worker_id: str
    names: TargetNames
    identity: ShardIdentity  # as read at the start of the run (one request for the target UUIDs)


def shard_identity(client: OpenSearch, repo: SnapshotRepository, snapshot: str, index: str,
                   options: BackfillOptions) -> tuple[TargetNames, ShardIdentity]:
    """Where the index's documents go, and the identity its shards' records carry: the snapshot's UUID from the
    repository data and the UUIDs of those target indices now (one request)."""
    names = TargetNames.of_index(options.rename, options.type_mode, repo.index_metadata(snapshot, index).mappings)
    return names, ShardIdentity(repo.snapshot(snapshot).uuid, target_index_uuids(client, names.every(index)))


class _ShardRun:
    """One shard within a run: its lease, reader, batches, checkpoints, dead letters and counters."""

    # Set by open(), once the shard has work to do.
    reader: ShardReader
    dead: DeadLetterStore
    writer: CheckpointWriter
    checkpointer: _Checkpointer
    pieces: Iterator[Piece]

    def __init__(self, source: _Source, shard: int) -> None:
        self.began = time.monotonic()
        self.source = source
        self.shard = shard
        self.result = ShardResult(source.snapshot, source.index, shard, ShardOutcome.COMPLETED,
                                  snapshot_uuid=source.identity.snapshot_uuid,
                                  target_uuids=dict(source.identity.target_uuids))
        self.coordinator = WorkCoordinator(source.client, source.options.coordination_index, source.worker_id,
                                           source.options.lease_seconds, source.snapshot, source.index, shard,
                                           identity=source.identity)
        self.counters = Counters()
        self.encoded = EncodeCounts()
        self.total = 0
        self.context = {"snapshot": source.snapshot, "snapshot_uuid": source.identity.snapshot_uuid,
                        "index": source.index, "shard": shard}

    @property
    def label(self) -> str:
        return f"{self.source.snapshot}/{self.source.index}[{self.shard}]"

    def open(self) -> bool:
        """Take the lease and open the shard's files (its checksum pass starts); False when there is nothing to do.

        Raises LeaseHeldError when another worker holds the shard, and releases the lease on any other failure.
        """
        src, options = self.source, self.source.options
        work = self.coordinator.acquire(force=options.force)
        if work.completed:
            self.result.status = ShardOutcome.ALREADY_COMPLETED
            self.result.docs_written, self.result.bytes_written = work.docs_written, work.bytes_written
            return False
        if work.restarted_because:
            log.warning("%s: %s; backfilling it again from the start", self.label, work.restarted_because)
            self.result.restarted_because = work.restarted_because
        try:
            # Checksums are verified on a thread while the documents go out, each segment's files before its
            # first document: verifying the whole shard first kept the target idle for seconds per shard.
            self.reader = open_shard(src.repo, src.snapshot, src.index, self.shard,
                                     verify_checksums=options.verify_checksums, verify_alongside=True)
            self.dead = open_dead_letters(options.dead_letter, src.snapshot, src.index, self.shard,
                                          snapshot_uuid=src.identity.snapshot_uuid,
                                          s3_endpoint=options.dead_letter_s3_endpoint,
                                          s3_region=options.dead_letter_s3_region)
            self.result.dead_letter_location = self.dead.location
            self.result.resumed_from = asdict(work.checkpoint) if work.checkpoint else None
            self.writer = CheckpointWriter(self.coordinator)
            self.checkpointer = _Checkpointer(self.writer, work.docs_written, work.bytes_written,
                                              self._fingerprints(work.checkpoint is not None, work.raw))
            self.total = sum(p.live_count for p in self.reader.plans)
            builder = BulkItemBuilder(options, src.names)
            self.coordinator.written_names = lambda: frozenset(builder.targets)
            self.pieces = shard_pieces(self.reader, work.checkpoint, builder, native=options.native,
                                       counts=self.encoded)
        except BaseException:
            if hasattr(self, "reader"):
                self.reader.close()
            self.coordinator.release()
            raise
        return True

    def _fingerprints(self, resumed: bool, raw: dict[str, Any]) -> ShardFingerprints | None:
        """Where this run's fingerprints start: empty, or those of the checkpoint it resumes from (None when off, or
        when the checkpoint kept none: a partial fingerprint would only ever show a difference)."""
        if not self.source.options.fingerprint:
            return None
        if not resumed:
            return ShardFingerprints()
        found = recorded_fingerprints(raw)
        if found is None:
            log.warning("%s: its checkpoint holds no content fingerprint, so none is recorded for this shard; the "
                        "validation report re-reads it from the snapshot", self.label)
        return found

    def batches(self) -> Iterator[Batch]:
        return batches(self.pieces, self.source.options)

    def account(self, outcome: BatchOutcome, total: Counters) -> None:
        """Count one finished batch (here and in the run's totals) and move the resume point."""
        if outcome.rejected:
            self.dead.write(outcome.rejected, self.context, self.coordinator.target_uuids)
        for c in (self.counters, total):
            c.docs += outcome.written
            c.bytes += outcome.batch.size
            c.retries += outcome.retries
            c.dead_letters += len(outcome.rejected)
            c.allowed_failures += outcome.allowed_failures
            for r in outcome.rejected:
                c.dead_by_type[r.error_type] = c.dead_by_type.get(r.error_type, 0) + 1
            for reason, n in outcome.retry_reasons.items():
                c.retry_reasons[reason] = c.retry_reasons.get(reason, 0) + n
        self.checkpointer.acknowledge(outcome.batch, outcome.written, outcome.batch.size)

    def complete(self, limit: AdaptiveLimit) -> ShardResult:
        """Once every batch is acknowledged: record the shard as completed (after its last resume point) and fill
        its result in."""
        try:
            self.writer.close()  # the last resume point is on the target before completion is recorded
            self.dead.close()
            result, c, read = self.result, self.counters, self.reader.summary
            # The limit is shared by the shards of a run: these cover the run up to this shard's end.
            result.concurrency = {"max": limit.maximum, "highest": limit.highest, "lowest": limit.lowest,
                                  "final": limit.limit, "cuts": limit.cuts}
            result.read = {"live": read.live, "deleted": read.deleted, "nested_skipped": read.nested_skipped,
                           "sourceless": read.sourceless, "sourceless_sample": read.sourceless_sample,
                           "segments": read.segments, "chunks_encoded_in_c": self.encoded.native_chunks,
                           "chunks_encoded_in_python": self.encoded.python_chunks}
            result.docs_written, result.bytes_written = self.checkpointer.docs, self.checkpointer.bytes
            result.retries, result.dead_letters = c.retries, c.dead_letters
            result.retry_reasons, result.dead_letters_by_type = dict(c.retry_reasons), dict(c.dead_by_type)
            result.allowed_failures = c.allowed_failures
            position = self.checkpointer.position
            result.checkpoint = asdict(position) if position else result.resumed_from
            result.seconds = round(time.monotonic() - self.began, 3)
            fingerprint = self.checkpointer.fingerprint()
            self.coordinator.complete(self.checkpointer.docs, self.checkpointer.bytes, _summary(result, read),
                                      fingerprint)
            if self.checkpointer.fingerprints is not None:
                result.fingerprints = {name: {"documents": fp.count, "digest": fp.digest}
                                       for name, fp in sorted(self.checkpointer.fingerprints.by_index.items())}
            result.target_uuids = dict(self.coordinator.target_uuids)
        except BaseException:
            self.coordinator.release()
            raise
        return result

    def abandon(self) -> None:
        """After a failure: save the last resume point if possible and give the lease up."""
        self.reader.close()
        try:
            # Saving fails on a lost lease or an unreachable target; the release is tried all the same.
            with contextlib.suppress(Exception):
                self.writer.close()
        finally:
            self.coordinator.release()


def _summary(result: ShardResult, read: ReadSummary) -> dict[str, Any]:
    return {"retries": result.retries, "dead_letters": result.dead_letters,
            "dead_letters_by_type": result.dead_letters_by_type, "sourceless": read.sourceless,
            "nested_skipped": read.nested_skipped, "seconds": result.seconds}


def recorded_completion(store: BlobStore, snapshot: str, index: str, shard: int,
                        options: BackfillOptions) -> tuple[ShardResult | None, str | None]:
    """The worker's rule for a completed shard, read only (no lease taken, nothing written).

    ``(result, None)``, outcome ``already-completed``, when the shard's coordination record is a completion of this
    snapshot (same UUID) into the target indices there now (same UUIDs): what ``run_shard`` would report. Otherwise
    ``(None, reason)``: why a recorded completion does not count (``stale_reason``), or None when there is none.
    """
    client = build_client(options.target)
    repo = SnapshotRepository(store)
    _names, identity = shard_identity(client, repo, snapshot, index, options)
    work = WorkCoordinator(client, options.coordination_index, options.worker_id or default_worker_id(),
                           options.lease_seconds, snapshot, index, shard).read()
    if work is None or not work.completed:
        return None, None
    reason = None if options.force else stale_reason(work.raw, identity)
    if options.force or reason is not None:
        return None, reason or "forced"
    return ShardResult(snapshot, index, shard, ShardOutcome.ALREADY_COMPLETED, docs_written=work.docs_written,
                       bytes_written=work.bytes_written, snapshot_uuid=identity.snapshot_uuid,
                       target_uuids=dict(identity.target_uuids)), None


def request_completion(request: ShardWorkerRequest) -> tuple[ShardResult | None, str | None]:
    """``recorded_completion`` of the shard a worker request names (what the asset asks before starting a worker)."""
    source = request.source
    store = open_blob_store(source.repo, s3_endpoint=source.s3_endpoint, s3_region=source.s3_region)
    return recorded_completion(store, source.snapshot, request.index, request.shard, request.options)


def run_shard(store: BlobStore, snapshot: str, index: str, shard: int, options: BackfillOptions,
              progress: Progress | None = None) -> ShardResult:
    """Backfill one shard; resumes from its checkpoint, does nothing for a completed shard unless forced.

    Raises LeaseHeldError when another worker holds the shard's lease.
    """
    return run_shards(store, snapshot, index, [shard], options, progress)[0]


def run_shards(store: BlobStore, snapshot: str, index: str, shards: Sequence[int], options: BackfillOptions,
               progress: Progress | None = None, *, skip_leased: bool = False) -> list[ShardResult]:
    """Backfill shards of one index one after another, sharing connections and the in-flight limit; one result per
    shard.

    Each shard keeps its own lease, checkpoints and completion record, exactly as when run alone. A shard leased
    by another worker raises LeaseHeldError, or with ``skip_leased`` is left to that worker (outcome
    ``ShardOutcome.LEASED_ELSEWHERE``). On a failure (a damaged file, a lost lease, a target refusing), the shards
    completed so far stay completed (the one before the failing shard once its last requests are back), the failing one
    keeps its last checkpoint and is released, the later ones are not started, and the error is raised.
    """
    if not shards:
        raise MigrationError("no shard to backfill")
    if len(set(shards)) != len(shards):
        raise MigrationError(f"shards {_shard_list(shards)}: a shard is listed twice")
    progress = progress or Progress()
    client = build_client(options.target, pool_maxsize=options.max_connections + 2, max_retries=0,
                          serializer=BulkResponseSerializer())
    try:
        server_version(client)
    except SSLError as exc:
        raise TargetTLSError(f"TLS with the target {options.target.redacted()} failed: {tls_reason(exc)}; give "
                             "its CA with --target-ca-cert (workflow: target.tls.ca_file), or turn verification "
                             "off with --target-insecure (target.tls.verify: false)") from None
    except (ClientConnectionError, TransportError) as exc:
        raise TargetUnreachableError(f"cannot reach the target {options.target.redacted()}: "
                                     f"{getattr(exc, 'error', exc)}") from None
    repo = SnapshotRepository(store)
    names, identity = shard_identity(client, repo, snapshot, index, options)
    source = _Source(repo, snapshot, index, options, client, options.worker_id or default_worker_id(), names,
                     identity)
    runs = [_ShardRun(source, shard) for shard in shards]
    runs[0].coordinator.ensure_index()
    pump = _Pump(client, options, progress, f"{snapshot}/{index}[{_shard_list(shards)}]")
    return pump.run(runs, skip_leased)


def _shard_list(shards: Sequence[int]) -> str:
    return ",".join(str(s) for s in shards)


class _Pump:
    """Keeps up to ``limit.limit`` batches in flight, shard after shard; accounts for each as it ends.

    The next shard's batches go out while the previous shard's last requests are still in flight (opening a shard
    reads only its commit and small files; its checksum pass runs alongside), so the target is not left to drain
    and ramp up again between shards. A shard is completed once all its batches are back.
    """

    def __init__(self, client: OpenSearch, options: BackfillOptions, progress: Progress, label: str) -> None:
        self.limit = AdaptiveLimit(options.max_connections, adaptive=options.adaptive_concurrency)
        self.sender = BulkSender(client, options, limit=self.limit)
        self.progress = progress
        self.label = label
        self.renew_every = max(1.0, options.lease_seconds / 3)
        self.in_flight: dict[Future[BatchOutcome], _ShardRun] = {}
        self.open: list[_ShardRun] = []  # opened, not yet completed, in order
        self.sending: _ShardRun | None = None  # the one whose batches are being read
        self.total = Counters()
        self.results: dict[int, ShardResult] = {}
        self.several = False
        self.reporting = False  # progress started

    def run(self, runs: list[_ShardRun], skip_leased: bool) -> list[ShardResult]:
        self.several = len(runs) > 1
        with ThreadPoolExecutor(max_workers=self.limit.maximum, thread_name_prefix="bulk") as pool:
            try:
                for run in runs:
                    if not self._open(run, skip_leased):
                        continue
                    self.open.append(run)
                    self.sending = run
                    for batch in run.batches():
                        self._wait(lambda: len(self.in_flight) >= self.limit.limit)
                        self.in_flight[pool.submit(self.sender.send, batch)] = run
                    self.sending = None
                    self._complete_finished()
                self._wait(lambda: bool(self.in_flight))
            except BaseException as exc:
                if isinstance(exc, Exception):
                    self._settle()
                for future in self.in_flight:
                    future.cancel()
                for run in self.open:
                    run.abandon()
                raise
        if self.reporting:
            self.progress.finish(self.total)
        return [self.results[r.shard] for r in runs]

    def _open(self, run: _ShardRun, skip_leased: bool) -> bool:
        """Open the shard; True when it has documents to send."""
        try:
            opened = run.open()
        except LeaseHeldError as exc:
            if not skip_leased:
                raise
            log.warning("%s: %s; left to that worker", run.label, exc)
            self.results[run.shard] = ShardResult(run.source.snapshot, run.source.index, run.shard,
                                                  ShardOutcome.LEASED_ELSEWHERE)
            return False
        if not opened:
            self.results[run.shard] = run.result
            if self.several:
                log.info("%s: already completed (%d documents written)", run.label, run.result.docs_written)
            return False
        if not self.reporting:
            self.progress.start(self.label, run.total)
            self.reporting = True
        else:
            self.progress.extend(run.label, run.total)
        return True

    def _wait(self, busy: Callable[[], bool]) -> None:
        """Settle finished requests until ``busy()`` turns false, completing each shard whose batches are all
        back; keeps the open shards' leases renewed."""
        while busy():
            done, _ = wait(self.in_flight, timeout=self.renew_every, return_when=FIRST_COMPLETED)
            for future in done:
                self.in_flight.pop(future).account(future.result(), self.total)
            if done:
                self.progress.update(self.total)
                self._complete_finished()
            for run in self.open:
                if time.monotonic() - run.coordinator.last_write >= self.renew_every:
                    run.coordinator.renew()  # a slow target: keep the lease while waiting

    def _settle(self) -> None:
        """After a failure (a damaged file, say): let the requests in flight come back, so that the shard before
        the failing one is completed rather than left a few batches short, and the failing one's checkpoint covers
        all it sent. Their own errors are dropped: the failure being raised is the one to report."""
        while self.in_flight:
            with contextlib.suppress(Exception):
                self._wait(lambda: bool(self.in_flight))

    def _complete_finished(self) -> None:
        """Complete the open shards that are no longer being read and have no request in flight."""
        busy = set(map(id, self.in_flight.values()))
        for run in [r for r in self.open if r is not self.sending and id(r) not in busy]:
            self.open.remove(run)
            self._complete(run)

    def _complete(self, run: _ShardRun) -> None:
        result = run.complete(self.limit)
        self.results[run.shard] = result
        if self.several:
            log.info("%s: completed, %d documents written, %d dead letters in %.1fs", run.label,
                     result.docs_written, result.dead_letters, result.seconds)
