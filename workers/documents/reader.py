"""Every live document of a snapshot, read from its Lucene files: (index, id, type, routing, source bytes)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from workers.common.errors import MigrationError
from workers.documents.uid import decode_id, split_uid
from workers.lucene.segment_reader import SegmentPlan, live_chunk_documents, plan_commit, stored_chunks, wanted_numbers
from workers.lucene.segments import read_segment_infos
from workers.lucene.stored_fields import StoredChunk
from workers.snapshot.blobstore import BlobStore
from workers.snapshot.repository import IndexMetadata, SnapshotRepository
from workers.snapshot.shard_directory import ShardDirectory
from workers.snapshot.verification import BackgroundVerifier

WANTED_FIELDS = ("_id", "_uid", "_routing", "_source", "_recovery_source")
SAMPLE_SIZE = 10


@dataclass(frozen=True)
class SnapshotDocument:
    """One live document."""

    index: str
    id: str
    type: str | None
    routing: str | None
    source: bytes


@dataclass(frozen=True, order=True)
class ShardPosition:
    """A document's place in a shard snapshot: segment name (segments are read in name order) and number."""

    segment: str
    doc: int


@dataclass
class ReadSummary:
    """Counts of one read: live documents emitted and what was left out, and why."""

    live: int = 0
    deleted: int = 0
    nested_skipped: int = 0
    sourceless: int = 0
    sourceless_sample: list[str] = field(default_factory=list)
    recovered_source: int = 0
    segments: int = 0
    source_bytes: int = 0

    def add(self, other: ReadSummary) -> None:
        """Fold another summary (another shard) into this one."""
        self.live += other.live
        self.deleted += other.deleted
        self.nested_skipped += other.nested_skipped
        self.sourceless += other.sourceless
        self.recovered_source += other.recovered_source
        self.segments += other.segments
        self.source_bytes += other.source_bytes
        room = SAMPLE_SIZE - len(self.sourceless_sample)
        self.sourceless_sample.extend(other.sourceless_sample[:room])


@dataclass
class ShardReader:
    """One shard of one snapshot, opened and planned: every small file decoded up front.

    With a ``verifier`` (checksums verified alongside reading), each segment's documents wait for its files to be
    verified, and the read ends only once every file of the shard is.
    """

    index: str
    shard: int
    metadata: IndexMetadata
    plans: list[SegmentPlan]
    summary: ReadSummary
    verifier: BackgroundVerifier | None = None
    _numbers: dict[str, dict[int, str]] = field(default_factory=dict, repr=False)

    def close(self) -> None:
        """Stop the checksum pass of a read given up before its end (nothing to do otherwise)."""
        if self.verifier is not None:
            self.verifier.stop()

    def documents(self) -> Iterator[SnapshotDocument]:
        """The live documents, segment by segment in name order."""
        for _position, doc in self.positioned():
            yield doc

    def positioned(self, start: ShardPosition | None = None) -> Iterator[tuple[ShardPosition, SnapshotDocument]]:
        """(position, document) for every live document at or after ``start`` (a checkpoint), in order."""
        for plan, chunk, start_doc in self.chunks(start):
            yield from self.chunk_documents(plan, chunk, start_doc)

    def chunks(self, start: ShardPosition | None = None) -> Iterator[tuple[SegmentPlan, StoredChunk, int]]:
        """(segment, stored-fields chunk, first document wanted) for every chunk holding documents at or after
        ``start``; ``chunk_documents`` decodes one (a caller may decode the common shape itself)."""
        first = 0
        if start is not None:
            names = [p.name for p in self.plans]
            if start.segment not in names:
                raise MigrationError(
                    f"index {self.index} shard {self.shard}: checkpoint segment {start.segment} is not in this "
                    f"snapshot's commit (segments {', '.join(names)}): the checkpoint is from another snapshot"
                )
            first = names.index(start.segment)
        for ordinal in range(first, len(self.plans)):
            plan = self.plans[ordinal]
            start_doc = start.doc if start is not None and ordinal == first else 0
            if self.verifier is not None:
                self.verifier.wait_for(plan.name)
            if start_doc == 0:
                self.summary.deleted += plan.info.max_doc - plan.live_count
            for chunk in stored_chunks(plan):
                if chunk.doc_base + len(chunk.lengths) > start_doc:
                    yield plan, chunk, start_doc
        if self.verifier is not None:
            self.verifier.wait_all()

    def chunk_documents(self, plan: SegmentPlan, chunk: StoredChunk,
                        start_doc: int = 0) -> Iterator[tuple[ShardPosition, SnapshotDocument]]:
        """(position, document) for the chunk's live documents from ``start_doc`` on."""
        typed = self.metadata.type_name
        summary = self.summary
        index = self.index
        numbers = self._numbers.get(plan.name)
        if numbers is None:
            numbers = self._numbers[plan.name] = wanted_numbers(plan, WANTED_FIELDS)
        for number, values in live_chunk_documents(plan, chunk, numbers, start_doc):
            # The common case inline (one call per document matters here): a binary _id and a _source.
            raw_id = values.get("_id")
            source = values.get("_source")
            if raw_id is not None and source is not None and typed is None:
                routing = values.get("_routing")
                body = source if isinstance(source, bytes) else source.encode()
                summary.live += 1
                summary.source_bytes += len(body)
                yield ShardPosition(plan.name, number), SnapshotDocument(
                    index, decode_id(raw_id) if isinstance(raw_id, bytes) else raw_id, None,
                    routing if isinstance(routing, str) else None, body)
                continue
            doc = self._document(values, typed)
            if doc is not None:
                yield ShardPosition(plan.name, number), doc

    def _document(self, values: dict[str, bytes | str], typed: str | None) -> SnapshotDocument | None:
        raw_id = values.get("_id")
        type_name = typed
        if raw_id is None:
            uid = values.get("_uid")
            if uid is None:
                # Nested children store no id (and no source): they travel inside their parent's source.
                self.summary.nested_skipped += 1
                return None
            type_name, doc_id = split_uid(str(uid))
        else:
            doc_id = decode_id(raw_id) if isinstance(raw_id, bytes) else raw_id
        source = values.get("_source")
        if source is None and values.get("_recovery_source") is not None:
            source = values["_recovery_source"]
            self.summary.recovered_source += 1
        if source is None:
            self.summary.sourceless += 1
            if len(self.summary.sourceless_sample) < SAMPLE_SIZE:
                self.summary.sourceless_sample.append(doc_id)
            return None
        routing = values.get("_routing")
        body = source if isinstance(source, bytes) else source.encode()
        self.summary.live += 1
        self.summary.source_bytes += len(body)
        return SnapshotDocument(self.index, doc_id, type_name, str(routing) if routing is not None else None, body)


