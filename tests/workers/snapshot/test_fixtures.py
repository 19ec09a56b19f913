"""The three real sample repositories (Elasticsearch 5.6, 6.8, 7.10): exact documents, metadata, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import FIXTURE_EXPECTED, FIXTURE_SNAPSHOTS
from workers.documents.reader import ReadSummary, read_snapshot_documents
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.repository import SnapshotRepository

CASES = [("ES_5_6_Updates_Deletes", "rfs_snapshot"), ("ES_6_8_Single", "global_state_snapshot"),
         ("ES_7_10_Single", "global_state_snapshot")]


def expected(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURE_EXPECTED / f"{name}.jsonl").read_text().splitlines()]


def as_rows(docs: list) -> list[dict]:
    rows = []
    for d in docs:
        row: dict = {"_index": d.index, "_id": d.id}
        if d.type:
            row["_type"] = d.type
        if d.routing:
            row["_routing"] = d.routing
        row["_source"] = json.loads(d.source)
        rows.append(row)
    return sorted(rows, key=lambda r: (r["_index"], r["_id"]))


@pytest.mark.parametrize(("name", "snapshot"), CASES)
def test_exact_documents(name: str, snapshot: str) -> None:
    summary = ReadSummary()
    docs = list(read_snapshot_documents(open_blob_store(str(FIXTURE_SNAPSHOTS / name)), snapshot,
                                        summary=summary))
    assert as_rows(docs) == expected(name)
    assert summary.live == len(docs) and summary.sourceless == 0


def test_source_bytes_pass_through_untouched() -> None:
    # The 5.6 sample's unchangeddoc was sent with newlines around it; they must survive.
    docs = read_snapshot_documents(open_blob_store(str(FIXTURE_SNAPSHOTS / "ES_5_6_Updates_Deletes")),
                                   "rfs_snapshot")
    unchanged = next(d for d in docs if d.id == "unchangeddoc")
    assert unchanged.source != json.dumps(json.loads(unchanged.source)).encode()
    assert unchanged.source.strip().startswith(b"{") and unchanged.source != unchanged.source.strip()


def test_metadata_decoded() -> None:
    repo = SnapshotRepository(open_blob_store(str(FIXTURE_SNAPSHOTS / "ES_7_10_Single")))
    assert [s.name for s in repo.snapshots()] == ["global_state_snapshot"]
    assert [i.name for i in repo.indices("global_state_snapshot")] == ["posts_2023_02_25", "posts_2024_01_01"]
    meta = repo.index_metadata("global_state_snapshot", "posts_2024_01_01")
    assert meta.number_of_shards == 1 and meta.settings["index.number_of_shards"] == "1"
    assert "_doc" in meta.mappings
    glob = repo.global_metadata("global_state_snapshot")
    assert glob["index_template"]["index_template"]["posts_index_template"]["composed_of"] == ["posts_template"]
    assert "posts_template" in glob["component_template"]["component_template"]
    info = repo.snapshot_info("global_state_snapshot")
    assert info["state"] == "SUCCESS" and info["version_id"] == 7100299
    shard = repo.shard_snapshot("global_state_snapshot", "posts_2024_01_01", 0)
    virtual = [f for f in shard.files if f.is_virtual]
    assert virtual and all(f.meta_hash is not None and len(f.meta_hash) == f.length for f in virtual)
    assert shard.segments_file.physical_name.startswith("segments_")


def test_multi_type_metadata_5_6() -> None:
    repo = SnapshotRepository(open_blob_store(str(FIXTURE_SNAPSHOTS / "ES_5_6_Updates_Deletes")))
    meta = repo.index_metadata("rfs_snapshot", "test_updates_deletes")
    assert sorted(meta.mappings) == ["type1", "type2"] and meta.type_name is None
    templates = SnapshotRepository(open_blob_store(str(FIXTURE_SNAPSHOTS / "ES_6_8_Single"))).global_metadata(
        "global_state_snapshot")["templates"]
    assert "posts_index_template" in templates


@pytest.mark.parametrize(("name", "snapshot"), CASES)
def test_cli_read_jsonl(name: str, snapshot: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "migration_pipeline.cli.console", "snapshot", "read", "--repo",
         (FIXTURE_SNAPSHOTS / name).as_uri(), "--snapshot", snapshot, "--output", "jsonl"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = sorted((json.loads(line) for line in proc.stdout.splitlines()), key=lambda r: (r["_index"], r["_id"]))
    assert rows == expected(name)
    assert f"live {len(rows)}, deleted" in proc.stderr and "nested skipped 0, sourceless 0" in proc.stderr


def test_cli_lists_snapshots_and_indices() -> None:
    repo = (FIXTURE_SNAPSHOTS / "ES_6_8_Single").as_uri()
    snaps = subprocess.run([sys.executable, "-m", "migration_pipeline.cli.console", "snapshot", "list", "--repo",
                            repo, "--json"], capture_output=True, text=True, timeout=60)
    assert [s["name"] for s in json.loads(snaps.stdout)] == ["global_state_snapshot"]
    idx = subprocess.run([sys.executable, "-m", "migration_pipeline.cli.console", "snapshot", "indices", "--repo",
                          repo, "--snapshot", "global_state_snapshot", "--json"], capture_output=True, text=True,
                         timeout=60)
    assert [(i["index"], i["shards"]) for i in json.loads(idx.stdout)] == [("posts_2023_02_25", 1),
                                                                          ("posts_2024_01_01", 1)]


@pytest.mark.parametrize(("args", "fragment"), [
    (["--snapshot", "nope"], "snapshot 'nope' not found"),
    (["--snapshot", "global_state_snapshot", "--index", "nope"], "its indices: posts_2023_02_25, posts_2024_01_01"),
    (["--snapshot", "global_state_snapshot", "--index", "posts_2023_02_25", "--shard", "3"], "shards 0..0, not 3"),
])
def test_cli_missing_things_list_what_exists(args: list[str], fragment: str) -> None:
    repo = (FIXTURE_SNAPSHOTS / "ES_7_10_Single").as_uri()
    proc = subprocess.run([sys.executable, "-m", "migration_pipeline.cli.console", "snapshot", "read", "--repo",
                           repo, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert fragment in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
    assert proc.stdout == ""
