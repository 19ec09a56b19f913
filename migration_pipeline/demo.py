"""The README's main job on the embedded default: sandbox, realistic data, snapshot, metadata, backfill, parity.

Each phase calls the same workers the Dagster assets use; the workflow issue moves the whole run into Dagster.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from migration_pipeline.sandbox import loader, manager
from migration_pipeline.sandbox.paths import NAME_ENV, cache_root, sandbox_name
from workers.common.cluster_info import observe
from workers.common.clusters import ClusterConnection, build_client
from workers.common.errors import MigrationError
from workers.metadata.apply import migrate
from workers.metadata.options import MigrationOptions
from workers.metadata.plan import evaluate
from workers.metadata.source import SnapshotLocation, read_source
from workers.rfs.options import BackfillOptions
from workers.rfs.worker import run_shard
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.create import create_snapshot, register_fs_repository

REPOSITORY = "migration_demo"


@dataclass(frozen=True)
class DemoDataset:
    """One index of the demo data."""

    index: str
    profile: str
    docs: int
    shards: int
    routing: bool


def datasets(scale: float) -> list[DemoDataset]:
    """The demo's indices; ``scale`` multiplies their sizes."""
    return [
        DemoDataset("logs-2024.01", "logs", max(1, int(20_000 * scale)), 3, False),
        DemoDataset("products", "products", max(1, int(5_000 * scale)), 2, True),
        DemoDataset("orders", "nested", max(1, int(5_000 * scale)), 2, True),
    ]


@dataclass
class DemoReport:
    """What the demo did, for the summary table."""

    source_url: str = ""
    target_url: str = ""
    snapshot: str = ""
    repo_dir: str = ""
    dagster_home: str = ""
    source_counts: dict[str, int] = field(default_factory=dict)
    snapshot_indices: list[str] = field(default_factory=list)
    snapshot_shards: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    dagster_run_id: str = ""
    target_counts: dict[str, int] = field(default_factory=dict)
    metadata_counts: dict[str, int] = field(default_factory=dict)
    backfill_docs: int = 0
    dead_letters: int = 0

    @property
    def parity(self) -> bool:
        """True when every snapshotted index has as many documents on the target as on the source."""
        return all(self.source_counts.get(i) == self.target_counts.get(i) for i in self.snapshot_indices)


def dagster_home() -> Path:
    """``$DAGSTER_HOME``, else a persistent folder in the cache (so the UI shows the demo's runs)."""
    home = Path(os.environ.get("DAGSTER_HOME") or cache_root() / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    return home


def run(scale: float = 1.0, name: str | None = None, say: Callable[[str], None] = print) -> DemoReport:
    """Start the default sandbox, load the demo data, snapshot the source and observe both in Dagster."""
    report = DemoReport()
    name = sandbox_name(name)

    began = time.monotonic()
    state = manager.up(manager.UpRequest(), name=name, progress=say)
    source, target = state.engines["source"], state.engines["target"]
    report.source_url, report.target_url = source.url, target.url
    report.phases["sandbox"] = time.monotonic() - began

    began = time.monotonic()
    client = build_client(ClusterConnection(source.url))
    present = observe(client, source.url).indices
    for ds in datasets(scale):
        if present.get(ds.index) == ds.docs:
            say(f"data: {ds.index} already holds {ds.docs} documents")
            continue
        if ds.index in present:
            client.indices.delete(index=ds.index)
        result = loader.load(source.url, ds.index, ds.docs, profile_name=ds.profile, shards=ds.shards,
                             routing=ds.routing, seed=42)
        say(f"data: loaded {result.docs} {ds.profile} documents into {ds.index} ({result.docs_per_s:.0f} docs/s)")
    report.phases["load"] = time.monotonic() - began

    began = time.monotonic()
    report.repo_dir = str(Path(source.repo_path) / REPOSITORY)
    register_fs_repository(client, REPOSITORY, report.repo_dir)
    report.snapshot = "demo-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    snap = create_snapshot(client, REPOSITORY, report.snapshot, indices=",".join(d.index for d in datasets(scale)))
    report.snapshot_indices, report.snapshot_shards = snap.indices, snap.shards_total
    say(f"snapshot: {REPOSITORY}/{report.snapshot} {snap.state} ({snap.shards_total} shards) in {report.repo_dir}")
    report.phases["snapshot"] = time.monotonic() - began

    began = time.monotonic()
    target_conn = ClusterConnection(target.url)
    found = read_source(snapshot=SnapshotLocation(Path(report.repo_dir).as_uri(), report.snapshot))
    plan = evaluate(found, build_client(target_conn), target.url,
                    MigrationOptions.build(index_allowlist=[d.index for d in datasets(scale)]))
    if plan.blocked:
        raise MigrationError("metadata evaluation blocked: " + "; ".join(
            f"{r.kind} {r.name}: {', '.join(r.blockers)}" for r in plan.blocked))
    migrated = migrate(plan, build_client(target_conn), target.url)
    if migrated.failed:
        raise MigrationError("metadata migration failed: "
                             + "; ".join(f"{r.name}: {r.reason}" for r in migrated.failed))
    report.metadata_counts = migrated.counts()
    say(f"metadata: {', '.join(f'{k} {v}' for k, v in report.metadata_counts.items() if v)}")
    report.phases["metadata"] = time.monotonic() - began

    began = time.monotonic()
    store = open_blob_store(report.repo_dir)
    options = BackfillOptions(target=target_conn, dead_letter=str(cache_root() / "dead-letters"))
    for ds in datasets(scale):
        for shard in range(ds.shards):
            shard_result = run_shard(store, report.snapshot, ds.index, shard, options)
            report.backfill_docs += shard_result.docs_written
            report.dead_letters += shard_result.dead_letters
        say(f"backfill: {ds.index} ({ds.shards} shards) done")
    target_client = build_client(target_conn)
    target_client.indices.refresh(index=",".join(report.snapshot_indices))
    report.target_counts = {i: c for i, c in observe(target_client, target.url).indices.items()
                            if i in report.snapshot_indices}
    report.phases["backfill"] = time.monotonic() - began

    began = time.monotonic()
    home = dagster_home()
    report.dagster_home = str(home)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ[NAME_ENV] = name
    from migration_pipeline.definitions import defs

    with dg.DagsterInstance.get() as instance:
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        run = defs.resolve_job_def("observe_clusters").execute_in_process(instance=instance, raise_on_error=True,
                                                                          run_config=quiet)
        report.dagster_run_id = run.run_id
    report.source_counts = observe(client, source.url).indices
    report.phases["dagster"] = time.monotonic() - began
    return report
