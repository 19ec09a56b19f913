"""Operating the backfill worker: a target down before a resume, ``console backfill run-shard``, dead letters in
S3, and the progress it reports (log lines, the rich bar)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox import s3 as sandbox_s3
from migration_pipeline.sandbox.processes import free_port
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.rfs.helpers import Row, SnapshotFixture, build_snapshot, ids_before, options, target_rows
from workers.documents.reader import open_shard
from workers.metadata.rename import RenameRules
from workers.rfs.__main__ import build_parser, options_from
from workers.rfs.worker import TargetUnreachableError, run_shard
from workers.snapshot.blobstore import open_blob_store, s3_client
from workers.snapshot.repository import SnapshotRepository

POISON_ENV = "RFS_TEST_POISON_ID"
BAD_IDS = ["bad-0", "bad-1", "bad-2"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class PoisonedDocumentError(RuntimeError):
    """Raised by the test transform on the document it was told to fail on."""


def fail_on_poison(doc: dict[str, Any]) -> dict[str, Any]:
    """A transform that leaves documents as they are but fails on the one named in the environment (a hook
    breaking mid-shard, after earlier batches were written and checkpointed)."""
    if doc["_id"] == os.environ.get(POISON_ENV):
        raise PoisonedDocumentError(f"poisoned document {doc['_id']}")
    return doc


@pytest.fixture(scope="module")
def two_shards(sandbox: SandboxState) -> SnapshotFixture:
    """Two shards of ~2.4 kB documents: a stored-fields chunk holds ~250 of them, so each shard has several."""
    node = sandbox.engines["source"]
    return build_snapshot(node.url, node.repo_path, docs=1600, shards=2, profile="logs")


@pytest.fixture(scope="module")
def with_rejects(sandbox: SandboxState) -> SnapshotFixture:
    """One shard whose three extra documents a target mapping with ``count: integer`` refuses."""
    node = sandbox.engines["source"]
    extra = [(doc_id, None, json.dumps({"count": "not a number"}).encode()) for doc_id in BAD_IDS]
    return build_snapshot(node.url, node.repo_path, docs=300, shards=1, profile="products", extra=extra)


def _strict_target(sandbox: SandboxState, snap: SnapshotFixture, name: str) -> None:
    """Create ``name`` on the target with the source's mapping, ``count`` made an integer."""
    mapping = OpenSearch(hosts=[sandbox.engines["source"].url]).indices.get_mapping(
        index=snap.index)[snap.index]["mappings"]
    mapping["properties"]["count"] = {"type": "integer"}
    OpenSearch(hosts=[sandbox.engines["target"].url]).indices.create(index=name, body={"mappings": mapping})


def _reading_order(snap: SnapshotFixture, shard: int) -> list[str]:
    """Ids of the shard's documents, in the order the worker reads them."""
    reader = open_shard(SnapshotRepository(open_blob_store(snap.repo_uri)), snap.snapshot, snap.index, shard)
    return [doc.id for doc in reader.documents()]


def _expected(snap: SnapshotFixture, ids: Sequence[str]) -> dict[str, Row]:
    return {doc_id: snap.expected[doc_id] for doc_id in ids}


def _versions(target: str, index: str) -> dict[str, int]:
    client = OpenSearch(hosts=[target])
    client.indices.refresh(index=index)
    hits = client.search(index=index, body={"size": 10000, "version": True, "_source": False})["hits"]["hits"]
    return {h["_id"]: h["_version"] for h in hits}


def _worker_cli(snap: SnapshotFixture, shard: int, target: str, coordination: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "workers.rfs", "--snapshot-repo", snap.repo_uri, "--snapshot", snap.snapshot,
            "--index", snap.index, "--shard", str(shard), "--target-endpoint", target,
            "--coordination-index", coordination, *args]


