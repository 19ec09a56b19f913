"""Bad input: invalid patterns, unreachable or unauthorised targets, a mapping the target rejects, a failure while
migrating, and a rename that makes two indices collide. Real engines (the session sandbox)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.metadata.authproxy import basic_auth_proxy
from tests.workers.metadata.scenario import cleanup, client
from workers.common.cluster_info import ClusterUnreachableError
from workers.common.clusters import BasicAuth, ClusterConnection, build_client
from workers.metadata.apply import migrate
from workers.metadata.errors import AllowListError
from workers.metadata.http import ClusterAuthError
from workers.metadata.model import SourceMetadata
from workers.metadata.options import MigrationOptions
from workers.metadata.plan import evaluate
from workers.metadata.source import read_source


@pytest.fixture()
def prefix(sandbox: SandboxState) -> Iterator[str]:
    name = unique("mdbad")
    yield name
    cleanup(sandbox.engines["source"].url, name)
    cleanup(sandbox.engines["target"].url, name)


def _source(sandbox: SandboxState) -> SourceMetadata:
    return read_source(cluster=ClusterConnection(endpoint=sandbox.engines["source"].url))


def _options(prefix: str, **kw: object) -> MigrationOptions:
    return MigrationOptions.build(index_allowlist=[f"regex:{prefix}.*"], index_template_allowlist=["none"],
                                  component_template_allowlist=["none"], **kw)  # type: ignore[arg-type]


def test_invalid_regex_names_the_list_and_entry() -> None:
    with pytest.raises(AllowListError, match=r"component template allow list: entry 'regex:\[a-' is not a valid"):
        MigrationOptions.build(component_template_allowlist=["ok", "regex:[a-"])


def test_unreachable_target_is_a_clear_error(sandbox: SandboxState) -> None:
    with pytest.raises(ClusterUnreachableError, match=r"cannot reach http://127.0.0.1:1"):
        evaluate(_source(sandbox), build_client(ClusterConnection(endpoint="http://127.0.0.1:1", timeout_s=2)),
                 "http://127.0.0.1:1", MigrationOptions())


def test_unauthorised_target_is_a_clear_error(sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MD_TEST_WRONG_PASSWORD", "wrong")
    with basic_auth_proxy(sandbox.engines["target"].url, "admin", "right") as url:
        conn = ClusterConnection(endpoint=url, auth=BasicAuth(username="admin", password_env="MD_TEST_WRONG_PASSWORD"))
        with pytest.raises(ClusterAuthError, match=r"refused the credentials \(401\)"):
            evaluate(_source(sandbox), build_client(conn), conn.redacted(), MigrationOptions())


def test_rename_collision_is_blocked_and_names_both(sandbox: SandboxState, prefix: str) -> None:
    sc = client(sandbox.engines["source"].url)
    for n in (1, 2):
        sc.indices.create(index=f"{prefix}-part-{n}")
    options = _options(prefix, rename=[f"regex:{prefix}-part-\\d=${{0}}-merged".replace("${0}", prefix)])
    report = evaluate(_source(sandbox), client(sandbox.engines["target"].url), "target", options)
    rows = [r for r in report.rows if r.source_name.startswith(prefix)]
    assert [(r.name, r.action) for r in rows] == [(f"{prefix}-merged", "blocked")] * 2
    assert rows[0].blockers == [f"name collision: {prefix}-part-1, {prefix}-part-2 would all become index "
                                f"{prefix}-merged"]
    assert report.exit_code() == 3


def test_target_rejecting_a_mapping_blocks_that_object_only(sandbox: SandboxState, prefix: str) -> None:
    source, target = sandbox.engines["source"], sandbox.engines["target"]
    # A synonyms file the source node has and the target node lacks: a classic migration failure.
    analysis = Path(source.node_dir) / "config" / "analysis"
    analysis.mkdir(exist_ok=True)
    os.chmod(analysis, 0o755)
    synonyms = analysis / f"{prefix}.txt"
    synonyms.write_text("laptop, notebook\n")
    os.chmod(synonyms, 0o644)
    try:
        sc = client(source.url)
        sc.indices.create(index=f"{prefix}-syn", body={
            "settings": {"analysis": {
                "filter": {"syn": {"type": "synonym", "synonyms_path": f"analysis/{prefix}.txt"}},
                "analyzer": {"s": {"tokenizer": "standard", "filter": ["lowercase", "syn"]}}}},
            "mappings": {"properties": {"d": {"type": "text", "analyzer": "s"}}}})
        sc.indices.create(index=f"{prefix}-ok", body={"mappings": {"properties": {"d": {"type": "text"}}}})
        tc = client(target.url)
        report = migrate(evaluate(_source(sandbox), tc, target.url, _options(prefix)), tc, target.url)
    finally:
        synonyms.unlink()
    rows = {r.name: r for r in report.rows if r.source_name.startswith(prefix)}
    assert rows[f"{prefix}-ok"].result == "created"
    bad = rows[f"{prefix}-syn"]
    assert bad.action == "blocked" and bad.result == "blocked"
    # The target's own words: OpenSearch names the setting, not the file.
    assert bad.blockers[0] == ("the target rejects it: illegal_argument_exception: IOException while reading "
                               "synonyms_path_path: file not readable")
    assert report.exit_code() == 3
    assert not tc.indices.exists(index=f"{prefix}-syn")


def test_an_object_failing_on_migrate_does_not_stop_the_others(sandbox: SandboxState, prefix: str) -> None:
    source, target = sandbox.engines["source"], sandbox.engines["target"]
    sc, tc = client(source.url), client(target.url)
    sc.indices.create(index=f"{prefix}-a", body={"aliases": {f"{prefix}-shared": {}}})
    sc.indices.create(index=f"{prefix}-b")
    report = evaluate(_source(sandbox), tc, target.url, _options(prefix))
    assert {r.action for r in report.rows if r.source_name.startswith(prefix)} == {"create"}
    # Between evaluate and migrate, someone creates an index named like a planned alias.
    tc.indices.create(index=f"{prefix}-shared")
    migrate(report, tc, target.url)
    rows = {r.name: r for r in report.rows if r.source_name.startswith(prefix)}
    assert rows[f"{prefix}-b"].result == "created"
    failed = rows[f"{prefix}-a"]
    assert failed.result == "failed" and failed.reason is not None
    assert "invalid_alias_name_exception" in failed.reason and f"{prefix}-shared" in failed.reason
    assert report.exit_code() == 1
