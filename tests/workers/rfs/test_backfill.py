"""The backfill worker against the real sandbox (Elasticsearch 7.10 -> OpenSearch 2.19)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox.processes import free_port
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.rfs.helpers import SnapshotFixture, build_snapshot, options, target_rows
from workers.common.errors import ConfigurationError
from workers.documents.reader import read_snapshot_documents
from workers.lucene.compound import CompoundDirectory
from workers.lucene.errors import ChecksumError
from workers.metadata.rename import RenameRules
from workers.rfs.__main__ import parse_shards
from workers.rfs.coordination import LeaseHeldError, WorkCoordinator
from workers.rfs.encode import native_encoder
from workers.rfs.status import ShardOutcome, snapshot_counts
from workers.rfs.worker import TargetUnreachableError, run_shard, run_shards
from workers.snapshot.blobstore import FileSystemBlobStore, open_blob_store
from workers.snapshot.repository import SnapshotRepository
from workers.snapshot.shard_directory import ShardDirectory
from workers.snapshot.verification import segment_of

PRETTY = b'\n\n{\n  "title": "pretty printed",\n  "n": 1\n}\n\n'
BIG_MB = 20


@pytest.fixture(scope="module")
def source_snapshot(sandbox: SandboxState) -> Iterator[SnapshotFixture]:
    node = sandbox.engines["source"]
    big = json.dumps({"title": "big", "payload": "x" * (BIG_MB << 20)}).encode()
    extra = [("pretty", "r1", PRETTY), ("big-doc", None, big), ("ünïcödé-✓", None, '{"u": "ü"}'.encode())]
    yield build_snapshot(node.url, node.repo_path, docs=2000, shards=3, extra=extra)


def test_parity_after_backfilling_every_shard(sandbox: SandboxState, source_snapshot: SnapshotFixture,
                                              tmp_path: Path) -> None:
    target = sandbox.engines["target"].url
    store = open_blob_store(source_snapshot.repo_uri)
    opts = options(target, tmp_path, documents_per_bulk_request=500)
    results = [run_shard(store, source_snapshot.snapshot, source_snapshot.index, s, opts)
               for s in range(source_snapshot.shards)]
    assert all(r.status == "completed" and r.dead_letters == 0 for r in results)
    assert sum(r.docs_written for r in results) == len(source_snapshot.expected) == 2003
    assert target_rows(target, source_snapshot.index) == source_snapshot.expected
    if native_encoder() is not None:
        # Most chunks in C; the pretty-printed and the non-ASCII documents' chunks in Python.
        assert sum(r.read["chunks_encoded_in_c"] for r in results) > 0
        assert sum(r.read["chunks_encoded_in_python"] for r in results) >= 2

    # A completed shard is not run again (its documents stay at version 1)...
    again = run_shard(store, source_snapshot.snapshot, source_snapshot.index, 0, opts)
    assert again.status == "already-completed" and again.docs_written == results[0].docs_written
    client = OpenSearch(hosts=[target])
    assert client.get(index=source_snapshot.index, id="pretty", routing="r1")["_version"] == 1
    # ... unless forced.
    forced = run_shard(store, source_snapshot.snapshot, source_snapshot.index, 0,
                       options(target, tmp_path, coordination_index=opts.coordination_index, force=True))
    assert forced.status == "completed" and forced.docs_written == results[0].docs_written


def test_python_encoder_writes_the_same_documents(sandbox: SandboxState, source_snapshot: SnapshotFixture,
                                                  tmp_path: Path) -> None:
    target = sandbox.engines["target"].url
    renamed = unique("python-encoded")
    # A regex rule with a group, as the metadata migration writes them ($1).
    rule = f"regex:({re.escape(source_snapshot.index)})=$1-{renamed}"
    opts = options(target, tmp_path, rename=RenameRules.parse([rule]), native=False)
    store = open_blob_store(source_snapshot.repo_uri)
    results = [run_shard(store, source_snapshot.snapshot, source_snapshot.index, s, opts)
               for s in range(source_snapshot.shards)]
    assert all(r.read["chunks_encoded_in_c"] == 0 for r in results)
    assert target_rows(target, f"{source_snapshot.index}-{renamed}") == source_snapshot.expected


def test_rename_and_transform(sandbox: SandboxState, source_snapshot: SnapshotFixture, tmp_path: Path) -> None:
    target = sandbox.engines["target"].url
    renamed = unique("renamed")
    opts = options(target, tmp_path, rename=RenameRules.parse([f"{source_snapshot.index}={renamed}"]),
                   transform="tests.workers.rfs.transforms:tag_migrated")
    store = open_blob_store(source_snapshot.repo_uri)
    for s in range(source_snapshot.shards):
        run_shard(store, source_snapshot.snapshot, source_snapshot.index, s, opts)
    rows = target_rows(target, renamed)
    assert set(rows) == set(source_snapshot.expected) - {"big-doc"}  # the transform drops it
    assert all(json.loads(src)["migrated"] is True for _, _, src in rows.values())


def test_rejected_documents_go_to_dead_letters(sandbox: SandboxState, tmp_path: Path) -> None:
    node, target = sandbox.engines["source"], sandbox.engines["target"].url
    extra = [(f"bad-{i}", None, json.dumps({"count": "not a number"}).encode()) for i in range(3)]
    snap = build_snapshot(node.url, node.repo_path, docs=50, shards=1, profile="products", extra=extra)
    # On the source "count" is dynamic; the target's mapping says integer: the bad documents are refused.
    source_mapping = OpenSearch(hosts=[node.url]).indices.get_mapping(index=snap.index)[snap.index]["mappings"]
    source_mapping["properties"]["count"] = {"type": "integer"}
    OpenSearch(hosts=[target]).indices.create(index=snap.index, body={"mappings": source_mapping})
    opts = options(target, tmp_path)
    result = run_shard(open_blob_store(snap.repo_uri), snap.snapshot, snap.index, 0, opts)
    assert result.docs_written == 50 and result.dead_letters == 3
    assert result.dead_letters_by_type == {"mapper_parsing_exception": 3}
    letters = [json.loads(line) for line in Path(result.dead_letter_location).read_text().splitlines()]
    assert sorted(r["_id"] for r in letters) == ["bad-0", "bad-1", "bad-2"]
    assert all(r["error_type"] == "mapper_parsing_exception" and "count" in r["reason"] for r in letters)
    assert letters[0]["_source"] == {"count": "not a number"} and letters[0]["snapshot"] == "snap"
    assert set(target_rows(target, snap.index)) == set(snap.expected) - {"bad-0", "bad-1", "bad-2"}

    # Dead letters off: counted, not kept. Allowed error types: counted as success.
    off = run_shard(open_blob_store(snap.repo_uri), snap.snapshot, snap.index, 0,
                    options(target, tmp_path / "off", dead_letter="off"))
    assert off.dead_letters == 3 and off.dead_letter_location == "off" and not (tmp_path / "off").exists()
    allowed = run_shard(open_blob_store(snap.repo_uri), snap.snapshot, snap.index, 0,
                        options(target, tmp_path, allowed_doc_exception_types=("mapper_parsing_exception",)))
    assert allowed.dead_letters == 0 and allowed.allowed_failures == 3


def test_target_down_at_start(source_snapshot: SnapshotFixture, tmp_path: Path) -> None:
    dead_target = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TargetUnreachableError, match=r"cannot reach the target http://127.0.0.1:\d+"):
        run_shard(open_blob_store(source_snapshot.repo_uri), source_snapshot.snapshot, source_snapshot.index, 0,
                  options(dead_target, tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "workers.rfs", "--snapshot-repo", source_snapshot.repo_uri, "--snapshot",
         source_snapshot.snapshot, "--index", source_snapshot.index, "--shard", "0", "--target-endpoint",
         dead_target], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "cannot reach the target" in proc.stderr and "Traceback" not in proc.stderr


def test_second_worker_on_a_leased_shard_is_refused(sandbox: SandboxState, source_snapshot: SnapshotFixture,
                                                   tmp_path: Path) -> None:
    target = sandbox.engines["target"].url
    opts = options(target, tmp_path)
    holder = WorkCoordinator(OpenSearch(hosts=[target]), opts.coordination_index, "worker-a", 600,
                             source_snapshot.snapshot, source_snapshot.index, 1)
    holder.ensure_index()
    holder.acquire()
    with pytest.raises(LeaseHeldError, match="leased by worker worker-a"):
        run_shard(open_blob_store(source_snapshot.repo_uri), source_snapshot.snapshot, source_snapshot.index, 1,
                  opts)
    proc = subprocess.run(
        [sys.executable, "-m", "workers.rfs", "--snapshot-repo", source_snapshot.repo_uri, "--snapshot",
         source_snapshot.snapshot, "--index", source_snapshot.index, "--shard", "1", "--target-endpoint", target,
         "--coordination-index", opts.coordination_index], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4 and "leased by worker worker-a" in proc.stderr


def _shard_docs(fixture: SnapshotFixture, shard: int) -> int:
    return sum(1 for _ in read_snapshot_documents(open_blob_store(fixture.repo_uri), fixture.snapshot,
                                                  fixture.index, shard))


def test_several_shards_in_one_run(sandbox: SandboxState, source_snapshot: SnapshotFixture, tmp_path: Path) -> None:
    target = sandbox.engines["target"].url
    client = OpenSearch(hosts=[target])
    store = open_blob_store(source_snapshot.repo_uri)
    renamed = unique("several")
    opts = options(target, tmp_path, rename=RenameRules.parse([f"{source_snapshot.index}={renamed}"]),
                   documents_per_bulk_request=300)
    shards = list(range(source_snapshot.shards))
    results = run_shards(store, source_snapshot.snapshot, source_snapshot.index, shards, opts)
    assert [(r.shard, r.status) for r in results] == [(s, "completed") for s in shards]
    assert [r.docs_written for r in results] == [_shard_docs(source_snapshot, s) for s in shards]
    # Read right after the run (the last completion not refreshed yet): what the snapshot held, per source index.
    assert snapshot_counts(client, opts.coordination_index, source_snapshot.snapshot) == {
        source_snapshot.index: sum(_shard_docs(source_snapshot, s) for s in shards)}
    assert target_rows(target, renamed) == source_snapshot.expected
    works = []
    for s, result in zip(shards, results, strict=True):  # each shard is recorded on its own, as if run alone
        work = WorkCoordinator(client, opts.coordination_index, "probe", 600, source_snapshot.snapshot,
                               source_snapshot.index, s).read()
        assert work is not None and work.completed and work.docs_written == result.docs_written
        works.append(work.raw)
    for before, after in itertools.pairwise(works):
        # The next shard was opened (its lease taken) while the one before still had requests in flight.
        assert after["started_ms"] < before["completed_ms"]
    again = run_shards(store, source_snapshot.snapshot, source_snapshot.index, shards, opts)
    assert [r.status for r in again] == ["already-completed"] * len(shards)

    # Through the CLI, --shard all: the shard count comes from the snapshot; the result is a list. (The same rename:
    # a completion counts for the target indices it was written into.)
    proc = subprocess.run(
        [sys.executable, "-m", "workers.rfs", "--snapshot-repo", source_snapshot.repo_uri, "--snapshot",
         source_snapshot.snapshot, "--index", source_snapshot.index, "--shard", "all", "--target-endpoint", target,
         "--rename", f"{source_snapshot.index}={renamed}",
         "--coordination-index", opts.coordination_index, "--dead-letter", "off", "--json", "--progress", "none"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [(r["shard"], r["status"]) for r in json.loads(proc.stdout)] == \
        [(s, "already-completed") for s in shards]


def test_several_shards_with_one_leased_elsewhere(sandbox: SandboxState, source_snapshot: SnapshotFixture,
                                                  tmp_path: Path) -> None:
    target = sandbox.engines["target"].url
    client = OpenSearch(hosts=[target])
    store = open_blob_store(source_snapshot.repo_uri)
    renamed = unique("leased")
    opts = options(target, tmp_path, rename=RenameRules.parse([f"{source_snapshot.index}={renamed}"]))
    holder = WorkCoordinator(client, opts.coordination_index, "worker-a", 600, source_snapshot.snapshot,
                             source_snapshot.index, 1)
    holder.ensure_index()
    holder.acquire()

    def recorded(shard: int) -> str | None:
        work = WorkCoordinator(client, opts.coordination_index, "probe", 600, source_snapshot.snapshot,
                               source_snapshot.index, shard).read()
        return None if work is None else work.status

    # By default the leased shard stops the run: the shard before it is completed, the one after it untouched.
    with pytest.raises(LeaseHeldError, match="leased by worker worker-a"):
        run_shards(store, source_snapshot.snapshot, source_snapshot.index, [0, 1, 2], opts)
    assert (recorded(0), recorded(1), recorded(2)) == ("completed", "in_progress", None)
    client.indices.refresh(index=renamed)
    assert client.count(index=renamed)["count"] == _shard_docs(source_snapshot, 0)
    # With skip_leased (what the CLI does for several shards) it is left to its holder and the others go on.
    results = run_shards(store, source_snapshot.snapshot, source_snapshot.index, [0, 1, 2], opts,
                         skip_leased=True)
    assert [r.status for r in results] == [ShardOutcome.ALREADY_COMPLETED, ShardOutcome.LEASED_ELSEWHERE,
                                           ShardOutcome.COMPLETED]
    held = holder.read()
    assert held is not None and held.raw["lease_owner"] == "worker-a"
    client.indices.refresh(index=renamed)
    assert client.count(index=renamed)["count"] == _shard_docs(source_snapshot, 0) + _shard_docs(source_snapshot, 2)


def test_parse_shards() -> None:
    assert parse_shards("3", lambda: 9) == [3]
    assert parse_shards("0,2-4,3", lambda: 9) == [0, 2, 3, 4]
    assert parse_shards("all", lambda: 3) == [0, 1, 2]
    for bad in ("x", "2-1", "-1", "1,,2"):
        with pytest.raises(ConfigurationError, match="--shard"):
            parse_shards(bad, lambda: 3)


def _reading_order(names: list[str]) -> list[str]:
    """The shard's segments in the order the reader reads them (as the commit sorts them)."""
    return sorted({n for n in map(segment_of, names) if n is not None}, key=lambda s: (len(s), s))


