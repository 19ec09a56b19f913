"""Elasticsearch 7.10 → OpenSearch 2.19 end to end on the session sandbox: evaluate (live and snapshot), migrate,
the target holds the plan, a second run changes nothing, and the source documents index without mapping errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.metadata.scenario import Scenario, build_es7, bulk, cleanup, client
from workers.common.clusters import ClusterConnection
from workers.metadata.apply import migrate
from workers.metadata.plan import evaluate
from workers.metadata.report import Report, Row
from workers.metadata.source import SnapshotLocation, read_source


@dataclass
class Runs:
    """The reports of one scenario: both plans before migrating, the migration, and a second evaluation."""

    scenario: Scenario
    live_plan: Report
    snapshot_plan: Report
    migrated: Report
    second: Report


def _mine(report: Report, prefix: str) -> list[Row]:
    return [r for r in report.rows if r.source_name.startswith(prefix)]


@pytest.fixture(scope="module")
def runs(sandbox: SandboxState) -> Iterator[Runs]:
    source, target = sandbox.engines["source"], sandbox.engines["target"]
    prefix = unique("md710")
    try:
        scenario = build_es7(source.url, target.url, prefix, source.repo_path)
        assert scenario.repo_dir and scenario.snapshot
        options = scenario.options()
        tc = client(target.url)
        live = read_source(cluster=ClusterConnection(endpoint=source.url))
        snap = read_source(snapshot=SnapshotLocation(scenario.repo_dir, scenario.snapshot))
        live_plan = evaluate(live, tc, target.url, options)
        snapshot_plan = evaluate(snap, tc, target.url, options)
        migrated = migrate(evaluate(live, tc, target.url, options), tc, target.url)
        second = evaluate(read_source(cluster=ClusterConnection(endpoint=source.url)), tc, target.url, options)
        yield Runs(scenario, live_plan, snapshot_plan, migrated, second)
    finally:
        cleanup(source.url, prefix)
        cleanup(target.url, prefix)


def test_plan_creates_every_object_in_dependency_order(runs: Runs) -> None:
    p = runs.scenario.prefix
    rows = _mine(runs.live_plan, p)
    assert [(r.kind, r.name, r.action) for r in rows] == [
        ("component_template", f"{p}-ct-text", "create"),
        ("index_template", f"{p}-it", "create"),
        ("legacy_template", f"{p}-lt", "create"),
        ("index", f"{p}-custom", "create"),
        ("index", f"{p}-events-1", "create"),
        ("index", f"{p}-logs-1", "create"),
    ]
    custom = next(r for r in rows if r.name == f"{p}-custom")
    assert custom.transformations == ["strip-internal-settings"]
    assert any("index.blocks.write=true" in w for w in custom.warnings)
    assert any("index.routing.allocation.exclude._name=no-such-node" in w for w in custom.warnings)
    assert custom.body is not None
    settings = custom.body["settings"]
    assert settings["index.mapping.total_fields.limit"] == "3000"
    assert settings["index.analysis.filter.syn.synonyms"] == ["laptop, notebook"]
    assert not any(k.startswith(("index.uuid", "index.version", "index.creation_date", "index.provided_name",
                                 "index.blocks", "index.routing")) for k in settings)
    # Objects of other tests on the shared sandbox are listed as excluded, never migrated.
    others = [r for r in runs.live_plan.rows if not r.source_name.startswith(p)]
    assert all(r.action == "excluded" for r in others)
    assert runs.live_plan.exit_code() == 0


def test_snapshot_and_live_cluster_give_the_same_plan(runs: Runs) -> None:
    p = runs.scenario.prefix

    def comparable(report: Report) -> list[dict[str, object]]:
        return [json.loads(json.dumps(r.__dict__, sort_keys=True)) for r in _mine(report, p)]

    assert comparable(runs.snapshot_plan) == comparable(runs.live_plan)
    assert runs.snapshot_plan.source_version == runs.live_plan.source_version == "elasticsearch 7.10.2"


def test_migrate_creates_everything_and_a_second_run_is_identical(runs: Runs) -> None:
    p = runs.scenario.prefix
    assert {r.result for r in _mine(runs.migrated, p)} == {"created"}
    assert runs.migrated.exit_code() == 0
    assert {(r.name, r.action) for r in _mine(runs.second, p)} == {(r.name, "exists-identical")
                                                                     for r in _mine(runs.live_plan, p)}


def test_target_holds_the_plan(runs: Runs) -> None:
    p = runs.scenario.prefix
    tc = client(runs.scenario.target_url)
    events = tc.indices.get(index=f"{p}-events-1", params={"flat_settings": "true"})[f"{p}-events-1"]
    assert events["aliases"][f"{p}-events-alice"] == {"filter": {"term": {"user": "alice"}}, "index_routing": "2",
                                                      "search_routing": "2"}
    assert events["aliases"][f"{p}-events-write"] == {"is_write_index": True}
    assert events["settings"]["index.number_of_shards"] == "2"
    assert events["mappings"]["properties"]["title"] == {"type": "text", "analyzer": "folded"}
    logs = tc.indices.get_settings(index=f"{p}-logs-1", params={"flat_settings": "true"})[f"{p}-logs-1"]
    assert logs["settings"]["index.mapping.total_fields.limit"] == "1500"
    template = tc.indices.get_template(name=f"{p}-lt")[f"{p}-lt"]
    assert template["order"] == 2 and template["aliases"][f"{p}-errors"]["filter"] == {"term": {"level": "error"}}
    composable = tc.transport.perform_request("GET", f"/_index_template/{p}-it")["index_templates"][0]
    assert composable["index_template"]["composed_of"] == [f"{p}-ct-text"]
    assert composable["index_template"]["priority"] == 120
    # The custom analyzers work on the target as they did on the source.
    for index, analyzer, text in ((f"{p}-events-1", "folded", "Café & Crème"),
                                  (f"{p}-custom", "with_synonyms", "laptop"),
                                  (f"{p}-custom", "autocomplete", "Laptop")):
        want = client(runs.scenario.source_url).indices.analyze(index=index, body={"analyzer": analyzer,
                                                                                  "text": text})
        have = tc.indices.analyze(index=index, body={"analyzer": analyzer, "text": text})
        assert [t["token"] for t in have["tokens"]] == [t["token"] for t in want["tokens"]], analyzer
    # The write block of the source was not copied: the backfill can write.
    custom = tc.indices.get_settings(index=f"{p}-custom", params={"flat_settings": "true"})[f"{p}-custom"]
    assert "index.blocks.write" not in custom["settings"]


def test_source_documents_index_into_the_target(runs: Runs) -> None:
    sc = client(runs.scenario.source_url)
    tc = client(runs.scenario.target_url)
    for index, count in runs.scenario.docs.items():
        hits = sc.search(index=index, body={"size": 1000, "query": {"match_all": {}}})["hits"]["hits"]
        assert len(hits) == count
        answer = bulk(tc, index, [h["_source"] for h in hits], ids=[h["_id"] for h in hits])
        assert not answer["errors"], [i for i in answer["items"] if i["index"].get("error")][:3]
        assert tc.count(index=index)["count"] == count
    # The alias with a filter finds the same documents on both sides.
    alias = f"{runs.scenario.prefix}-events-alice"
    assert tc.count(index=alias)["count"] == sc.count(index=alias)["count"] > 0
