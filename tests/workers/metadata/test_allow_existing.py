"""Objects that already exist on the target: never overwritten, unless --allow-existing (templates only)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.metadata.scenario import cleanup, client
from workers.common.clusters import ClusterConnection
from workers.metadata.apply import migrate
from workers.metadata.options import MigrationOptions
from workers.metadata.plan import evaluate
from workers.metadata.report import Report
from workers.metadata.source import read_source


@pytest.fixture()
def prefix(sandbox: SandboxState) -> Iterator[str]:
    name = unique("mdex")
    yield name
    cleanup(sandbox.engines["source"].url, name)
    cleanup(sandbox.engines["target"].url, name)


def _rows(report: Report, prefix: str) -> dict[str, tuple[str, str | None]]:
    return {r.name: (r.action, r.result) for r in report.rows if r.source_name.startswith(prefix)}


def test_existing_objects_are_kept_unless_allowed(sandbox: SandboxState, prefix: str) -> None:
    source, target = sandbox.engines["source"], sandbox.engines["target"]
    sc, tc = client(source.url), client(target.url)
    for c, patterns, field in ((sc, [f"{prefix}-a-*"], "keyword"), (tc, [f"{prefix}-other-*"], "text")):
        c.indices.put_template(name=f"{prefix}-t", body={"index_patterns": patterns,
                                                         "mappings": {"properties": {"f": {"type": field}}}})
        c.indices.create(index=f"{prefix}-i", body={"mappings": {"properties": {"f": {"type": field}}}})
    mine = [f"regex:{prefix}.*"]
    live = read_source(cluster=ClusterConnection(endpoint=source.url))

    def run(allow: bool) -> Report:
        options = MigrationOptions.build(index_allowlist=mine, index_template_allowlist=mine,
                                         component_template_allowlist=mine, allow_existing=allow)
        return migrate(evaluate(live, tc, target.url, options), tc, target.url, allow_existing=allow)

    kept = run(allow=False)
    assert _rows(kept, prefix) == {f"{prefix}-t": ("exists-different", "skipped"),
                                   f"{prefix}-i": ("exists-different", "skipped")}
    template = next(r for r in kept.rows if r.name == f"{prefix}-t")
    assert f'index_patterns: plan ["{prefix}-a-*"], target ["{prefix}-other-*"]' in template.differences
    assert tc.indices.get_template(name=f"{prefix}-t")[f"{prefix}-t"]["index_patterns"] == [f"{prefix}-other-*"]
    assert kept.exit_code() == 0
    allowed = run(allow=True)
    assert _rows(allowed, prefix) == {f"{prefix}-t": ("exists-different", "overwritten"),
                                      f"{prefix}-i": ("exists-different", "kept-existing")}
    assert tc.indices.get_template(name=f"{prefix}-t")[f"{prefix}-t"]["index_patterns"] == [f"{prefix}-a-*"]
    again = run(allow=False)
    assert _rows(again, prefix)[f"{prefix}-t"] == ("exists-identical", "unchanged")
    # The index still holds the target's own mapping: it was never recreated.
    assert tc.indices.get_mapping(index=f"{prefix}-i")[f"{prefix}-i"]["mappings"]["properties"]["f"]["type"] == "text"
