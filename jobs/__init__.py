"""Explicit asset jobs, so that CLIs, sensors and schedules never depend on Dagster's implicit job names."""

import dagster as dg

from assets.approvals import GATES

observe_clusters = dg.define_asset_job(
    "observe_clusters",
    selection=dg.AssetSelection.assets("source_cluster", "target_cluster"),
    description="Observe the source and target clusters (health, version, per-index counts).",
)

observe_clusters_schedule = dg.ScheduleDefinition(
    name="observe_clusters_every_15_minutes",
    job=observe_clusters,
    cron_schedule="*/15 * * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

prepare_migration = dg.define_asset_job(
    "prepare_migration",
    selection=dg.AssetSelection.assets("source_snapshot", "metadata_evaluation"),
    description="Take (or reference) the snapshot, register its shards and evaluate the metadata: `workflow submit`.",
    tags={"migration/phase": "prepare"},
)

APPROVAL_JOBS = {
    gate: dg.define_asset_job(f"approve_{gate.removesuffix('_approval')}", selection=dg.AssetSelection.assets(gate),
                              description=f"Record a decision on {gate} (config: approved_by, ticket, decision).",
                              tags={"migration/gate": gate})
    for gate in GATES
}

migrate_metadata = dg.define_asset_job(
    "migrate_metadata", selection=dg.AssetSelection.assets("migrated_metadata"),
    description="Create the approved metadata on the target.", tags={"migration/phase": "metadata"})

backfill_shards = dg.define_asset_job(
    "backfill_shards", selection=dg.AssetSelection.assets("shard_backfill"),
    description="Backfill one shard (one run per partition).", tags={"migration/phase": "backfill"})

check_backfill_parity = dg.define_asset_job(
    "check_backfill_parity", selection=dg.AssetSelection.assets("backfill_parity"),
    description="Compare per-index document counts once every shard is done.", tags={"migration/phase": "parity"})

JOBS = [observe_clusters, prepare_migration, *APPROVAL_JOBS.values(), migrate_metadata, backfill_shards,
        check_backfill_parity]

__all__ = ["APPROVAL_JOBS", "JOBS", "observe_clusters", "observe_clusters_schedule", "prepare_migration"]
