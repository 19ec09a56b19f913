"""The checksum pass run alongside reading: no document from an unverified segment, every file verified by the end.

On the real Elasticsearch 7.10 sample snapshot, whose shard 0 holds two compound segments: ``_0`` (one document)
and ``_1`` (two), read in that order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workers.snapshot.test_corruption import copy_fixture
from workers.documents.reader import SnapshotDocument, open_shard
from workers.lucene.compound import CompoundDirectory
from workers.lucene.errors import ChecksumError
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.repository import SnapshotRepository
from workers.snapshot.shard_directory import ShardDirectory
from workers.snapshot.verification import segment_of

SNAPSHOT, INDEX = "global_state_snapshot", "posts_2024_01_01"


def _repository(repo: Path) -> SnapshotRepository:
    return SnapshotRepository(open_blob_store(str(repo)))


def _damage(repo: Path, physical_name: str) -> None:
    """Flip one byte of the file: in a compound file, of its term dictionary, which no document read decodes
    (so only the checksum can tell)."""
    shard = _repository(repo).shard_snapshot(SNAPSHOT, INDEX, 0)
    entry = next(f for f in shard.files if f.physical_name == physical_name)
    position = entry.length // 2
    if physical_name.endswith(".cfs"):
        segment = physical_name[: -len(".cfs")]
        directory = ShardDirectory(_repository(repo).store, shard)
        entries = CompoundDirectory(segment, directory.open(segment + ".cfe"), directory.open(physical_name),
                                    directory).entries
        offset, length = next(v for k, v in entries.items() if k.endswith(".tim"))
        position = offset + length // 2
    blob = repo / shard.path / entry.blob
    data = bytearray(blob.read_bytes())
    data[position] ^= 0xFF
    blob.write_bytes(bytes(data))


def _read(repo: Path, alongside: bool, into: list[SnapshotDocument]) -> None:
    reader = open_shard(_repository(repo), SNAPSHOT, INDEX, 0, verify_alongside=alongside)
    try:
        into.extend(reader.documents())
    finally:
        reader.close()


def test_segment_of_names_the_segment_of_each_kind_of_file() -> None:
    assert segment_of("_0.cfs") == "_0"
    assert segment_of("_a1_3.liv") == "_a1"
    assert segment_of("_0_Lucene90_0.doc") == "_0"
    assert segment_of("_1b.si") == "_1b"
    assert segment_of("segments_4") is None


def test_an_intact_shard_reads_the_same_either_way(tmp_path: Path) -> None:
    repo = copy_fixture(tmp_path, "ES_7_10_Single")
    up_front: list[SnapshotDocument] = []
    alongside: list[SnapshotDocument] = []
    _read(repo, False, up_front)
    _read(repo, True, alongside)
    assert len(up_front) == 3 and alongside == up_front


def _failed_read(repo: Path, alongside: bool, match: str) -> list[SnapshotDocument]:
    """The documents read before the ChecksumError ``match`` describes."""
    read: list[SnapshotDocument] = []
    with pytest.raises(ChecksumError, match=match):
        _read(repo, alongside, read)
    return read


def test_a_damaged_later_segment_yields_the_earlier_ones_then_its_checksum_error(tmp_path: Path) -> None:
    repo = copy_fixture(tmp_path, "ES_7_10_Single")
    intact: list[SnapshotDocument] = []
    _read(repo, False, intact)
    _damage(repo, "_1.cfs")
    # _0's one document, none of _1's
    assert _failed_read(repo, True, r"shard 0 file _1\.cfs: checksum mismatch") == intact[:1]
    # Up front, the pass fails before the first document.
    assert _failed_read(repo, False, r"file _1\.cfs: checksum mismatch") == []


def test_a_damaged_first_segment_yields_nothing(tmp_path: Path) -> None:
    repo = copy_fixture(tmp_path, "ES_7_10_Single")
    _damage(repo, "_0.cfs")
    assert _failed_read(repo, True, r"file _0\.cfs: checksum mismatch") == []


def test_a_damaged_small_file_reports_its_checksum_not_a_decoding_error(tmp_path: Path) -> None:
    # _1.cfe (the compound file's entry table) is decoded when the shard opens, before the pass reaches it:
    # whatever the damaged bytes decode to, the error raised is the checksum's, and names the file.
    repo = copy_fixture(tmp_path, "ES_7_10_Single")
    _damage(repo, "_1.cfe")
    assert len(_failed_read(repo, True, r"file _1\.cfe")) <= 1
