"""Explicit asset jobs, so that CLIs and schedules never depend on Dagster's implicit job names."""

import dagster as dg

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

__all__ = ["observe_clusters", "observe_clusters_schedule"]
