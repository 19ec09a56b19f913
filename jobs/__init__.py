"""Explicit asset jobs, so that CLIs, sensors and schedules never depend on Dagster's implicit job names.

Assets are selected by their step (``workflow_model.steps``); the gates' jobs are made from ``GATES``.
"""

import dagster as dg

from jobs.backout import backout_job
from jobs.validation import validation_alert, validation_checks_job, validation_checks_schedule
from workflow_model.steps import GATES, Step


def _steps(*steps: Step) -> dg.AssetSelection:
    return dg.AssetSelection.assets(*(step.value for step in steps))


observe_clusters = dg.define_asset_job(
    "observe_clusters",
    selection=_steps(Step.SOURCE_CLUSTER, Step.TARGET_CLUSTER),
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
    selection=_steps(Step.SOURCE_SNAPSHOT, Step.METADATA_EVALUATION),
    description="Take (or reference) the snapshot, register its shards and evaluate the metadata: `workflow submit`.",
    tags={"migration/phase": "prepare"},
)

# By gate name (as `workflow approve step` takes it).
APPROVAL_JOBS = {
    gate.name: dg.define_asset_job(gate.job_name, selection=_steps(gate.step),
                                   description=f"Record a decision on {gate.name} (config: approved_by, ticket, "
                                               f"decision): {gate.question}",
                                   tags={"migration/gate": gate.name})
    for gate in GATES
}

# The job that runs each asset the automation conditions start (the `migration_gates` sensor, or in-process
# `LocalWorkflow.advance`).
AUTOMATED_JOBS = {
    Step.MIGRATED_METADATA: dg.define_asset_job(
        "migrate_metadata", selection=_steps(Step.MIGRATED_METADATA),
        description="Create the approved metadata on the target.", tags={"migration/phase": "metadata"}),
    Step.SNAPSHOT_REGISTRATION: dg.define_asset_job(
        "register_snapshot", selection=_steps(Step.SNAPSHOT_REGISTRATION),
        description="Register the snapshot for the backfill and size it against the target.",
        tags={"migration/phase": "register"}),
    Step.SHARD_BACKFILL: dg.define_asset_job(
        "backfill_shards", selection=_steps(Step.SHARD_BACKFILL),
        description="Backfill one shard (one run per partition).", tags={"migration/phase": "backfill"}),
    Step.BACKFILL_PARITY: dg.define_asset_job(
        "check_backfill_parity", selection=_steps(Step.BACKFILL_PARITY),
        description="Compare per-index document counts once every shard is done.", tags={"migration/phase": "parity"}),
    Step.REPLAY_CATCHUP: dg.define_asset_job(
        "catch_up_replay", selection=_steps(Step.REPLAY_CATCHUP),
        description="Replay the captured traffic onto the target until its lag stays under the threshold.",
        tags={"migration/phase": "replay"}),
    Step.VALIDATION_REPORT: dg.define_asset_job(
        "validate_migration", selection=_steps(Step.VALIDATION_REPORT),
        description="The validation report: counts, content fingerprints, metadata and queries, target against source.",
        tags={"migration/phase": "validation"}),
    Step.CUTOVER: dg.define_asset_job(
        "cut_over", selection=_steps(Step.CUTOVER),
        description="Switch live traffic to the target through the capture proxies, once every captured write is "
                    "replayed.", tags={"migration/phase": Step.CUTOVER.value}),
    Step.MIGRATION_CLEANUP: dg.define_asset_job(
        "clean_up_migration", selection=_steps(Step.MIGRATION_CLEANUP),
        description="Remove the workflow's temporary state once its validation is approved.",
        tags={"migration/phase": "cleanup"}),
}
migrate_metadata = AUTOMATED_JOBS[Step.MIGRATED_METADATA]
backfill_shards = AUTOMATED_JOBS[Step.SHARD_BACKFILL]
check_backfill_parity = AUTOMATED_JOBS[Step.BACKFILL_PARITY]

validate_migration = AUTOMATED_JOBS[Step.VALIDATION_REPORT]

# Typed for Definitions: the asset jobs are unresolved until then, the alert is an op job.
JOBS: list = [observe_clusters, prepare_migration, *APPROVAL_JOBS.values(), *AUTOMATED_JOBS.values(),
              validation_checks_job, validation_alert, backout_job]

__all__ = ["APPROVAL_JOBS", "AUTOMATED_JOBS", "JOBS", "backfill_shards", "backout_job", "check_backfill_parity",
           "migrate_metadata", "observe_clusters", "observe_clusters_schedule", "prepare_migration",
           "validate_migration", "validation_alert", "validation_checks_job", "validation_checks_schedule"]
