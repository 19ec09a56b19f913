"""Tuples: Parquet files rolled by size and age, written atomically to a folder or S3, read back and summarized."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from migration_pipeline.sandbox.s3 import ACCESS_KEY, REGION, SECRET_KEY
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from workers.replay.compare import MATCH, STATUS_MISMATCH, Comparison, compare
from workers.replay.messages import HttpRequest, HttpResponse, ReplayedTransaction, TargetExchange
from workers.replay.summary import TupleSummary, path_pattern, read_tuples, summarize
from workers.replay.tuples import (
    SCHEMA,
    NullTupleWriter,
    TupleStoreError,
    TupleWriter,
    open_tuple_writer,
)
from workers.snapshot.blobstore import s3_client


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def transaction(seq: int = 1, *, method: str = "PUT", path: str = "/logs/_doc/1", body: bytes = b'{"a":1}',
                source_status: int = 201, target_status: int = 201, fan_out: int = 1) -> ReplayedTransaction:
    request = HttpRequest(method, path, "refresh=true", (("Content-Type", "application/json"),
                                                          ("Authorization", "Basic c2VjcmV0")), body)
    sent = request.with_header("Authorization", "Basic dGFyZ2V0")
    return ReplayedTransaction(
        f"conn-{seq % 3}", seq, 2, 100 + seq, request,
        HttpResponse(source_status, (("content-type", "application/json"),), b'{"result":"created"}'),
        1_000 + seq, 2_000 + seq,
        [TargetExchange(sent, HttpResponse(target_status, (), b'{"result":"created"}'), 3_000 + i, 4_000 + i,
                        attempts=1 + i) for i in range(fan_out)])


def add(writer: TupleWriter | NullTupleWriter, tx: ReplayedTransaction) -> None:
    writer.add(tx, compare(tx))


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_row_holds_both_sides(tmp_path: Path) -> None:
    writer = TupleWriter(tmp_path, writer_id="w1")
    add(writer, transaction(7, fan_out=2, target_status=201))
    add(writer, transaction(8, target_status=400))
    writer.flush()
    rows = list(read_tuples(str(tmp_path)))
    assert [r["kind"] for r in rows] == [MATCH, STATUS_MISMATCH]
    row = rows[0]
    assert {k: row[k] for k in ("conn", "seq", "partition", "offset", "method", "path", "query", "path_pattern",
                                "source_status", "target_status", "error", "dead_lettered")} == {
        "conn": "conn-1", "seq": 7, "partition": 2, "offset": 107, "method": "PUT", "path": "/logs/_doc/1",
        "query": "refresh=true", "path_pattern": "/{index}/_doc/{id}", "source_status": 201, "target_status": 201,
        "error": None, "dead_lettered": False}
    assert (row["source_received_ns"], row["source_finished_ns"]) == (1_007, 2_007)
    assert (row["target_started_ns"], row["target_finished_ns"], row["attempts"]) == (3_000, 4_001, 3)
    assert row["source_request"]["body"] == b'{"a":1}' and row["source_response"]["body"] == b'{"result":"created"}'
    assert row["source_response"]["headers"] == [{"name": "content-type", "value": "application/json"}]
    assert len(row["target"]) == 2 and row["target"][1]["attempts"] == 2
    # The target request's body is the source's: kept once.
    target_request = row["target"][0]["request"]
    assert (target_request["body"], target_request["body_size"], target_request["body_as_source"]) == (None, 7, True)
    # No credentials on disk, from either side.
    for headers in (row["source_request"]["headers"], target_request["headers"]):
        assert {"name": "Authorization", "value": "<redacted>"} in headers
    assert b"c2VjcmV0" not in (tmp_path / files(tmp_path)[0]).read_bytes()
    assert rows[1]["detail"] == "source 201, target 400"


def test_bodies_are_cut_to_the_maximum(tmp_path: Path) -> None:
    writer = TupleWriter(tmp_path, max_body_bytes=4)
    tx = transaction(body=b"0123456789")
    tx.exchanges[0].request = HttpRequest("PUT", "/logs/_doc/1", body=b"abcdef")
    add(writer, tx)
    writer.close()
    row = next(read_tuples(str(tmp_path)))
    assert (row["source_request"]["body"], row["source_request"]["body_size"],
            row["source_request"]["body_truncated"]) == (b"0123", 10, True)
    assert (row["target"][0]["request"]["body"], row["target"][0]["request"]["body_as_source"]) == (b"abcd", False)
    assert (row["source_response"]["body"], row["source_response"]["body_truncated"]) == (b'{"re', True)


def test_a_transaction_never_sent(tmp_path: Path) -> None:
    tx = ReplayedTransaction("c", 1, 0, 5, None, None, 10, None, error="unparseable request", dead_lettered=True)
    writer = TupleWriter(tmp_path)
    writer.add(tx, compare(tx))
    writer.close()
    row = next(read_tuples(str(tmp_path)))
    assert (row["kind"], row["detail"], row["error"], row["dead_lettered"]) == (
        "not_sent", "unparseable request", "unparseable request", True)
    assert row["method"] is None and row["target"] == [] and row["target_started_ns"] is None


def test_files_roll_by_age_and_sort_by_time(tmp_path: Path) -> None:
    clock = Clock()
    writer = TupleWriter(tmp_path, writer_id="host/1", roll_interval_s=60, clock=clock)
    add(writer, transaction(1))
    clock.now += 30
    add(writer, transaction(2))
    assert writer.published == [] and files(tmp_path) == []  # nothing visible until the file is finished
    clock.now += 30
    add(writer, transaction(3))  # the file is 60 s old: finished with this row
    assert len(writer.published) == 1
    clock.now += 10
    add(writer, transaction(4))
    writer.tick()
    assert len(writer.published) == 1
    clock.now += 60
    writer.tick()  # no traffic: the file is finished all the same
    assert len(writer.published) == 2
    names = files(tmp_path)
    assert names == ["tuples-20231114T221320000Z-host-1-000001.parquet",
                     "tuples-20231114T221430000Z-host-1-000002.parquet"]
    assert [pq.read_metadata(tmp_path / n).num_rows for n in names] == [3, 1]
    assert [r["seq"] for r in read_tuples(str(tmp_path))] == [1, 2, 3, 4]


def test_files_roll_by_size_and_memory_stays_bounded(tmp_path: Path) -> None:
    writer = TupleWriter(tmp_path, batch_bytes=4_000, max_file_bytes=20_000, roll_interval_s=3600)
    for seq in range(200):
        add(writer, transaction(seq, body=bytes(1_000)))
        assert writer.buffered_rows <= 4
    writer.close()
    names = files(tmp_path)
    assert len(names) > 2 and names == sorted(names) and not any(n.startswith(".") for n in names)
    assert sum(pq.read_metadata(tmp_path / n).num_rows for n in names) == 200
    assert [r["seq"] for r in read_tuples(str(tmp_path), columns=["seq"])] == list(range(200))


def test_several_writers_share_a_folder(tmp_path: Path) -> None:
    clock = Clock()
    writers = [TupleWriter(tmp_path, clock=clock) for _ in range(3)]
    for w in writers:
        add(w, transaction(1))
        w.flush()
    assert len(files(tmp_path)) == 3
    assert summarize(str(tmp_path)).total == 3


def test_flush_close_and_counts(tmp_path: Path) -> None:
    writer = TupleWriter(tmp_path)
    writer.flush()
    assert files(tmp_path) == []  # no empty files
    add(writer, transaction(1))
    add(writer, transaction(2, target_status=500))
    writer.close()
    writer.close()
    assert (writer.rows, dict(writer.kinds)) == (2, {MATCH: 1, STATUS_MISMATCH: 1})
    assert pq.read_schema(tmp_path / files(tmp_path)[0]) == SCHEMA
    with pytest.raises(TupleStoreError, match="closed"):
        add(writer, transaction(3))


def test_the_null_writer_only_counts() -> None:
    writer = open_tuple_writer("off")
    assert isinstance(writer, NullTupleWriter) and open_tuple_writer(None).location == "off"
    writer.add(transaction(1), Comparison(MATCH))
    writer.close()
    assert (writer.rows, dict(writer.kinds)) == (1, {MATCH: 1})


def test_reading_what_is_not_there(tmp_path: Path) -> None:
    with pytest.raises(TupleStoreError, match="no such folder"):
        list(read_tuples(str(tmp_path / "missing")))
    (tmp_path / "tuples-x.parquet").write_bytes(b"not parquet")
    with pytest.raises(TupleStoreError, match=r"tuples-x\.parquet"):
        list(read_tuples(str(tmp_path)))


@pytest.mark.parametrize(("path", "pattern"), [
    ("/", "/"), ("/_bulk", "/_bulk"), ("/logs-2024/_bulk", "/{index}/_bulk"),
    ("/logs-2024/_doc/abc", "/{index}/_doc/{id}"), ("/logs/_doc", "/{index}/_doc"),
    ("/a,b*/_search", "/{index}/_search"), ("/_search/scroll/DXF1", "/_search/scroll/{scroll_id}"),
    ("/logs/event/1", "/{index}/{type}/{id}"), ("/logs/event/1/_update", "/{index}/{type}/{id}/_update"),
    ("/logs/_update/1", "/{index}/_update/{id}"), ("/_cat/indices/logs-*", "/_cat/indices/{index}"),
    ("/_cluster/health/logs", "/_cluster/health/{index}"), ("/_cluster/settings", "/_cluster/settings"),
    ("/_snapshot/repo/snap/_restore", "/_snapshot/{repository}/{snapshot}/_restore"),
    ("/_ingest/pipeline/p1", "/_ingest/pipeline/{pipeline}"), ("/_nodes/n1/stats", "/_nodes/{node}/stats"),
    ("/_index_template/t1", "/_index_template/{template}"), ("/logs/_alias/a1", "/{index}/_alias/{alias}"),
])
def test_path_patterns(path: str, pattern: str) -> None:
    assert path_pattern(path) == pattern


def test_summary_counts_per_endpoint_and_kind(tmp_path: Path) -> None:
    writer = TupleWriter(tmp_path)
    for seq in range(5):
        add(writer, transaction(seq, path=f"/logs-{seq}/_doc/{seq}", target_status=201 if seq % 2 else 500))
    add(writer, transaction(9, method="POST", path="/_bulk", body=b"", source_status=200, target_status=200))
    writer.close()
    summary = summarize(str(tmp_path))
    assert summary.to_dict() == {
        "total": 6, "kinds": {STATUS_MISMATCH: 3, MATCH: 3},
        "endpoints": [
            {"method": "PUT", "pattern": "/{index}/_doc/{id}", "total": 5, "kinds": {STATUS_MISMATCH: 3, MATCH: 2}},
            {"method": "POST", "pattern": "/_bulk", "total": 1, "kinds": {MATCH: 1}},
        ]}
    again = TupleSummary.from_dict(summary.to_dict())
    again.merge(summary)
    assert again.total == 12 and again.kinds[MATCH] == 6


# --- S3 (the sandbox's moto server) ----------------------------------------------------------------------------

@pytest.fixture
def s3_endpoint(sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    assert sandbox.s3 is not None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    yield sandbox.s3.endpoint


def test_tuples_on_s3(s3_endpoint: str, tmp_path: Path) -> None:
    client = s3_client(endpoint=s3_endpoint, region=REGION)
    bucket = unique("tuples")
    client.create_bucket(Bucket=bucket)
    clock = Clock()
    writer = TupleWriter(f"s3://{bucket}/replay/run1", writer_id="r1", s3_endpoint=s3_endpoint, s3_region=REGION,
                         spool_dir=tmp_path / "spool", clock=clock)
    add(writer, transaction(1))
    add(writer, transaction(2, target_status=404))
    writer.flush()
    clock.now += 5
    add(writer, transaction(3))
    writer.close()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["replay/run1/tuples-20231114T221320000Z-r1-000001.parquet",
                    "replay/run1/tuples-20231114T221325000Z-r1-000002.parquet"]
    assert writer.published == [f"s3://{bucket}/{k}" for k in keys]
    assert list((tmp_path / "spool").iterdir()) == []  # staged files are gone once sent
    location = f"s3://{bucket}/replay/run1"
    rows = list(read_tuples(location, s3_endpoint=s3_endpoint, s3_region=REGION))
    assert [(r["seq"], r["kind"]) for r in rows] == [(1, MATCH), (2, STATUS_MISMATCH), (3, MATCH)]
    assert summarize(location, s3_endpoint=s3_endpoint, s3_region=REGION).kinds == {MATCH: 2, STATUS_MISMATCH: 1}
    one = list(read_tuples(f"s3://{bucket}/{keys[1]}", s3_endpoint=s3_endpoint, s3_region=REGION))
    assert [r["seq"] for r in one] == [3]
