"""The Dagster code location: every asset, job, schedule, sensor and resource of the migration."""

from __future__ import annotations

import dagster as dg

from assets import (
    GATE_ASSETS,
    backfill_parity,
    cutover,
    doc_counts_match,
    metadata_evaluation,
    migrated_metadata,
    migration_cleanup,
    no_blocking_incompatibilities,
    replay_catchup,
    shard_backfill,
    snapshot_registration,
    source_cluster,
    source_snapshot,
    target_cluster,
    target_has_room,
    validation_checks,
    validation_report,
)
from jobs import JOBS, observe_clusters_schedule, validation_checks_schedule
from migration_pipeline.deployments import deployment_name, resources_for
from sensors import SENSORS

defs = dg.Definitions(
    assets=[source_cluster, target_cluster, source_snapshot, metadata_evaluation, migrated_metadata,
            snapshot_registration, shard_backfill, backfill_parity, replay_catchup, validation_report,
            cutover, migration_cleanup,
            *GATE_ASSETS.values()],
    asset_checks=[no_blocking_incompatibilities, target_has_room, doc_counts_match, validation_checks],
    jobs=JOBS,
    schedules=[observe_clusters_schedule, validation_checks_schedule],
    sensors=SENSORS,
    # The resources of the deployment $MIGRATION_DEPLOYMENT names (local by default): see deployments.py.
    resources=resources_for(deployment_name()),
    # One step per run: parallelism comes from runs (one per shard), so a subprocess per step gains nothing.
    executor=dg.in_process_executor,
)
