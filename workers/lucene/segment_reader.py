"""Per segment: what is live (hard and soft deletes applied) and the stored fields of those documents."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from workers.lucene.codec import base36
from workers.lucene.compound import CompoundDirectory
from workers.lucene.doc_values import soft_deleted_docs
from workers.lucene.errors import LuceneFormatError
from workers.lucene.field_infos import FieldInfos, read_field_infos
from workers.lucene.live_docs import read_live_docs
from workers.lucene.segment_info import SegmentInfo, read_segment_info
from workers.lucene.segments import SegmentCommitInfo, SegmentInfos
from workers.lucene.store import Directory
from workers.lucene.stored_fields import StoredChunk, StoredFieldsReader
from workers.lucene.stored_fields.fields import wanted_fields


@dataclass
class SegmentPlan:
    """Everything decoded about a segment before its documents are read."""

    commit: SegmentCommitInfo
    info: SegmentInfo
    fields: FieldInfos
    files: Directory
    live: bytes | None
    soft_deleted: bytearray | None
    stored: StoredFieldsReader | None

    @property
    def name(self) -> str:
        """The segment name (``_0``)."""
        return self.commit.name

    @property
    def live_count(self) -> int:
        """Documents neither hard- nor soft-deleted (nested children included)."""
        return self.info.max_doc - self.commit.del_count - self.commit.soft_del_count


def plan_segment(directory: Directory, commit: SegmentCommitInfo) -> SegmentPlan:
    """Read a segment's small files (.si, .cfe, .fnm, .liv, soft deletes, stored-fields headers)."""
    info = read_segment_info(directory.open(f"{commit.name}.si"), commit.name)
    files: Directory = directory
    if info.is_compound:
        files = CompoundDirectory(commit.name, directory.open(f"{commit.name}.cfe"),
                                  directory.open(f"{commit.name}.cfs"), directory)
    gen = commit.field_infos_gen
    fnm = f"{commit.name}_{base36(gen)}.fnm" if gen != -1 else f"{commit.name}.fnm"
    fields = read_field_infos(files.open(fnm))
    live = None
    if commit.del_gen != -1:
        live = read_live_docs(files.open(f"{commit.name}_{base36(commit.del_gen)}.liv"), info.max_doc,
                              commit.del_count)
    soft = None
    if commit.soft_del_count > 0:
        soft = soft_deleted_docs(files, commit.name, fields, info.max_doc)
        found = sum(
            1 for d in range(info.max_doc)
            if (soft[d >> 3] >> (d & 7)) & 1 and (live is None or (live[d >> 3] >> (d & 7)) & 1)
        )
        if found < commit.soft_del_count:
            raise LuceneFormatError(
                f"segment {commit.name}: {found} soft-deleted documents found, the commit says {commit.soft_del_count}"
            )
    fully_deleted = commit.del_count + commit.soft_del_count >= info.max_doc
    stored = None if fully_deleted or info.max_doc == 0 else StoredFieldsReader(files, commit.name, info.max_doc)
    return SegmentPlan(commit, info, fields, files, live, soft, stored)


def plan_commit(directory: Directory, infos: SegmentInfos) -> list[SegmentPlan]:
    """Plan every segment of a commit, in name order (a stable order for resuming)."""
    return [plan_segment(directory, commit) for commit in infos.segments]


def wanted_numbers(plan: SegmentPlan, wanted: tuple[str, ...]) -> dict[int, str]:
    """Field number to name, for the ``wanted`` fields this segment has."""
    return {n: name for n, name in plan.fields.names().items() if name in wanted}


def stored_chunks(plan: SegmentPlan) -> Iterator[StoredChunk]:
    """The segment's stored-fields chunks, deleted documents included."""
    if plan.stored is not None:
        yield from plan.stored.chunks()


def live_chunk_documents(plan: SegmentPlan, chunk: StoredChunk, numbers: dict[int, str],
                         start_doc: int = 0) -> Iterator[tuple[int, dict[str, bytes | str]]]:
    """(document number, wanted fields) of the chunk's live documents from ``start_doc`` on."""
    where = plan.stored.fdt.name if plan.stored is not None else plan.name
    live, soft = plan.live, plan.soft_deleted
    view = memoryview(chunk.data)
    offset = 0
    doc = chunk.doc_base
    for count, length in zip(chunk.fields, chunk.lengths, strict=True):
        data = view[offset : offset + length]
        offset += length
        if doc >= start_doc and (live is None or (live[doc >> 3] >> (doc & 7)) & 1) and (
                soft is None or not (soft[doc >> 3] >> (doc & 7)) & 1):
            yield doc, wanted_fields(data, count, numbers, where)
        doc += 1

