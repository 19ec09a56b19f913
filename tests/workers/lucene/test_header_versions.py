"""Codec headers are checked against each reader's supported format versions, as Lucene's CodecUtil does.

Real files of the sample repositories (copied first: the fixtures are never modified) get their header version set
one past the newest version a reader supports, or one below the oldest, with their footer CRC recomputed so that the
file is intact as far as Lucene's checksum goes; reading them must then be refused with an error that names the
file, the codec, the version found and the range supported, never decoded with a layout they were not written in.
The snapshot's own record of each file's checksum is left as it was, so the shard is opened without comparing
against it (``verify_checksums=False``: the Lucene footers are still checked).
"""

from __future__ import annotations

import ast
import shutil
import zlib
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_SNAPSHOTS
from workers.documents.reader import open_shard
from workers.lucene import field_infos, segment_info
from workers.lucene.codec import CODEC_MAGIC, VersionRanges
from workers.lucene.compound import DATA_VERSIONS as COMPOUND_DATA_VERSIONS
from workers.lucene.compound import ENTRY_VERSIONS, CompoundDirectory
from workers.lucene.datainput import DataInput
from workers.lucene.doc_values import DATA_VERSIONS as DV_DATA_VERSIONS
from workers.lucene.doc_values import META_VERSIONS as DV_META_VERSIONS
from workers.lucene.errors import UnsupportedFormatError
from workers.lucene.live_docs import VERSIONS as LIVE_DOCS_VERSIONS
from workers.lucene.segments import VERSIONS as SEGMENTS_VERSIONS
from workers.lucene.stored_fields.formats import DATA_VERSIONS as STORED_DATA_VERSIONS
from workers.lucene.stored_fields.formats import FORMATS, META_VERSIONS
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.repository import ShardSnapshot, SnapshotRepository
from workers.snapshot.shard_directory import ShardDirectory

WORKERS = Path(__file__).resolve().parents[3] / "workers"

# (repository, snapshot, index): the shard 0 whose files are altered.
ES_5_6 = ("ES_5_6_Updates_Deletes", "rfs_snapshot", "test_updates_deletes")
ES_6_8 = ("ES_6_8_Single", "global_state_snapshot", "posts_2023_02_25")
ES_7_10 = ("ES_7_10_Single", "global_state_snapshot", "posts_2023_02_25")


