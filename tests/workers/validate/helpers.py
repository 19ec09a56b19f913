"""A migration done quickly for the validation tests: metadata planned and created, then every shard backfilled."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from opensearchpy import OpenSearch

from tests.conftest import unique
from workers.common.clusters import ClusterConnection
from workers.metadata.apply import migrate
from workers.metadata.options import MigrationOptions
from workers.metadata.plan import evaluate
from workers.metadata.source import SnapshotLocation, read_source
from workers.rfs.options import BackfillOptions
from workers.rfs.worker import run_shard
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.repository import SnapshotRepository
from workers.validate.scope import SnapshotScope, ValidationOptions


@dataclass(frozen=True)
class Migration:
    """A snapshot migrated to the target: what a validation needs to look at it."""

    scope: SnapshotScope
    options: ValidationOptions
    metadata: MigrationOptions
    backfill: BackfillOptions


def migrate_snapshot(repo_uri: str, snapshot: str, target_url: str, tmp_path: Path, *, indices: Sequence[str],
                     rename: Sequence[str] = (), source_url: str | None = None) -> Migration:
    """Plan and create ``indices``' metadata on the target (renamed), then backfill every shard of them."""
    store = open_blob_store(repo_uri)
    repo = SnapshotRepository(store)
    metadata = MigrationOptions.build(index_allowlist=list(indices), index_template_allowlist=["none"],
                                      component_template_allowlist=["none"], rename=list(rename))
    client = OpenSearch(hosts=[target_url], timeout=120)
    report = evaluate(read_source(snapshot=SnapshotLocation(repo_uri, snapshot)), client, target_url, metadata)
    migrated = migrate(report, client, target_url)
    assert not migrated.failed, [(r.name, r.reason) for r in migrated.failed]
    backfill = BackfillOptions(target=ClusterConnection(endpoint=target_url), coordination_index=unique(".mws"),
                               dead_letter=str(tmp_path / "dead"), rename=metadata.rename)
    counts: dict[str, int | None] = {}
    for index in indices:
        shards = repo.index_metadata(snapshot, index).number_of_shards
        results = [run_shard(store, snapshot, index, s, backfill) for s in range(shards)]
        assert all(r.status == "completed" and r.dead_letters == 0 for r in results), results
        counts[index] = sum(r.docs_written for r in results)
    scope = SnapshotScope(repo_uri, snapshot, repo.snapshot(snapshot).uuid, counts)
    options = ValidationOptions(target=backfill.target, coordination_index=backfill.coordination_index,
                                rename=metadata.rename,
                                source=ClusterConnection(endpoint=source_url) if source_url else None)
    return Migration(scope, options, metadata, backfill)