def _damage_terms_of_shard_0(fixture: SnapshotFixture, tmp_path: Path, last: bool = False) -> tuple[str, str]:
    """A copy of the repository with one byte of a term dictionary of shard 0 flipped (in its first segment in
    reading order, or with ``last`` its last): a file the worker never reads, so only the checksum pass can find
    it. Returns the copy's URI and the damaged Lucene file's name."""
    copy = tmp_path / ("damaged-last" if last else "damaged-repo")
    original = open_blob_store(fixture.repo_uri)
    assert isinstance(original, FileSystemBlobStore)
    shutil.copytree(original.root, copy)
    store = open_blob_store(copy.as_uri())
    shard = SnapshotRepository(store).shard_snapshot(fixture.snapshot, fixture.index, 0)
    directory = ShardDirectory(store, shard)
    files = {f.physical_name: f for f in shard.files}
    segment = _reading_order(list(files))[-1 if last else 0]
    terms = next((n for n in files if n.endswith(".tim") and segment_of(n) == segment), None)
    if terms is not None:
        damaged, position = terms, files[terms].length // 2
    else:
        compound = segment + ".cfs"
        entries = CompoundDirectory(segment, directory.open(segment + ".cfe"), directory.open(compound),
                                    directory).entries
        offset, length = next(v for k, v in entries.items() if k.endswith(".tim"))
        damaged, position = compound, offset + length // 2
    entry = files[damaged]
    assert len(entry.part_names) == 1
    blob = copy / shard.path / entry.part_names[0]
    data = bytearray(blob.read_bytes())
    data[position] ^= 0xFF
    blob.write_bytes(bytes(data))
    return copy.as_uri(), damaged


