"""Where the source's metadata comes from (a snapshot, or the live source) and the metadata step's options."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from resources.clusters import SearchClusterResource
from workers.common.errors import ConfigurationError
from workers.metadata.model import SourceMetadata
from workers.metadata.options import MigrationOptions
from workers.metadata.source import SnapshotLocation, read_source
from workers.metadata.versions import EngineVersion


class MetadataMigrationResource(dg.ConfigurableResource):
    """The metadata step: a snapshot to read (else the live ``source`` cluster), allow lists, renames, replicas."""

    snapshot_repo: str | None = Field(default=None, description="file:///path or s3://bucket/prefix; empty: live")
    snapshot: str | None = Field(default=None, description="Snapshot name in snapshot_repo")
    s3_endpoint: str | None = Field(default=None, description="S3 endpoint of the repository (MinIO, moto)")
    s3_region: str | None = None
    source_version: str | None = Field(default=None, description="ENGINE:VERSION when the snapshot lacks it")
    index_allowlist: list[str] = Field(default_factory=list, description="Names or regex:PATTERN; empty: all user")
    index_template_allowlist: list[str] = Field(default_factory=list)
    component_template_allowlist: list[str] = Field(default_factory=list)
    rename: list[str] = Field(default_factory=list, description="OLD=NEW or regex:PATTERN=REPLACEMENT")
    replicas: int | None = Field(default=None, description="Replica count on the target; empty: the source's")
    multi_type: str = Field(default="union", description="union (one mapping) or split (INDEX_TYPE indices)")
    allow_existing: bool = Field(default=False, description="Overwrite templates that differ; keep such indices")

    def options(self) -> MigrationOptions:
        """The worker-side options (errors name the option)."""
        return MigrationOptions.build(
            index_allowlist=self.index_allowlist, index_template_allowlist=self.index_template_allowlist,
            component_template_allowlist=self.component_template_allowlist, rename=self.rename,
            replicas=self.replicas, multi_type=self.multi_type, allow_existing=self.allow_existing,
        )

    def read(self, source: SearchClusterResource) -> SourceMetadata:
        """The source's metadata: from the snapshot when one is configured, else from the live ``source``."""
        version = EngineVersion.parse(self.source_version) if self.source_version else None
        if self.snapshot_repo or self.snapshot:
            if not (self.snapshot_repo and self.snapshot):
                raise ConfigurationError("metadata_migration: a snapshot needs both snapshot_repo and snapshot")
            location = SnapshotLocation(self.snapshot_repo or "", self.snapshot or "", self.s3_endpoint,
                                        self.s3_region)
            return read_source(snapshot=location, version=version)
        return read_source(cluster=source.connection(), version=version)
