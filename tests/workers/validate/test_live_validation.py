"""Validation against the live source, on real engines, while a writer keeps writing: the writes it sends to the
source reach the target about a second later (as the replayer's would), and only what differs for good is reported.
The report, a sample, the scheduled checks (``_cheap``) and the console all compare that way once replay is on."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from opensearchpy import OpenSearch
from typer.testing import CliRunner

from assets.validation import _cheap
from migration_pipeline.cli.console import app as console
from migration_pipeline.sandbox.state import SandboxState
from migration_pipeline.sandbox.workflow_file import sandbox_workflow
from resources.workflow import WorkflowResource
from tests.conftest import unique
from workers.common.clusters import ClusterConnection
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.create import create_snapshot, register_fs_repository
from workers.snapshot.repository import SnapshotRepository
from workers.validate.render import to_markdown
from workers.validate.report import CONVERGED
from workers.validate.run import validate
from workers.validate.scope import SnapshotScope, ValidationOptions
from workflow_model.validation import scope_dict

DOCS = 2000
LAG_S = 1.0  # how long a write takes to reach the target (the replayer's lag)
# Left alone by the writer: the tests damage these on the target.
ALTERED, DELETED, EXTRA = "b-10", "b-20", "only-on-target"


def _routing(i: int) -> str | None:
    return f"r{i % 3}" if i % 10 == 7 else None  # some documents routed: the rechecks must find them


def _doc(i: int, version: int = 0) -> dict[str, Any]:
    return {"n": i, "title": f"document {i}", "version": version, "tags": [f"t{i % 7}", f"t{i % 5}"],
            "nested": {"a": i % 13, "b": [i, version]}}


def _bulk(client: OpenSearch, index: str, ops: list[tuple[str, str, str | None, dict[str, Any] | None]]) -> None:
    """("index"|"delete", id, routing, source) as one _bulk request."""
    lines: list[bytes] = []
    for op, doc_id, routing, source in ops:
        meta: dict[str, Any] = {"_index": index, "_id": doc_id}
        if routing is not None:
            meta["routing"] = routing
        lines.append(orjson.dumps({op: meta}))
        if source is not None:
            lines.append(orjson.dumps(source))
    resp = client.bulk(body=b"\n".join(lines) + b"\n")
    assert not resp["errors"] or all(
        i.get("delete", {}).get("status") == 404 for i in resp["items"] if "error" in next(iter(i.values()))), resp


class LaggedWriter(threading.Thread):
    """Writes new, updated and deleted documents to the source in small batches, and the same batches to the
    target ``LAG_S`` later."""

    def __init__(self, source: OpenSearch, target: OpenSearch, index: str) -> None:
        super().__init__(daemon=True, name="lagged-writer")
        self.source, self.target, self.index = source, target, index
        self.stopping = threading.Event()
        self.pending: deque[tuple[float, list[Any]]] = deque()
        self.written = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        rng = random.Random(11)
        created: list[str] = []
        untouched = {ALTERED, DELETED}
        # Each existing document is updated at most once: a write then always reaches the target LAG_S later and
        # stays, so a recheck after the settle time sees it converged (a document rewritten faster than the lag at
        # every recheck is a persistent difference by design, docs/validation.md).
        fresh = list(range(DOCS))
        rng.shuffle(fresh)
        try:
            while not self.stopping.is_set():
                ops: list[tuple[str, str, str | None, dict[str, Any] | None]] = []
                for _ in range(8):
                    roll = rng.random()
                    if roll < 0.4:
                        doc_id = f"w-{self.written}"
                        created.append(doc_id)
                        ops.append(("index", doc_id, None, {"writer": self.written, "at": time.time()}))
                    elif (roll < 0.9 or not created) and fresh:
                        i = fresh.pop()
                        if f"b-{i}" not in untouched:
                            ops.append(("index", f"b-{i}", _routing(i), _doc(i, version=self.written)))
                    elif created:
                        ops.append(("delete", created.pop(rng.randrange(len(created))), None, None))
                    self.written += 1
                _bulk(self.source, self.index, ops)
                self.pending.append((time.monotonic() + LAG_S, ops))
                self._deliver(time.monotonic())
                self.stopping.wait(0.1)
            self._deliver(float("inf"))  # stopped: the replayer catches up
        except BaseException as exc:  # the test fails on it in stop()
            self.error = exc

    def _deliver(self, now: float) -> None:
        while self.pending and self.pending[0][0] <= now:
            _bulk(self.target, self.index, self.pending.popleft()[1])

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        assert self.error is None, self.error


@dataclass(frozen=True)
class Live:
    source: OpenSearch
    target: OpenSearch
    index: str
    scope: SnapshotScope
    options: ValidationOptions
    location: str  # the snapshot repository's folder


@pytest.fixture
def live(sandbox: SandboxState) -> Iterator[Live]:
    """An index holding the same 2000 documents on source and target, and a snapshot of it naming the scope."""
    src, tgt = sandbox.engines["source"], sandbox.engines["target"]
    source, target = OpenSearch(hosts=[src.url], timeout=60), OpenSearch(hosts=[tgt.url], timeout=60)
    index = unique("live")
    for client in (source, target):
        client.indices.create(index=index, body={"settings": {"number_of_shards": 2, "number_of_replicas": 0}})
        for start in range(0, DOCS, 500):
            _bulk(client, index, [("index", f"b-{i}", _routing(i), _doc(i)) for i in range(start, start + 500)])
        client.indices.refresh(index=index)
    location = str(Path(src.repo_path) / unique("lrepo"))
    register_fs_repository(source, "r-" + index, location)
    create_snapshot(source, "r-" + index, "snap", indices=index)
    uri = Path(location).as_uri()
    scope = SnapshotScope(uri, "snap", SnapshotRepository(open_blob_store(uri)).snapshot("snap").uuid, {index: DOCS})
    options = ValidationOptions(target=ClusterConnection(endpoint=tgt.url), source=ClusterConnection(endpoint=src.url),
                                against="source", settle_s=2.0, rechecks=3, queries=False, metadata=False)
    yield Live(source, target, index, scope, options, location)
    for client in (source, target):
        client.indices.delete(index=index, ignore_unavailable=True)


def test_live_validation_reports_exactly_the_injected_differences_while_writes_are_in_flight(live: Live) -> None:
    r = _routing(10)
    live.target.index(index=live.index, id=ALTERED, routing=r, body={**_doc(10), "title": "changed on the target"})
    live.target.delete(index=live.index, id=DELETED, routing=_routing(20))
    live.target.index(index=live.index, id=EXTRA, body={"only": "target"})
    writer = LaggedWriter(live.source, live.target, live.index)
    writer.start()
    try:
        time.sleep(1.5)  # writes in flight from the start
        report = validate(live.scope, live.options)
        sampled = validate(live.scope, replace(live.options, mode="sample", sample_buckets=16, rechecks=2))
    finally:
        writer.stop()
    assert writer.written > 100
    assert sorted((d.id, d.kind) for d in report.differences) == [
        (ALTERED, "content differs"), (DELETED, "missing"), (EXTRA, "extra")]
    altered = next(d for d in report.differences if d.id == ALTERED)
    assert altered.diff == ['title: "document 10" -> "changed on the target"']
    [row] = report.indices
    assert (row.persistent_missing, row.persistent_extra, row.fingerprint) == (1, 1, "differs")
    assert row.converged > 0, "the writes in flight were seen and converged"
    assert not report.passed("counts") and not report.passed("fingerprints")
    assert report.failures("counts") == [
        f"{live.index}: live source holds {row.snapshot_count}, target {row.target_count} (read moments apart); "
        f"after {row.converged} differences in flight converged, 1 missing and 1 extra persisted through "
        "3 rechecks 2s apart"]
    assert f"{row.converged} converged" in " ".join(report.notes)
    assert "against source (live)" in to_markdown(report)
    assert report.to_dict()["against"] == "source" and report.to_dict()["live"]["converged"] == row.converged
    # The scheduled checks' sample still sees every missing and extra document (all are counted per bucket).
    assert {(d.id, d.kind) for d in sampled.differences} >= {(DELETED, "missing"), (EXTRA, "extra")}
    assert {d.id for d in sampled.differences} <= {ALTERED, DELETED, EXTRA}


def test_live_validation_is_clean_while_writes_are_in_flight(live: Live, sandbox: SandboxState,
                                                             tmp_path: Path) -> None:
    # A workflow with replay on: the console and the scheduled checks compare with the live source by default.
    config = tmp_path / "workflow.yaml"
    config.write_text(sandbox_workflow(
        sandbox, existing="snap", location=live.location, replay={"enabled": True, "kafka_brokers": "127.0.0.1:9"},
        metadata={"index_allowlist": [live.index], "index_template_allowlist": ["none"],
                  "component_template_allowlist": ["none"]},
        validation={"live": {"settle_s": live.options.settle_s, "rechecks": live.options.rechecks}}))
    log = SimpleNamespace(log=SimpleNamespace(info=lambda message: None))
    writer = LaggedWriter(live.source, live.target, live.index)
    writer.start()
    try:
        time.sleep(1.5)
        report = validate(live.scope, live.options)
        sampled = validate(live.scope, replace(live.options, mode="sample", sample_buckets=16))
        scheduled = _cheap(log, WorkflowResource(config_path=str(config)),  # type: ignore[arg-type]
                           scope_dict(live.scope), None)
    finally:
        writer.stop()
    assert report.clean, (report.to_dict()["checks"], [d.to_dict() for d in report.differences])
    assert sampled.clean, (sampled.to_dict()["checks"], [d.to_dict() for d in sampled.differences])
    [row] = report.indices
    assert row.fingerprint in ("match", CONVERGED) and row.target_count is not None
    assert scheduled["against"] == "source" and scheduled["mode"] == "sample"
    assert scheduled["checks"]["counts"]["passed"] and scheduled["checks"]["fingerprints"]["passed"], scheduled
    # Against the snapshot, the same target differs: what live mode is for.
    against_snapshot = validate(live.scope, replace(live.options, against="snapshot"))
    assert not against_snapshot.passed("counts")
    # The console follows the workflow (replay on: the source), and --against overrides it.
    for flags, against in (([], "source"), (["--against", "snapshot"], "snapshot")):
        result = CliRunner().invoke(console, ["validate", "--config", str(config), "--snapshot", "snap", "--no-queries",
                                              "--json", *flags])
        found = json.loads(result.stdout)
        assert found["against"] == against and result.exit_code in (0, 3), result.output
        assert found["checks"]["counts"]["passed"] is (against == "source"), found["checks"]
