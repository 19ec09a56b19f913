"""Bad input: altered and truncated blobs, unknown codecs; errors name what failed and nothing partial is emitted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_SNAPSHOTS
from workers.documents.reader import read_snapshot_documents
from workers.lucene.codec import FOOTER_LENGTH
from workers.lucene.errors import ChecksumError, LuceneFormatError, UnsupportedFormatError
from workers.lucene.segment_info import read_segment_info
from workers.lucene.store import BytesInput
from workers.snapshot.blobformat import CorruptBlobError
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.repository import SnapshotRepository

FIXTURES = FIXTURE_SNAPSHOTS


def copy_fixture(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def data_blob(repo: Path, snapshot: str, index: str, suffix: str) -> tuple[Path, str]:
    """The blob path and physical name of the shard-0 file of ``index`` whose name ends with ``suffix``."""
    r = SnapshotRepository(open_blob_store(str(repo)))
    shard = r.shard_snapshot(snapshot, index, 0)
    entry = next(f for f in shard.files if f.physical_name.endswith(suffix) and not f.is_virtual)
    return repo / shard.path / entry.blob, entry.physical_name


def test_altered_lucene_file_fails_its_checksum(tmp_path: Path) -> None:
    repo = copy_fixture(tmp_path, "ES_7_10_Single")
    blob, physical = data_blob(repo, "global_state_snapshot", "posts_2024_01_01", ".cfs")
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the corruption case: one flipped byte
    blob.write_bytes(bytes(data))
    with pytest.raises(ChecksumError) as info:
        list(read_snapshot_documents(open_blob_store(str(repo)), "global_state_snapshot"))
    message = str(info.value)
    for part in ("snapshot global_state_snapshot", "index posts_2024_01_01", "shard 0", physical, "checksum"):
        assert part in message


def test_truncated_lucene_file_is_a_structure_error(tmp_path: Path) -> None:
    repo = copy_fixture(tmp_path, "ES_6_8_Single")
    blob, physical = data_blob(repo, "global_state_snapshot", "posts_2023_02_25", ".cfs")
    blob.write_bytes(blob.read_bytes()[:-100])
    with pytest.raises(LuceneFormatError) as info:
        list(read_snapshot_documents(open_blob_store(str(repo)), "global_state_snapshot", index="posts_2023_02_25"))
    message = str(info.value)
    assert "structure" in message and physical in message and "index posts_2023_02_25 shard 0" in message


def test_altered_metadata_blob_is_named(tmp_path: Path) -> None:
    repo = copy_fixture(tmp_path, "ES_5_6_Updates_Deletes")
    snap = next(repo.glob("snap-*.dat"))
    data = bytearray(snap.read_bytes())
    data[30] ^= 0x01
    snap.write_bytes(bytes(data))
    with pytest.raises(CorruptBlobError, match=rf"{snap.name}: checksum mismatch"):
        SnapshotRepository(open_blob_store(str(repo))).snapshot_info("rfs_snapshot")


def test_unknown_codec_is_named_with_its_version() -> None:
    shard = SnapshotRepository(open_blob_store(str(FIXTURES / "ES_7_10_Single"))).shard_snapshot(
        "global_state_snapshot", "posts_2024_01_01", 0)
    si = next(f for f in shard.files if f.physical_name.endswith(".si"))
    assert si.meta_hash is not None
    # Rename the codec to one of the same length and give the file a valid footer again.
    data = bytearray(si.meta_hash.replace(b"Lucene86SegmentInfo", b"Lucene99SegmentInfo"))
    crc = zlib.crc32(bytes(data[:-8]))
    data[-8:] = crc.to_bytes(8, "big")
    with pytest.raises(UnsupportedFormatError, match=r"codec 'Lucene99SegmentInfo' version 0 is not supported"):
        read_segment_info(BytesInput("_0.si", bytes(data)), "_0")
    assert len(data) > FOOTER_LENGTH


def test_failed_shard_emits_nothing(tmp_path: Path) -> None:
    repo = copy_fixture(tmp_path, "ES_6_8_Single")
    blob, _ = data_blob(repo, "global_state_snapshot", "posts_2024_01_01", ".cfs")
    data = bytearray(blob.read_bytes())
    data[len(data) // 3] ^= 0x55
    blob.write_bytes(bytes(data))
    proc = subprocess.run([sys.executable, "-m", "migration_pipeline.cli.console", "snapshot", "read", "--repo",
                           repo.as_uri(), "--snapshot", "global_state_snapshot"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    indices = {json.loads(line)["_index"] for line in proc.stdout.splitlines()}
    assert indices == {"posts_2023_02_25"}  # the healthy shard, complete; nothing of the broken one
    assert "posts_2024_01_01" in proc.stderr and "checksum" in proc.stderr and "Traceback" not in proc.stderr