def _calls_without_expected(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name == "read_index_header":
                expected = next((k.value for k in node.keywords if k.arg == "expected"), None)
                if expected is None or (isinstance(expected, ast.Constant) and expected.value is None):
                    lines.append(node.lineno)
    return lines


def test_every_header_read_states_its_supported_versions() -> None:
    offenders = []
    calls = 0
    for path in sorted(WORKERS.rglob("*.py")):
        source = path.read_text()
        tree = ast.parse(source, filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and any(a.asname for a in node.names if a.name == "read_index_header"):
                offenders.append(f"{path.relative_to(WORKERS.parent)}: read_index_header imported under another name")
        offenders += [f"{path.relative_to(WORKERS.parent)}:{line}" for line in _calls_without_expected(tree)]
        calls += source.count("read_index_header(") - source.count("def read_index_header(")
    assert offenders == [], "read_index_header called without expected= version ranges"
    assert calls >= 9  # segments_N, .si, .fnm, .liv, .cfe, .cfs, .dvm, .dvd, .fdt, .fdm


def _well_formed(table: VersionRanges) -> bool:
    return bool(table) and all(isinstance(low, int) and isinstance(high, int) and 0 <= low <= high
                               for low, high in table.values())


def test_version_tables_are_ranges_and_match_the_readers() -> None:
    tables = [SEGMENTS_VERSIONS, segment_info.VERSIONS, field_infos.VERSIONS, LIVE_DOCS_VERSIONS, ENTRY_VERSIONS,
              COMPOUND_DATA_VERSIONS, DV_META_VERSIONS, DV_DATA_VERSIONS, STORED_DATA_VERSIONS,
              *META_VERSIONS.values()]
    assert all(_well_formed(t) for t in tables)
    # One field-infos reader for every (codec, version) in range, and none outside.
    assert set(field_infos._READERS) == {(codec, v) for codec, (low, high) in field_infos.VERSIONS.items()
                                         for v in range(low, high + 1)}
    assert set(segment_info._READERS) == set(segment_info.VERSIONS)
    assert set(STORED_DATA_VERSIONS) == set(FORMATS)
    assert {FORMATS[c].layout for c in FORMATS} == set(META_VERSIONS)
    # The data file of a pair has the same versions as its metadata/entries file.
    assert {c.replace("Entries", "Data"): r for c, r in ENTRY_VERSIONS.items()} == COMPOUND_DATA_VERSIONS
    assert {c.replace("Metadata", "Data"): r for c, r in DV_META_VERSIONS.items()} == DV_DATA_VERSIONS


def copy_fixture(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURE_SNAPSHOTS / name, target)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def header_version(data: bytes | bytearray, start: int = 0) -> tuple[str, int, int]:
    """(codec, version, offset of the version) of the codec header at ``start``."""
    din = DataInput(bytes(data[start : start + 128]), "probe")
    assert din.be_int32() == CODEC_MAGIC
    codec = din.string()
    at = start + din.pos
    return codec, din.be_int32(), at


def set_version(data: bytearray, start: int, end: int, version: int) -> tuple[str, int]:
    """Set the header version of the Lucene file ``data[start:end]`` and recompute its footer CRC (the CRC-32 of
    everything before the footer's last 8 bytes); returns the codec and the version it had."""
    codec, old, at = header_version(data, start)
    data[at : at + 4] = version.to_bytes(4, "big", signed=True)
    fix_footer(data, start, end)
    return codec, old


def fix_footer(data: bytearray, start: int, end: int) -> None:
    data[end - 8 : end] = zlib.crc32(bytes(data[start : end - 8])).to_bytes(8, "big")


def shard_of(repo: Path, snapshot: str, index: str) -> ShardSnapshot:
    return SnapshotRepository(open_blob_store(str(repo))).shard_snapshot(snapshot, index, 0)


def blob_of(repo: Path, shard: ShardSnapshot, suffix: str) -> tuple[Path, str]:
    """The blob and physical name of the shard's real (not virtual) file whose name ends with ``suffix`` (of its
    first segment when there are several), or of its ``segments_N`` for ``suffix`` ``"segments_"``."""
    entries = [f for f in shard.files if not f.is_virtual
               and (f.physical_name.startswith(suffix) if suffix == "segments_" else f.physical_name.endswith(suffix))]
    assert entries, f"no {suffix} blob in {[f.physical_name for f in shard.files]}"
    entry = min(entries, key=lambda f: (len(f.physical_name), f.physical_name))
    assert len(entry.part_names) == 1
    return repo / shard.path / entry.blob, entry.physical_name


def alter_file(repo: Path, snapshot: str, index: str, suffix: str, version: int) -> tuple[str, str, int]:
    """Set the header version of a file of the shard (a blob of its own); returns (physical name, codec, old)."""
    blob, physical = blob_of(repo, shard_of(repo, snapshot, index), suffix)
    data = bytearray(blob.read_bytes())
    codec, old = set_version(data, 0, len(data), version)
    blob.write_bytes(bytes(data))
    return physical, codec, old


def alter_compound_entry(repo: Path, snapshot: str, index: str, extension: str, version: int) -> tuple[str, str, int]:
    """Set the header version of a file inside a compound segment (then the .cfs footer too)."""
    shard = shard_of(repo, snapshot, index)
    blob, physical = blob_of(repo, shard, ".cfs")
    segment = physical[: -len(".cfs")]
    directory = ShardDirectory(open_blob_store(str(repo)), shard)
    compound = CompoundDirectory(segment, directory.open(f"{segment}.cfe"), directory.open(physical), directory)
    name = segment + extension
    offset, length = compound.entries[name]
    data = bytearray(blob.read_bytes())
    codec, old = set_version(data, offset, offset + length, version)
    fix_footer(data, 0, len(data))
    blob.write_bytes(bytes(data))
    return name, codec, old


def read_shard(repo: Path, snapshot: str, index: str) -> list:
    reader = open_shard(SnapshotRepository(open_blob_store(str(repo))), snapshot, index, 0, verify_checksums=False)
    return list(reader.documents())


def assert_refused(repo: Path, fixture: tuple[str, str, str], name: str, codec: str, version: int,
                   supported: tuple[int, int]) -> None:
    _, snapshot, index = fixture
    with pytest.raises(UnsupportedFormatError) as info:
        read_shard(repo, snapshot, index)
    message = str(info.value)
    relation = "newer" if version > supported[1] else "older"
    low, high = supported
    assert name in message and f"index {index} shard 0" in message, message
    assert f"codec {codec!r} version {version} is {relation} than this reader supports ({low}..{high})" in message


# (fixture, file suffix, inside the compound file, supported range, the version the fixture's file has)
CASES = [
    pytest.param(ES_7_10, ".fnm", True, (0, 2), 2, id="fnm-Lucene60FieldInfos"),
    pytest.param(ES_5_6, ".fnm", True, (0, 2), 0, id="fnm-Lucene60FieldInfos-v0"),
    pytest.param(ES_6_8, ".si", False, (0, 0), 0, id="si-Lucene70SegmentInfo"),
    pytest.param(ES_5_6, ".si", False, (0, 1), 1, id="si-Lucene62SegmentInfo"),
    pytest.param(ES_6_8, "segments_", False, (6, 10), 9, id="segments_N"),
    pytest.param(ES_5_6, ".fdt", True, (1, 4), 1, id="fdt-Lucene50StoredFieldsFastData"),
    pytest.param(ES_7_10, ".fdt", True, (3, 4), 3, id="fdt-Lucene87StoredFieldsFastData"),
    pytest.param(ES_7_10, ".fdm", True, (3, 4), 3, id="fdm-Lucene85FieldsIndexMeta"),
    pytest.param(ES_6_8, ".cfs", False, (0, 0), 0, id="cfs-Lucene50CompoundData"),
    pytest.param(ES_6_8, ".cfe", False, (0, 0), 0, id="cfe-Lucene50CompoundEntries"),
]


@pytest.mark.parametrize("beyond", ["newer", "older"])
@pytest.mark.parametrize(("fixture", "suffix", "compound", "supported", "found"), CASES)
def test_version_outside_the_supported_range_is_refused(tmp_path: Path, fixture: tuple[str, str, str], suffix: str,
                                                        compound: bool, supported: tuple[int, int], found: int,
                                                        beyond: str) -> None:
    repo = copy_fixture(tmp_path, fixture[0])
    version = supported[1] + 1 if beyond == "newer" else supported[0] - 1
    if compound:
        name, codec, old = alter_compound_entry(repo, fixture[1], fixture[2], suffix, version)
    else:
        name, codec, old = alter_file(repo, fixture[1], fixture[2], suffix, version)
    assert old == found  # the fixture's file is where the test expects it, at the version it expects
    assert_refused(repo, fixture, name, codec, version, supported)


@pytest.mark.parametrize("fixture", [ES_5_6, ES_6_8, ES_7_10], ids=lambda f: f[0])
def test_rewritten_footer_alone_changes_nothing(tmp_path: Path, fixture: tuple[str, str, str]) -> None:
    # The helpers' own check: a version rewritten to the value it had, CRC recomputed, reads as before.
    repo = copy_fixture(tmp_path, fixture[0])
    before = read_shard(repo, fixture[1], fixture[2])
    _, _, old = alter_compound_entry(repo, fixture[1], fixture[2], ".fnm", 0)
    alter_compound_entry(repo, fixture[1], fixture[2], ".fnm", old)
    assert read_shard(repo, fixture[1], fixture[2]) == before and before