def test_a_damaged_file_fails_the_shard_and_nothing_is_sent(sandbox: SandboxState,
                                                             source_snapshot: SnapshotFixture, tmp_path: Path) -> None:
    target = sandbox.engines["target"].url
    repo_uri, damaged = _damage_terms_of_shard_0(source_snapshot, tmp_path)
    store = open_blob_store(repo_uri)
    client = OpenSearch(hosts=[target])
    renamed = unique("damaged")
    opts = options(target, tmp_path, rename=RenameRules.parse([f"{source_snapshot.index}={renamed}"]))
    for _ in range(2):  # a rerun of the damaged snapshot fails the same way (not "already-completed")
        with pytest.raises(ChecksumError, match=rf"shard 0 file {re.escape(damaged)}: checksum mismatch"):
            run_shard(store, source_snapshot.snapshot, source_snapshot.index, 0, opts)
    # The first segment's files are verified before its first document: nothing reached the target.
    assert not client.indices.exists(index=renamed)
    probe = WorkCoordinator(client, opts.coordination_index, "probe", 600, source_snapshot.snapshot,
                            source_snapshot.index, 0)
    work = probe.acquire()  # the lease was released...
    assert not work.completed and work.checkpoint is None  # ... and neither completion nor progress recorded
    proc = subprocess.run(
        [sys.executable, "-m", "workers.rfs", "--snapshot-repo", repo_uri, "--snapshot", source_snapshot.snapshot,
         "--index", source_snapshot.index, "--shard", "0", "--target-endpoint", target,
         "--coordination-index", unique(".mws"), "--rename", f"{source_snapshot.index}={renamed}",
         "--dead-letter", "off"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and damaged in proc.stderr and "checksum mismatch" in proc.stderr
    assert "Traceback" not in proc.stderr

    # The undamaged shards of the same copy go through; without the pass, so does shard 0 (the term dictionary
    # is not read, so its documents are intact).
    assert run_shard(store, source_snapshot.snapshot, source_snapshot.index, 1, opts).status == "completed"
    unchecked = run_shard(store, source_snapshot.snapshot, source_snapshot.index, 0,
                          options(target, tmp_path, rename=opts.rename, verify_checksums=False))
    assert unchecked.status == "completed" and unchecked.docs_written > 0

    # In a run of several shards, the damaged one fails the run before its first document; the shard before it is
    # completed and recorded once its last requests are back; the one after it is never started.
    several = unique("damaged-several")
    opts = options(target, tmp_path, rename=RenameRules.parse([f"{source_snapshot.index}={several}"]))
    with pytest.raises(ChecksumError, match=rf"shard 0 file {re.escape(damaged)}: checksum mismatch"):
        run_shards(store, source_snapshot.snapshot, source_snapshot.index, [1, 0, 2], opts)
    states = {s: WorkCoordinator(client, opts.coordination_index, "probe", 600, source_snapshot.snapshot,
                                 source_snapshot.index, s).read() for s in (0, 1, 2)}
    assert states[1] is not None and states[1].completed
    assert states[0] is not None and not states[0].completed and states[0].raw["lease_owner"] is None
    assert states[2] is None
    client.indices.refresh(index=several)
    assert client.count(index=several)["count"] == _shard_docs(source_snapshot, 1)


def test_a_damaged_later_segment_fails_the_shard_after_the_earlier_ones_are_sent(
        sandbox: SandboxState, source_snapshot: SnapshotFixture, tmp_path: Path) -> None:
    target = sandbox.engines["target"].url
    client = OpenSearch(hosts=[target])
    repo_uri, damaged = _damage_terms_of_shard_0(source_snapshot, tmp_path, last=True)
    store = open_blob_store(repo_uri)
    shard = SnapshotRepository(store).shard_snapshot(source_snapshot.snapshot, source_snapshot.index, 0)
    segments = _reading_order([f.physical_name for f in shard.files])
    assert len(segments) >= 2, f"the fixture's shard 0 has one segment ({segments}): nothing comes before it"
    renamed = unique("damaged-last")
    opts = options(target, tmp_path, rename=RenameRules.parse([f"{source_snapshot.index}={renamed}"]),
                   documents_per_bulk_request=50)
    probe = WorkCoordinator(client, opts.coordination_index, "probe", 600, source_snapshot.snapshot,
                            source_snapshot.index, 0)
    checkpoints = []
    for _ in range(2):  # a rerun resumes from the checkpoint and fails at the same file
        with pytest.raises(ChecksumError, match=rf"shard 0 file {re.escape(damaged)}: checksum mismatch"):
            run_shard(store, source_snapshot.snapshot, source_snapshot.index, 0, opts)
        work = probe.read()
        assert work is not None and not work.completed and work.raw["lease_owner"] is None
        # The earlier segments' documents went out and were checkpointed; none of the damaged segment's did.
        assert work.checkpoint is not None and work.checkpoint.segment in segments[:-1]
        assert work.docs_written > 0
        checkpoints.append((work.checkpoint, work.docs_written))
    assert checkpoints[0] == checkpoints[1]
    client.indices.refresh(index=renamed)
    assert client.count(index=renamed)["count"] == checkpoints[0][1]
