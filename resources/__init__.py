"""Dagster resources: connections to the source and target clusters (later: snapshot repo, Kafka, launcher)."""

from resources.clusters import BasicAuthConfig, NoAuthConfig, SearchClusterResource, SigV4AuthConfig

__all__ = ["BasicAuthConfig", "NoAuthConfig", "SearchClusterResource", "SigV4AuthConfig"]
