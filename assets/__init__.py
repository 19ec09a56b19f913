"""Thin Dagster asset definitions: read config, call a worker, record metadata."""

from assets.clusters import source_cluster, target_cluster

__all__ = ["source_cluster", "target_cluster"]