def open_shard(repo: SnapshotRepository, snapshot: str, index: str, shard: int, *,
               verify_checksums: bool = True, verify_alongside: bool = False) -> ShardReader:
    """Open one shard: its file list, checksums (optional), commit and every segment's small files.

    Checksums are verified before anything is decoded, or with ``verify_alongside`` on a thread while the
    documents are read (only the commit file first): a reader then never yields a document of a segment whose
    files are not verified yet, but may yield the documents of earlier segments before a damaged file is found.
    """
    shard_snapshot = repo.shard_snapshot(snapshot, index, shard)
    directory = ShardDirectory(repo.store, shard_snapshot)
    commit_file = shard_snapshot.segments_file
    verifier = None
    if verify_checksums and not verify_alongside:
        directory.verify_all()
    elif verify_checksums:
        directory.verify(commit_file)
    infos = read_segment_infos(directory.open(commit_file.physical_name))
    if verify_checksums and verify_alongside:
        rest = [f for f in shard_snapshot.files if f.physical_name != commit_file.physical_name]
        verifier = BackgroundVerifier(directory, rest, [s.name for s in infos.segments])
    try:
        plans = plan_commit(directory, infos)
    except Exception:
        if verifier is None:
            raise
        # A small file that failed to decode may be damaged: its checksum error says so, and names it.
        try:
            verifier.wait_all()
        finally:
            verifier.stop()
        raise
    summary = ReadSummary(segments=len(plans))
    return ShardReader(index, shard, repo.index_metadata(snapshot, index), plans, summary, verifier)


def read_snapshot_documents(store: BlobStore, snapshot: str, index: str | None = None, shard: int | None = None,
                            summary: ReadSummary | None = None) -> Iterator[SnapshotDocument]:
    """Every live document of a snapshot, or of one index, or of one shard."""
    repo = SnapshotRepository(store)
    indices = [repo.index(snapshot, index).name] if index else [i.name for i in repo.indices(snapshot)]
    for name in indices:
        meta = repo.index_metadata(snapshot, name)
        shards = [shard] if shard is not None else list(range(meta.number_of_shards))
        for s in shards:
            reader = open_shard(repo, snapshot, name, s)
            yield from reader.documents()
            if summary is not None:
                summary.add(reader.summary)
