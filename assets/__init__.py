"""Thin Dagster asset definitions: read config, call a worker, record metadata."""

from assets.approvals import GATE_ASSETS, backfill_approval, metadata_approval
from assets.backfill import backfill_parity, doc_counts_match, shard_backfill
from assets.clusters import source_cluster, target_cluster
from assets.metadata import metadata_evaluation, migrated_metadata, no_blocking_incompatibilities
from assets.partitions import GROUP, SHARDS
from assets.snapshot import source_snapshot

__all__ = [
    "GATE_ASSETS",
    "GROUP",
    "SHARDS",
    "backfill_approval",
    "backfill_parity",
    "doc_counts_match",
    "metadata_approval",
    "metadata_evaluation",
    "migrated_metadata",
    "no_blocking_incompatibilities",
    "shard_backfill",
    "source_cluster",
    "source_snapshot",
    "target_cluster",
]
