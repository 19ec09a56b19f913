"""The validation report against real engines: an exact backfill validates clean, and each kind of damage done to
the target afterwards is found and named, with nothing else reported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from opensearchpy import OpenSearch
from typer.testing import CliRunner

from migration_pipeline.cli.console import app as console
from migration_pipeline.sandbox import loader
from migration_pipeline.sandbox.state import SandboxState
from migration_pipeline.sandbox.workflow_file import sandbox_workflow
from tests.conftest import FIXTURE_SNAPSHOTS, unique
from tests.workers.validate.helpers import Migration, migrate_snapshot
from workers.common.fingerprint import Fingerprint
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.create import create_snapshot, register_fs_repository
from workers.snapshot.repository import SnapshotRepository
from workers.validate import snapshot_side
from workers.validate.render import write_files
from workers.validate.run import validate


@pytest.fixture(scope="module")
def migration(sandbox: SandboxState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Migration, list[str]]]:
    source, target = sandbox.engines["source"], sandbox.engines["target"]
    prefix = unique("val")
    names = [f"{prefix}-logs", f"{prefix}-products", f"{prefix}-gone"]
    loader.load(source.url, names[0], 400, profile_name="logs", shards=2, routing=True, seed=5)
    loader.load(source.url, names[1], 150, profile_name="products", shards=1, seed=6)
    loader.load(source.url, names[2], 40, profile_name="logs", shards=1, seed=7)
    client = OpenSearch(hosts=[source.url], timeout=120)
    client.indices.refresh(index=",".join(names))
    location = str(Path(source.repo_path) / unique("vrepo"))
    register_fs_repository(client, "r-" + prefix, location)
    create_snapshot(client, "r-" + prefix, "snap", indices=",".join(names))
    tmp = tmp_path_factory.mktemp("validate")
    yield migrate_snapshot(Path(location).as_uri(), "snap", target.url, tmp, indices=names,
                           source_url=source.url), names


def test_an_exact_backfill_validates_clean_and_its_fingerprints_equal_the_snapshots(
        migration: tuple[Migration, list[str]], tmp_path: Path) -> None:
    m, names = migration
    report = validate(m.scope, m.options, metadata_options=m.metadata)
    assert report.clean, report.to_dict()["checks"]
    assert [r.fingerprint for r in report.indices] == ["match"] * 3
    assert all(r.target_digest == r.snapshot_digest and r.target_count == r.snapshot_count for r in report.indices)
    assert {r.index: r.source_count for r in report.indices} == {names[0]: 400, names[1]: 150, names[2]: 40}
    # What the backfill recorded as it sent equals the shards read again from the snapshot.
    repo = SnapshotRepository(open_blob_store(m.scope.repo_uri))
    recorded = snapshot_side.recorded(OpenSearch(hosts=[m.options.target.endpoint]), m.options.coordination_index,
                                      m.scope, [(names[0], 0), (names[0], 1)])
    assert len(recorded) == 2 and not any(fp is None for fp in recorded.values())
    builder = snapshot_side.builder_for(m.options)
    for (index, shard), fps in recorded.items():
        again = snapshot_side.fingerprint_shard(repo, "snap", index, shard, builder)
        assert {k: v.to_dict() for k, v in again.items()} == {k: v.to_dict() for k, v in fps.items()}
    # Every default search ran and agreed, and the metadata is what the plan says.
    assert {q.query.split(" ")[0] for q in report.queries} >= {"match_all", "terms", "date", "top"}
    assert [r.status for r in report.metadata] == ["as planned"] * 3
    # A sample agrees too, and says what it can see.
    sampled = validate(m.scope, replace(m.options, mode="sample", sample_buckets=32), metadata_options=None)
    assert sampled.passed("fingerprints") and {r.fingerprint for r in sampled.indices} == {"sample match"}
    assert "32/256" in sampled.confidence and "95%" in sampled.confidence
    paths = write_files(report, tmp_path / "report")
    assert json.loads(paths["json"].read_text())["clean"] is True
    assert paths["documents_plot"].read_bytes()[:4] == b"\x89PNG"
    assert "<table>" in paths["html"].read_text()
    # Once the coordination index is gone (the cleanup), the fingerprints the report kept stand in for it: nothing is
    # read again from the snapshot.
    known = snapshot_side.shards_from_dict(json.loads(paths["snapshot_fingerprints"].read_text()))
    later = validate(m.scope, replace(m.options, coordination_index=unique(".gone"), queries=False), known=known)
    assert later.clean and not [n for n in later.notes if n.startswith("read again")]


def test_each_difference_on_the_target_is_found_and_named(migration: tuple[Migration, list[str]], sandbox: SandboxState,
                                                          tmp_path: Path) -> None:
    m, (logs, products, gone) = migration
    target = OpenSearch(hosts=[m.options.target.endpoint], timeout=60)
    hits = target.search(index=logs, body={"size": 2, "sort": ["_doc"]})["hits"]["hits"]
    deleted, altered = hits[0], hits[1]
    target.delete(index=logs, id=deleted["_id"], routing=deleted.get("_routing"))
    target.update(index=logs, id=altered["_id"], routing=altered.get("_routing"),
                  body={"doc": {"message": "altered on the target"}})
    target.index(index=products, id="not-from-the-source", body={"name": "extra"})
    target.indices.put_mapping(index=products, body={"properties": {"added_later": {"type": "keyword"}}})
    target.indices.delete(index=gone)
    target.indices.refresh(index=f"{logs},{products}")

    report = validate(m.scope, replace(m.options, queries=False), metadata_options=m.metadata)
    assert not report.clean
    assert sorted((d.index, d.id, d.kind) for d in report.differences) == sorted([
        (logs, deleted["_id"], "missing"), (logs, altered["_id"], "content differs"),
        (products, "not-from-the-source", "extra")])
    example = next(d for d in report.differences if d.kind == "content differs")
    assert example.diff is not None and len(example.diff) == 1
    assert example.diff[0].startswith("message: ") and example.diff[0].endswith('-> "altered on the target"')
    rows = {r.index: r for r in report.indices}
    assert rows[gone].fingerprint == "index missing on the target" and rows[gone].target_count is None
    assert (rows[logs].target_count, rows[products].target_count) == (399, 151)
    assert sorted(report.failures("counts")) == sorted([f"{logs}: snapshot sent 400, target holds 399",
                                                        f"{products}: snapshot sent 150, target holds 151",
                                                        f"{gone}: snapshot sent 40, target holds no such index"])
    metadata = {r.index: r for r in report.metadata}
    assert metadata[logs].ok and metadata[gone].status == "missing on the target"
    assert metadata[products].status == "differs"
    assert metadata[products].differences == ["mappings.properties.added_later: on the target only"]

    # The console says the same and exits 3, listing the ids.
    config = tmp_path / "workflow.yaml"
    config.write_text(sandbox_workflow(
        sandbox, existing="snap", location=m.scope.repo_uri.removeprefix("file://"),
        metadata={"index_allowlist": [logs, products, gone], "index_template_allowlist": ["none"],
                  "component_template_allowlist": ["none"]},
        backfill={"coordination_index": m.options.coordination_index}))
    result = CliRunner().invoke(console, ["validate", "--config", str(config), "--snapshot", "snap", "--no-queries",
                                          "--index", products, "--json"])
    assert result.exit_code == 3, result.output
    found = json.loads(result.stdout)
    assert [(d["id"], d["kind"]) for d in found["differences"]] == [("not-from-the-source", "extra")]
    assert [r["index"] for r in found["indices"]] == [products]


def test_renames_and_an_elasticsearch_6_typed_snapshot_validate_clean(sandbox: SandboxState, tmp_path: Path) -> None:
    repo = FIXTURE_SNAPSHOTS / "ES_6_8_Single"
    renamed = unique("posts-renamed")
    m = migrate_snapshot(repo.as_uri(), "global_state_snapshot", sandbox.engines["target"].url, tmp_path,
                         indices=["posts_2023_02_25", "posts_2024_01_01"],
                         rename=[f"posts_2023_02_25={renamed}", "regex:posts_2024_(.*)=" + renamed + "-$1"])
    report = validate(m.scope, m.options, metadata_options=m.metadata)
    assert report.clean, report.to_dict()["checks"]
    assert sorted(r.index for r in report.indices) == [renamed, f"{renamed}-01_01"]
    assert all(r.fingerprint == "match" and r.snapshot_count > 0 for r in report.indices)
    assert report.skipped == {"queries": "no source cluster to ask"}
    assert all(r.status == "as planned" for r in report.metadata) and len(report.metadata) == 2
    assert isinstance(Fingerprint.from_dict(Fingerprint().to_dict()), Fingerprint)
