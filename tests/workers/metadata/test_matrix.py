"""The version matrix (opt-in: ``pytest -m matrix``): each pair in a sandbox of its own, snapshot and live plans
equal, migrate, a second run identical, the source documents index into the target."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from migration_pipeline.sandbox import manager
from tests.conftest import unique
from tests.workers.metadata.matrix_scenarios import build_es6, build_es8, build_os1
from tests.workers.metadata.scenario import bulk, client
from workers.common.clusters import ClusterConnection
from workers.metadata.apply import migrate
from workers.metadata.options import MigrationOptions
from workers.metadata.plan import evaluate
from workers.metadata.report import Report, Row
from workers.metadata.source import SnapshotLocation, read_source
from workers.snapshot.create import create_snapshot, register_fs_repository

Builder = Callable[[str, str], dict[str, list[dict[str, Any]]]]


def _mine(report: Report, p: str) -> list[Row]:
    return [r for r in report.rows if r.source_name.startswith(p)]


def _comparable(report: Report, p: str) -> list[Any]:
    return [json.loads(json.dumps(r.__dict__, sort_keys=True)) for r in _mine(report, p)]


def _run_pair(source_spec: str, target_spec: str, build: Builder) -> tuple[str, Report, Report, Report]:
    name, p = unique("mdmx"), unique("mx")
    try:
        state = manager.up(manager.UpRequest(source=source_spec, target=target_spec), name=name)
        source, target = state.engines["source"], state.engines["target"]
        docs = build(source.url, p)
        repo = f"{source.repo_path}/{p}"
        register_fs_repository(client(source.url), p, repo)
        create_snapshot(client(source.url), p, "snap", indices=f"{p}-*", include_global_state=True)
        mine = [f"regex:{p}.*"]
        options = MigrationOptions.build(index_allowlist=mine, index_template_allowlist=mine,
                                         component_template_allowlist=mine)
        tc = client(target.url)
        live = evaluate(read_source(cluster=ClusterConnection(endpoint=source.url)), tc, target.url, options)
        snap = evaluate(read_source(snapshot=SnapshotLocation(repo, "snap")), tc, target.url, options)
        assert _comparable(snap, p) == _comparable(live, p)
        live_source = ClusterConnection(endpoint=source.url)
        migrated = migrate(evaluate(read_source(cluster=live_source), tc, target.url, options),
                           tc, target.url)
        second = evaluate(read_source(cluster=ClusterConnection(endpoint=source.url)), tc, target.url, options)
        for row in _mine(second, p):
            if row.action != "blocked":
                assert row.action == "exists-identical", (row.name, row.differences)
        sc = client(source.url)
        for index, expected in docs.items():
            hits = sc.search(index=index, body={"size": 100})["hits"]["hits"]
            assert len(hits) == len(expected)
            answer = bulk(tc, index, [h["_source"] for h in hits], ids=[h["_id"] for h in hits])
            assert not answer["errors"], [i for i in answer["items"] if i["index"].get("error")][:3]
        return p, live, migrated, second
    finally:
        manager.down(name)


@pytest.mark.matrix
def test_es68_to_os219_typed_mappings() -> None:
    p, live, migrated, _ = _run_pair("es:6.8.23", "os:2.19.6", build_es6)
    rows = {r.name: r for r in _mine(live, p)}
    assert {r.action for r in rows.values()} == {"create"}
    typed = rows[f"{p}-typed"]
    assert "merge-mapping-types" in typed.transformations and "analysis-components" in typed.transformations
    assert "mapping type doc removed: documents lose their _type" in typed.warnings
    assert typed.body is not None
    assert typed.body["settings"]["index.analysis.tokenizer.grams.type"] == "ngram"
    assert typed.body["settings"]["index.analysis.analyzer.grams.filter"] == ["lowercase"]
    assert typed.body["mappings"]["properties"]["user"] == {"type": "keyword"}
    template = rows[f"{p}-lt"]
    assert "remove-all-field" in template.transformations and template.body is not None
    assert "_all" not in template.body["mappings"]
    assert rows[f"{p}-plain"].transformations == ["strip-internal-settings"]
    assert {r.result for r in _mine(migrated, p)} == {"created"}


@pytest.mark.parametrize(("source", "target"), [("es:8.19.21", "os:3.8.0"), ("es:8.19.21", "os:2.19.6"),
                                                ("es:9.2.0", "os:3.8.0")])
@pytest.mark.matrix
def test_es8_and_9_vectors_flattened_and_version_markers(source: str, target: str) -> None:
    p, live, migrated, _ = _run_pair(source, target, build_es8)
    rows = {r.name: r for r in _mine(live, p)}
    assert rows[f"{p}-ct"].action == "create" and "flattened-to-flat-object" in rows[f"{p}-ct"].transformations
    flat = rows[f"{p}-flat-1"]
    assert flat.action == "create" and flat.body is not None
    assert flat.body["mappings"]["properties"]["meta"] == {"type": "flat_object"}
    assert "runtime" not in flat.body["mappings"]
    assert not any(k.startswith(("index.version", "index.routing")) for k in flat.body["settings"])
    # The sandbox's OpenSearch has no k-NN plugin: the converted vector index is blocked, naming the plugin.
    vectors = rows[f"{p}-vectors"]
    assert vectors.action == "blocked" and "dense-vector-to-knn" in vectors.transformations
    assert vectors.body is not None and vectors.body["mappings"]["properties"]["emb"]["type"] == "knn_vector"
    assert "k-NN plugin" in vectors.blockers[0]
    results = {r.name: r.result for r in _mine(migrated, p)}
    assert results == {f"{p}-ct": "created", f"{p}-it": "created", f"{p}-lt": "created",
                       f"{p}-flat-1": "created", f"{p}-vectors": "blocked"}


@pytest.mark.matrix
def test_os13_to_os38() -> None:
    p, live, migrated, second = _run_pair("os:1.3.20", "os:3.8.0", build_os1)
    rows = {r.name: r for r in _mine(live, p)}
    assert {r.action for r in rows.values()} == {"create"}
    docs = rows[f"{p}-docs-1"]
    assert docs.body is not None and "index.version.created" not in docs.body["settings"]
    assert {r.result for r in _mine(migrated, p)} == {"created"}
    assert {r.action for r in _mine(second, p)} == {"exists-identical"}
