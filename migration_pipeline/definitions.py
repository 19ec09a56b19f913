"""The Dagster code location: every asset, job, schedule, sensor and resource of the migration."""

from __future__ import annotations

import dagster as dg

from assets import metadata_evaluation, migrated_metadata, no_blocking_incompatibilities, source_cluster, target_cluster
from jobs import observe_clusters, observe_clusters_schedule
from resources import SearchClusterResource
from resources.metadata import MetadataMigrationResource
from sensors import SENSORS


def build_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources of the local profile: the running sandbox's clusters unless run config says otherwise."""
    return {
        "source": SearchClusterResource(sandbox_role="source"),
        "target": SearchClusterResource(sandbox_role="target"),
        "metadata_migration": MetadataMigrationResource(),
    }


defs = dg.Definitions(
    assets=[source_cluster, target_cluster, metadata_evaluation, migrated_metadata],
    asset_checks=[no_blocking_incompatibilities],
    jobs=[observe_clusters],
    schedules=[observe_clusters_schedule],
    sensors=SENSORS,
    resources=build_resources(),
    # One step per run: parallelism comes from runs (one per shard), so a subprocess per step gains nothing.
    executor=dg.in_process_executor,
)
