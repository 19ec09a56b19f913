"""The README's main job on the embedded default: sandbox, realistic data, a snapshot, and Dagster.

Later issues extend it to the whole migration (metadata, backfill, validation).
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
    home = dagster_home()
    report.dagster_home = str(home)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ[NAME_ENV] = name
    from migration_pipeline.definitions import defs

    with dg.DagsterInstance.get() as instance:
        run = defs.resolve_job_def("observe_clusters").execute_in_process(instance=instance, raise_on_error=True)
        report.dagster_run_id = run.run_id
    report.source_counts = observe(client, source.url).indices
    report.phases["dagster"] = time.monotonic() - began
    return report
