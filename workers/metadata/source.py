"""Where the source's metadata comes from: a snapshot repository, or the live source cluster."""

from __future__ import annotations

from dataclasses import dataclass

from workers.common.clusters import ClusterConnection, build_client
from workers.common.errors import ConfigurationError
from workers.metadata.model import SourceMetadata
from workers.metadata.read_cluster import read_cluster_metadata
from workers.metadata.read_snapshot import read_snapshot_metadata
from workers.metadata.versions import EngineVersion
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.repository import SnapshotRepository


@dataclass(frozen=True)
class SnapshotLocation:
    """A snapshot in a repository (``file:///…``, ``/…`` or ``s3://bucket/prefix``)."""

    repo_uri: str
    snapshot: str
    s3_endpoint: str | None = None
    s3_region: str | None = None


def read_source(snapshot: SnapshotLocation | None = None, cluster: ClusterConnection | None = None,
                version: EngineVersion | None = None) -> SourceMetadata:
    """The source's metadata from exactly one of ``snapshot`` or ``cluster``."""
    if (snapshot is None) == (cluster is None):
        raise ConfigurationError("give either a snapshot (repository and name) or a source cluster endpoint")
    if snapshot is not None:
        store = open_blob_store(snapshot.repo_uri, s3_endpoint=snapshot.s3_endpoint, s3_region=snapshot.s3_region)
        return read_snapshot_metadata(SnapshotRepository(store), snapshot.snapshot, version)
    assert cluster is not None
    found = read_cluster_metadata(build_client(cluster), cluster.redacted())
    if version is not None:
        found.version = version
    return found