def test_operations_target_down_leaves_the_checkpoint_then_resume(
        sandbox: SandboxState, two_shards: SnapshotFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = sandbox.engines["target"].url
    client = OpenSearch(hosts=[target])
    order = _reading_order(two_shards, 0)
    reader = open_shard(SnapshotRepository(open_blob_store(two_shards.repo_uri)), two_shards.snapshot,
                        two_shards.index, 0)
    # A transform fails while its chunk is encoded: the chunks before the poisoned one are what gets sent.
    assert sum(1 for _ in reader.chunks()) >= 3, "shard 0 is too small to fail mid-way"
    poison = order[len(order) * 2 // 3]
    monkeypatch.setenv(POISON_ENV, poison)
    renamed = unique("down")
    rename = RenameRules.parse([f"{two_shards.index}={renamed}"])
    opts = options(target, tmp_path, rename=rename, documents_per_bulk_request=20, max_connections=2,
                   transform=f"{__name__}:fail_on_poison")
    store = open_blob_store(two_shards.repo_uri)
    with pytest.raises(PoisonedDocumentError, match=re.escape(poison)):
        run_shard(store, two_shards.snapshot, two_shards.index, 0, opts)

    key = f"{two_shards.snapshot}/{two_shards.index}/0"
    before = client.get(index=opts.coordination_index, id=key)
    state = before["_source"]
    assert state["status"] == "in_progress" and state["lease_owner"] is None
    assert state["checkpoint"] is not None and 0 < state["docs_written"] < len(order)
    written_before = ids_before(two_shards, 0, state["checkpoint"])
    assert poison not in written_before and len(written_before) == state["docs_written"]
    assert set(target_rows(target, renamed)) == set(written_before)

    dead = f"http://127.0.0.1:{free_port()}"
    dead_opts = options(dead, tmp_path, rename=rename, coordination_index=opts.coordination_index)
    with pytest.raises(TargetUnreachableError, match=rf"cannot reach the target {re.escape(dead)}"):
        run_shard(store, two_shards.snapshot, two_shards.index, 0, dead_opts)
    proc = subprocess.run(_worker_cli(two_shards, 0, dead, opts.coordination_index, "--rename",
                                      f"{two_shards.index}={renamed}", "--progress", "none"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert f"cannot reach the target {dead}" in proc.stderr and "Traceback" not in proc.stderr
    after = client.get(index=opts.coordination_index, id=key)
    assert {k: after[k] for k in ("_source", "_seq_no", "_primary_term", "_version")} == \
        {k: before[k] for k in ("_source", "_seq_no", "_primary_term", "_version")}

    resumed = run_shard(store, two_shards.snapshot, two_shards.index, 0,
                        options(target, tmp_path, rename=rename, coordination_index=opts.coordination_index))
    assert resumed.status == "completed"
    assert resumed.resumed_from == state["checkpoint"]
    assert resumed.docs_written == len(order)
    assert target_rows(target, renamed) == _expected(two_shards, order)  # exact parity, no duplicates
    versions = _versions(target, renamed)
    # Nothing before the checkpoint was sent twice (nor, since the poisoned chunk never went out, after it).
    assert all(versions[doc_id] == 1 for doc_id in written_before)
    assert {i: v for i, v in versions.items() if v != 1} == {}
    done = client.get(index=opts.coordination_index, id=key)["_source"]
    assert done["status"] == "completed" and done["attempts"] == 2 and done["docs_written"] == len(order)


def test_operations_console_backfill_run_shard(sandbox: SandboxState, two_shards: SnapshotFixture) -> None:
    target = sandbox.engines["target"].url
    console = str(Path(sys.executable).parent / "console")
    shard_ids = _reading_order(two_shards, 1)
    assert 0 < len(shard_ids) < len(two_shards.expected)
    renamed = unique("console")
    proc = subprocess.run(
        [console, "backfill", "run-shard", "--snapshot-repo", two_shards.repo_uri, "--snapshot",
         two_shards.snapshot, "--index", two_shards.index, "--shard", "1", "--target-endpoint", target,
         "--coordination-index", unique(".mws"), "--rename", f"{two_shards.index}={renamed}",
         "--dead-letter", "off", "--progress", "none", "--json"],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "completed" and result["shard"] == 1 and result["index"] == two_shards.index
    assert result["docs_written"] == len(shard_ids) and result["dead_letter_location"] == "off"
    assert target_rows(target, renamed) == _expected(two_shards, shard_ids)  # shard 1's documents, no others

    help_proc = subprocess.run([console, "backfill", "run-shard", "--help"], capture_output=True, text=True,
                               timeout=60)
    assert help_proc.returncode == 0, help_proc.stderr
    for option in ("--max-connections", "--target-endpoint", "--snapshot-repo", "--dead-letter",
                   "--coordination-index", "--documents-per-bulk-request", "--progress"):
        assert option in help_proc.stdout, option


def test_operations_dead_letters_in_s3(sandbox: SandboxState, with_rejects: SnapshotFixture, aws_env: None) -> None:
    assert sandbox.s3 is not None
    target, endpoint = sandbox.engines["target"].url, sandbox.s3.endpoint
    s3 = s3_client(endpoint=endpoint, region=sandbox_s3.REGION)
    bucket = unique("dead-letters")
    s3.create_bucket(Bucket=bucket)
    renamed = unique("s3dead")
    _strict_target(sandbox, with_rejects, renamed)
    # The snapshot is on the filesystem and the dead letters in S3: the store gets its own endpoint.
    assert with_rejects.repo_uri.startswith("file:")
    proc = subprocess.run(
        _worker_cli(with_rejects, 0, target, unique(".mws"), "--rename", f"{with_rejects.index}={renamed}",
                    "--dead-letter", f"s3://{bucket}/letters", "--dead-letter-s3-endpoint", endpoint,
                    "--dead-letter-s3-region", sandbox_s3.REGION, "--documents-per-bulk-request", "50",
                    "--progress", "none", "--json"),
        capture_output=True, text=True, timeout=180, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    # The snapshot's UUID is part of the location: two snapshots with the same name never share one.
    uuid = SnapshotRepository(open_blob_store(with_rejects.repo_uri)).snapshot(with_rejects.snapshot).uuid
    assert result["snapshot_uuid"] == uuid and result["target_uuids"][renamed]
    prefix = f"letters/{with_rejects.snapshot}/{uuid}/{with_rejects.index}/0/"
    assert result["docs_written"] == 300 and result["dead_letters"] == 3
    assert result["dead_letters_by_type"] == {"mapper_parsing_exception": 3}
    assert result["dead_letter_location"] == f"s3://{bucket}/{prefix}"

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys and all(k.startswith(prefix) and k.endswith(".jsonl") for k in keys), keys
    letters = [json.loads(line) for k in keys
               for line in s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode().splitlines()]
    assert sorted(r["_id"] for r in letters) == BAD_IDS
    for r in letters:
        assert r["error_type"] == "mapper_parsing_exception" and "count" in r["reason"], r
        assert r["_source"] == {"count": "not a number"} and r["target_index"] == renamed
        assert (r["snapshot"], r["index"], r["shard"]) == (with_rejects.snapshot, with_rejects.index, 0)
        assert (r["snapshot_uuid"], r["target_index_uuid"]) == (uuid, result["target_uuids"][renamed])
    assert target_rows(target, renamed) == _expected(with_rejects, sorted(set(with_rejects.expected) - set(BAD_IDS)))


def _done_line(lines: Sequence[str], label: str) -> re.Match[str]:
    pattern = re.compile(rf"{re.escape(label)}: done: (\d+) documents, ([\d.]+) MB, (\d+) docs/s, ([\d.]+) MB/s, "
                         r"(\d+) retries, (\d+) dead letters")
    matches = [m for m in map(pattern.search, lines) if m]
    assert len(matches) == 1, lines
    return matches[0]


def test_operations_progress_log_lines(sandbox: SandboxState, with_rejects: SnapshotFixture) -> None:
    target = sandbox.engines["target"].url
    renamed = unique("logged")
    _strict_target(sandbox, with_rejects, renamed)
    label = f"{with_rejects.snapshot}/{with_rejects.index}[0]"
    coordination = unique(".mws")
    proc = subprocess.run(
        _worker_cli(with_rejects, 0, target, coordination, "--rename", f"{with_rejects.index}={renamed}",
                    "--dead-letter", "off", "--documents-per-bulk-request", "50", "--progress", "log"),
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert any(f"{label}: starting (up to 303 documents)" in line for line in lines), lines
    done = _done_line(lines, label)
    record = OpenSearch(hosts=[target]).get(index=coordination, id=f"{with_rejects.snapshot}/{with_rejects.index}/0")
    assert int(done[1]) == 300 == record["_source"]["docs_written"]
    assert done[2] == f"{record['_source']['bytes_written'] / 1e6:.1f}" and float(done[2]) > 0
    assert int(done[3]) > 0 and float(done[4]) > 0
    assert (int(done[5]), int(done[6])) == (record["_source"]["summary"]["retries"], 3)
    # The CLI's own summary line, after the progress line.
    assert any(f"{label}: completed, 300 documents written, 3 dead letters {{'mapper_parsing_exception': 3}}"
               in line for line in lines[lines.index(done.string):]), lines

    # Periodic lines: every 10 s by default, longer than this shard takes; --progress-interval 0 gives one after
    # every batch.
    again = subprocess.run(
        _worker_cli(with_rejects, 0, target, unique(".mws"), "--rename", f"{with_rejects.index}={renamed}",
                    "--dead-letter", "off", "--documents-per-bulk-request", "50", "--progress", "log",
                    "--progress-interval", "0"),
        capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    messages = again.stderr.splitlines()
    periodic = [m for m in map(re.compile(
        rf"{re.escape(label)}: progress: (\d+) documents, [\d.]+ MB, \d+ docs/s, [\d.]+ MB/s, (\d+) retries, "
        r"(\d+) dead letters").search, messages) if m]
    assert len(periodic) >= 3, messages
    docs = [int(m[1]) for m in periodic]
    assert docs == sorted(docs) and 0 < docs[0] < 300 and docs[-1] <= 300
    dead = [int(m[3]) for m in periodic]
    assert dead == sorted(dead) and dead[-1] <= 3
    done = _done_line(messages, label)
    assert (int(done[1]), int(done[6])) == (300, 3)


def test_operations_progress_bar_renders(sandbox: SandboxState, with_rejects: SnapshotFixture) -> None:
    target = sandbox.engines["target"].url
    renamed = unique("bar")
    _strict_target(sandbox, with_rejects, renamed)
    # A terminal as rich sees one: live refreshes with cursor control, as a person would get.
    env = {**os.environ, "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "200"}
    proc = subprocess.run(
        _worker_cli(with_rejects, 0, target, unique(".mws"), "--rename", f"{with_rejects.index}={renamed}",
                    "--dead-letter", "off", "--documents-per-bulk-request", "50", "--progress", "bar"),
        capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr
    shown = ANSI.sub("", proc.stdout + proc.stderr)
    assert "Traceback" not in shown
    assert f"{with_rejects.snapshot}/{with_rejects.index}[0]" in shown
    # Documents written of the documents read (the three refused ones are not written), and the rate column.
    assert "300/303" in shown, shown
    assert re.search(r"\d+ docs/s [\d.]+ MB/s retries 0 dead 3", shown), shown


def test_operations_progress_bar_leaves_stdout_to_the_json_result(sandbox: SandboxState,
                                                                  with_rejects: SnapshotFixture) -> None:
    target = sandbox.engines["target"].url
    renamed = unique("barjson")
    _strict_target(sandbox, with_rejects, renamed)
    proc = subprocess.run(
        _worker_cli(with_rejects, 0, target, unique(".mws"), "--rename", f"{with_rejects.index}={renamed}",
                    "--dead-letter", "off", "--progress", "bar", "--json"),
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    # What `--json | jq` reads: the result alone (progress, like the log lines, belongs on stderr).
    assert json.loads(proc.stdout)["docs_written"] == 300


@pytest.mark.parametrize(("repo", "args", "endpoint", "region"), [
    # A repository in S3: the dead-letter store follows its endpoint and region unless told otherwise.
    ("s3://snaps/p", ["--s3-endpoint", "http://127.0.0.1:9000", "--s3-region", "eu-west-1"],
     "http://127.0.0.1:9000", "eu-west-1"),
    ("s3://snaps/p", ["--s3-endpoint", "http://127.0.0.1:9000", "--dead-letter-s3-endpoint", "http://127.0.0.1:9001",
                      "--dead-letter-s3-region", "us-west-2"], "http://127.0.0.1:9001", "us-west-2"),
    # A filesystem repository: --s3-endpoint is no reason to send dead letters anywhere but AWS.
    ("file:///r", ["--s3-endpoint", "http://127.0.0.1:9000"], None, None),
    ("file:///r", ["--dead-letter-s3-endpoint", "http://127.0.0.1:9001"], "http://127.0.0.1:9001", None),
])
def test_dead_letter_s3_endpoint_defaults(repo: str, args: list[str], endpoint: str | None,
                                          region: str | None) -> None:
    ns = build_parser().parse_args(["--snapshot-repo", repo, "--snapshot", "s", "--index", "i", "--shard", "0",
                                    "--target-endpoint", "http://127.0.0.1:9", "--dead-letter", "s3://dl/x", *args])
    options = options_from(ns)
    assert (options.dead_letter_s3_endpoint, options.dead_letter_s3_region) == (endpoint, region)
