"""Thin Dagster asset definitions: read config, call a worker, record metadata."""

from assets.approvals import GATE_ASSETS
from assets.backfill import backfill_parity, doc_counts_match, shard_backfill
from assets.cleanup import migration_cleanup
from assets.clusters import source_cluster, target_cluster
from assets.cutover import cutover
from assets.metadata import metadata_evaluation, migrated_metadata, no_blocking_incompatibilities
from assets.partitions import GROUP, SHARDS
from assets.registration import snapshot_registration, target_has_room
from assets.replay import replay_catchup
from assets.snapshot import source_snapshot
from assets.validation import validation_checks, validation_report

__all__ = [
    "GATE_ASSETS",
    "GROUP",
    "SHARDS",
    "backfill_parity",
    "cutover",
    "doc_counts_match",
    "metadata_evaluation",
    "migrated_metadata",
    "migration_cleanup",
    "no_blocking_incompatibilities",
    "replay_catchup",
    "shard_backfill",
    "snapshot_registration",
    "source_cluster",
    "source_snapshot",
    "target_cluster",
    "target_has_room",
    "validation_checks",
    "validation_report",
]
