"""The Dagster code location: every asset, job, schedule, sensor and resource of the migration."""

from __future__ import annotations

import dagster as dg

from assets import (
    backfill_approval,
    backfill_parity,
    doc_counts_match,
    metadata_approval,
    metadata_evaluation,
    migrated_metadata,
    no_blocking_incompatibilities,
    shard_backfill,
    source_cluster,
    source_snapshot,
    target_cluster,
)
from jobs import JOBS, observe_clusters_schedule
from resources import SearchClusterResource
from resources.shard_worker import ShardWorkerResource
from resources.workflow import WorkflowResource
from sensors import SENSORS


def build_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources of the local profile: clusters and settings from the active workflow config (else the sandbox)."""
    return {
        "source": SearchClusterResource(role="source"),
        "target": SearchClusterResource(role="target"),
        "workflow": WorkflowResource(),
        "shard_worker": ShardWorkerResource(),
    }


defs = dg.Definitions(
    assets=[source_cluster, target_cluster, source_snapshot, metadata_evaluation, metadata_approval,
            migrated_metadata, backfill_approval, shard_backfill, backfill_parity],
    asset_checks=[no_blocking_incompatibilities, doc_counts_match],
    jobs=JOBS,
    schedules=[observe_clusters_schedule],
    sensors=SENSORS,
    resources=build_resources(),
    # One step per run: parallelism comes from runs (one per shard), so a subprocess per step gains nothing.
    executor=dg.in_process_executor,
)
