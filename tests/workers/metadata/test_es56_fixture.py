"""The Elasticsearch 5.6 fixture snapshot (one index, two mapping types) → OpenSearch 2.19, read from the snapshot:
merged into one mapping, or split into one index per type; the snapshot's documents index without errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import FIXTURE_SNAPSHOTS, unique
from tests.workers.metadata.scenario import bulk, cleanup, client
from workers.documents.jsonl import source_value
from workers.documents.reader import SnapshotDocument, read_snapshot_documents
from workers.metadata.apply import migrate
from workers.metadata.options import MigrationOptions
from workers.metadata.plan import evaluate
from workers.metadata.report import Row
from workers.metadata.source import SnapshotLocation, read_source
from workers.snapshot.blobstore import open_blob_store

FIXTURE = FIXTURE_SNAPSHOTS / "ES_5_6_Updates_Deletes"
SNAPSHOT = "rfs_snapshot"
INDEX = "test_updates_deletes"


@pytest.fixture(scope="module")
def documents() -> list[SnapshotDocument]:
    return list(read_snapshot_documents(open_blob_store(str(FIXTURE)), SNAPSHOT))


@pytest.fixture()
def name(sandbox: SandboxState) -> Iterator[str]:
    new = unique("md56")
    yield new
    cleanup(sandbox.engines["target"].url, new)


def _index_rows(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.kind == "index"]


def test_multi_type_index_is_merged_and_its_documents_index(sandbox: SandboxState, name: str,
                                                             documents: list[SnapshotDocument]) -> None:
    target = sandbox.engines["target"].url
    tc = client(target)
    source = read_source(snapshot=SnapshotLocation(str(FIXTURE), SNAPSHOT))
    assert str(source.version) == "elasticsearch 5.6.16"
    report = evaluate(source, tc, target, MigrationOptions.build(rename=[f"{INDEX}={name}"]))
    # Every template of the 5.6 cluster is X-Pack's own: excluded by default, and listed as such.
    templates = [r for r in report.rows if r.kind != "index"]
    assert len(templates) == 13 and {r.action for r in templates} == {"excluded"}
    assert all(r.warnings[0].startswith("excluded by default") for r in templates)
    [row] = _index_rows(report.rows)
    assert (row.name, row.source_name, row.action) == (name, INDEX, "create")
    assert row.transformations == ["strip-internal-settings", "merge-mapping-types", "rename"]
    assert "mapping types type1, type2 merged into one mapping" in row.warnings
    assert any(w.startswith("_all was on") for w in row.warnings)
    assert report.exit_code() == 0
    migrate(report, tc, target)
    assert row.result == "created"
    mapping = tc.indices.get_mapping(index=name)[name]["mappings"]
    assert sorted(mapping["properties"]) == ["content", "contents", "title"]
    answer = bulk(tc, name, [source_value(d) for d in documents], ids=[d.id for d in documents])
    assert not answer["errors"], answer["items"]
    assert tc.count(index=name)["count"] == len(documents) == 3
    again = evaluate(source, tc, target, MigrationOptions.build(rename=[f"{INDEX}={name}"]))
    assert [r.action for r in _index_rows(again.rows)] == ["exists-identical"]


def test_multi_type_index_split_by_type(sandbox: SandboxState, name: str,
                                        documents: list[SnapshotDocument]) -> None:
    target = sandbox.engines["target"].url
    tc = client(target)
    source = read_source(snapshot=SnapshotLocation(str(FIXTURE), SNAPSHOT))
    options = MigrationOptions.build(multi_type="split", rename=[f"regex:{INDEX}_(.*)={name}-$1"])
    report = migrate(evaluate(source, tc, target, options), tc, target)
    rows = _index_rows(report.rows)
    assert [(r.name, r.source_type, r.result) for r in rows] == [(f"{name}-type1", "type1", "created"),
                                                                 (f"{name}-type2", "type2", "created")]
    assert sorted(tc.indices.get_mapping(index=f"{name}-type1")[f"{name}-type1"]["mappings"]["properties"]) == \
        ["title"]
    by_type: dict[str, list[SnapshotDocument]] = {}
    for doc in documents:
        by_type.setdefault(doc.type or "", []).append(doc)
    assert set(by_type) <= {"type1", "type2"}
    for type_name, docs in by_type.items():
        answer = bulk(tc, f"{name}-{type_name}", [source_value(d) for d in docs], ids=[d.id for d in docs])
        assert not answer["errors"], answer["items"]
