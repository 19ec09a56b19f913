"""The fingerprint the backfill records from each supported source's snapshot equals the one the target scan computes
after an exact backfill (opt-in: pytest -m matrix; the default pair runs in test_validate.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox import loader, manager
from migration_pipeline.sandbox.catalog import RELEASES, EngineRelease
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.validate.helpers import migrate_snapshot
from workers.snapshot.create import create_snapshot, register_fs_repository
from workers.validate.run import validate

DEFAULT_SOURCE = "elasticsearch:7.10.2"
SOURCES = [r for r in RELEASES if r.spec != DEFAULT_SOURCE]


@pytest.mark.matrix
@pytest.mark.parametrize("release", SOURCES, ids=[r.spec for r in SOURCES])
def test_the_snapshot_fingerprint_equals_the_targets(release: EngineRelease, sandbox: SandboxState,
                                                     tmp_path: Path) -> None:
    name = unique("vmatrix")
    try:
        node = manager.up(manager.UpRequest(source=release.spec, target=None), name=name).engines["source"]
        index = unique("vm")
        loader.load(node.url, index, 300, profile_name="logs", shards=2, routing=True, seed=11)
        client = OpenSearch(hosts=[node.url], timeout=120)
        client.indices.refresh(index=index)
        location = Path(node.repo_path) / "repo"
        register_fs_repository(client, "r", str(location))
        create_snapshot(client, "r", "s1", indices=index)
        m = migrate_snapshot(location.as_uri(), "s1", sandbox.engines["target"].url, tmp_path, indices=[index],
                             source_url=node.url)
        report = validate(m.scope, m.options, metadata_options=m.metadata)
        assert report.passed("counts") and report.passed("fingerprints"), report.to_dict()["checks"]
        assert report.indices[0].snapshot_digest == report.indices[0].target_digest
        assert report.indices[0].target_count == 300
        assert not [n for n in report.notes if n.startswith("read again")]  # the backfill recorded every shard
        assert report.passed("metadata") and report.passed("queries"), report.to_dict()["checks"]
    finally:
        manager.down(name)
