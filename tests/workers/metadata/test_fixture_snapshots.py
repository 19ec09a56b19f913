"""The fixture snapshots of Elasticsearch 5.6, 6.8 and 7.10 (tests/fixtures/): the plan read from the filesystem
equals the plan read through S3 (a real moto server); what each plan holds; renames reach indices, aliases and
patterns."""

from __future__ import annotations

import pytest

from migration_pipeline.sandbox import s3 as sandbox_s3
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import FIXTURE_SNAPSHOTS, unique
from tests.workers.metadata.scenario import client
from workers.metadata.options import MigrationOptions
from workers.metadata.plan import evaluate
from workers.metadata.report import Report
from workers.metadata.source import SnapshotLocation, read_source
from workers.snapshot.blobstore import s3_client, upload_directory

FIXTURES = FIXTURE_SNAPSHOTS


def _plan(sandbox: SandboxState, location: SnapshotLocation, options: MigrationOptions) -> Report:
    target = sandbox.engines["target"].url
    return evaluate(read_source(snapshot=location), client(target), target, options)


@pytest.mark.parametrize(("name", "snapshot"), [("ES_5_6_Updates_Deletes", "rfs_snapshot"),
                                                ("ES_6_8_Single", "global_state_snapshot"),
                                                ("ES_7_10_Single", "global_state_snapshot")])
def test_s3_and_filesystem_give_the_same_plan(sandbox: SandboxState, aws_env: None, name: str,
                                              snapshot: str) -> None:
    assert sandbox.s3 is not None
    s3 = s3_client(endpoint=sandbox.s3.endpoint, region=sandbox_s3.REGION)
    bucket = unique("mdrepo")
    s3.create_bucket(Bucket=bucket)
    upload_directory(FIXTURES / name, s3, bucket, name)
    options = MigrationOptions.build(rename=[f"regex:(posts.*|test_updates.*)={bucket}-$1"])
    on_s3 = _plan(sandbox, SnapshotLocation(f"s3://{bucket}/{name}", snapshot, sandbox.s3.endpoint,
                                            sandbox_s3.REGION), options)
    on_disk = _plan(sandbox, SnapshotLocation(str(FIXTURES / name), snapshot), options)
    assert [r.__dict__ for r in on_s3.rows] == [r.__dict__ for r in on_disk.rows]
    assert on_s3.blocked == [] and on_s3.exit_code() == 0


def test_elasticsearch_6_8_fixture(sandbox: SandboxState) -> None:
    u = unique("md68")
    report = _plan(sandbox, SnapshotLocation(str(FIXTURES / "ES_6_8_Single"), "global_state_snapshot"),
                   MigrationOptions.build(rename=[f"regex:posts(.*)={u}-posts$1"]))
    assert report.source_version == "elasticsearch 6.8.24"
    planned = {r.name: r for r in report.rows if r.action != "excluded"}
    assert sorted(planned) == [f"{u}-posts_2023_02_25", f"{u}-posts_2024_01_01", "posts_index_template"]
    template = planned["posts_index_template"]
    assert template.body is not None and template.body["index_patterns"] == [f"{u}-posts_*"]
    index = planned[f"{u}-posts_2024_01_01"]
    assert index.body is not None
    assert index.body["aliases"]["another_alias"] == {"filter": {"term": {"author": "Tobias Funke"}},
                                                      "index_routing": "user123", "search_routing": "user123"}
    assert index.body["mappings"] == {"properties": {"author": {"type": "keyword"}, "contents": {"type": "text"},
                                                     "tags": {"type": "keyword"}}}
    # X-Pack's own templates of the 6.8 cluster are listed as excluded, each with its reason.
    excluded = [r for r in report.rows if r.action == "excluded"]
    assert {r.name for r in excluded} >= {".watches", "security-index-template", "logstash-index-template"}


def test_elasticsearch_7_10_fixture(sandbox: SandboxState) -> None:
    u = unique("md710f")
    report = _plan(sandbox, SnapshotLocation(str(FIXTURES / "ES_7_10_Single"), "global_state_snapshot"),
                   MigrationOptions.build(rename=[f"regex:posts_(\\d.*)={u}-$1"]))
    planned = {(r.kind, r.name): r for r in report.rows if r.action != "excluded"}
    assert sorted(planned) == [("component_template", "posts_template"), ("index", f"{u}-2023_02_25"),
                               ("index", f"{u}-2024_01_01"), ("index_template", "posts_index_template")]
    assert all(r.action == "create" for r in planned.values())
    # The data-stream templates Elasticsearch installs (logs, metrics, synthetics and their components) and the
    # managed ILM/SLM/Watcher templates are excluded by default.
    excluded = {r.name for r in report.rows if r.action == "excluded"}
    assert {"logs", "metrics-mappings", "ilm-history", ".watches"} <= excluded
    index = planned[("index", f"{u}-2023_02_25")]
    assert index.body is not None and "index.routing.allocation.include._tier_preference" not in index.body["settings"]
