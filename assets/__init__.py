"""Thin Dagster asset definitions: read config, call a worker, record metadata."""

from assets.clusters import source_cluster, target_cluster
from assets.metadata import metadata_evaluation, migrated_metadata, no_blocking_incompatibilities

__all__ = [
    "metadata_evaluation",
    "migrated_metadata",
    "no_blocking_incompatibilities",
    "source_cluster",
    "target_cluster",
]
