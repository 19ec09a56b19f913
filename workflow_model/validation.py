"""The validation's options from the workflow file: one place for the asset, the scheduled checks and the console."""

from __future__ import annotations

from typing import Any

from workers.metadata.options import MigrationOptions
from workers.metadata.versions import EngineVersion
from workers.validate.scope import Against, Mode, SnapshotScope, ValidationOptions
from workflow_model.config import WorkflowConfig


def migration_options(config: WorkflowConfig) -> MigrationOptions:
    """The metadata migration's options (what the evaluation plans with)."""
    meta = config.metadata
    return MigrationOptions.build(
        index_allowlist=meta.index_allowlist, index_template_allowlist=meta.index_template_allowlist,
        component_template_allowlist=meta.component_template_allowlist, rename=meta.rename,
        replicas=meta.transformations.replicas, multi_type=meta.transformations.multi_type,
        allow_existing=meta.transformations.allow_existing)


def default_against(config: WorkflowConfig) -> Against:
    """What the target is compared with by default: the live source once replay is on (clients keep writing to the
    source and the replayer follows, so the snapshot no longer describes the target), else the snapshot."""
    return "source" if config.replay.enabled else "snapshot"


def validation_options(config: WorkflowConfig, *, mode: Mode = "full", sample_buckets: int | None = None,
                       sample_offset: int = 0, indices: tuple[str, ...] = (), queries: bool = True,
                       metadata: bool = True, against: Against | None = None) -> ValidationOptions:
    """What ``validate`` takes, from the workflow file (``validation``, the clusters, the backfill's naming);
    ``against`` None: as the workflow says (``default_against``)."""
    v = config.validation
    return ValidationOptions(
        target=config.target.connection(), source=config.source.connection(),
        coordination_index=config.backfill.coordination_index, rename=config.metadata.rename_rules,
        type_mode=config.backfill_type_mode, transform=config.backfill.transform, mode=mode,
        sample_buckets=sample_buckets or v.sample_buckets, sample_offset=sample_offset,
        connections=v.connections, page_size=v.page_size, max_listed=v.max_listed, indices=indices,
        queries=queries and (v.default_queries or bool(v.queries)), metadata=metadata,
        custom_queries=tuple(q.model_dump() for q in v.queries), against=against or default_against(config),
        settle_s=v.live.settle_s, rechecks=v.live.rechecks)


def source_engine_version(config: WorkflowConfig) -> EngineVersion | None:
    """The source's version when the workflow file states it (else the snapshot's own record is used)."""
    return EngineVersion.parse(config.source.version) if config.source.version else None


def snapshot_scope(source_snapshot: dict[str, Any]) -> SnapshotScope:
    """The scope from ``source_snapshot``'s value (or the copy a validation report keeps)."""
    return SnapshotScope(repo_uri=source_snapshot["uri"], snapshot=source_snapshot["snapshot"],
                         snapshot_uuid=str(source_snapshot.get("snapshot_uuid") or ""),
                         source_counts={k: None if v is None else int(v)
                                        for k, v in source_snapshot["source_counts"].items()},
                         s3_endpoint=source_snapshot.get("s3_endpoint"), s3_region=source_snapshot.get("s3_region"))


def scope_dict(scope: SnapshotScope) -> dict[str, Any]:
    """The scope as ``snapshot_scope`` reads it back."""
    return {"uri": scope.repo_uri, "snapshot": scope.snapshot, "snapshot_uuid": scope.snapshot_uuid,
            "source_counts": scope.source_counts, "s3_endpoint": scope.s3_endpoint, "s3_region": scope.s3_region}
