"""The snapshot registered for the backfill (after the migrated metadata is approved), and the target-room check
the last gate before the backfill refuses to pass while it fails."""

# No "from __future__ import annotations": Dagster inspects the context annotation at definition time.
from typing import Any

import dagster as dg

from assets.approvals import GATE_ASSETS, gated, releasing, require_approval
from assets.partitions import GROUP
from resources.workflow import WorkflowResource
from workers.common.clusters import build_client
from workers.common.errors import MigrationError
from workers.lifecycle.register import register
from workers.rfs.naming import target_indices
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.repository import SnapshotRepository
from workflow_model.steps import Step

_GATE = releasing(Step.SNAPSHOT_REGISTRATION)


@dg.asset(name=Step.SNAPSHOT_REGISTRATION.value, group_name=GROUP, deps=[GATE_ASSETS[_GATE.step]],
          automation_condition=gated(_GATE), kinds={"snapshot", "opensearch"},
          description="The snapshot registered for the backfill: every shard in scope readable, its size against "
                      "the target's free disk, its identity recorded in the coordination index.")
def snapshot_registration(context: dg.AssetExecutionContext, source_snapshot: dict[str, Any],
                          workflow: WorkflowResource) -> dg.MaterializeResult[dict[str, Any]]:
    """Register the snapshot; the metadata is the evidence of the gate before the backfill."""
    require_approval(context.instance, _GATE)
    config = workflow.load()
    config.require_secrets()
    repo = SnapshotRepository(open_blob_store(source_snapshot["uri"], s3_endpoint=source_snapshot.get("s3_endpoint"),
                                              s3_region=source_snapshot.get("s3_region")))
    scope: dict[str, int] = source_snapshot["indices"]
    names = target_indices(repo, source_snapshot["snapshot"], scope, config.metadata.rename_rules,
                           config.backfill_type_mode)
    try:
        registration = register(
            repo, source_snapshot["snapshot"], scope, names, build_client(config.target.connection()),
            config.backfill.coordination_index, repository=source_snapshot["uri"],
            source_counts=source_snapshot.get("source_counts"), backfill_allowlist=config.backfill.index_allowlist,
            metadata_allowlist=config.metadata.index_allowlist)
    except MigrationError as exc:
        raise dg.Failure(str(exc)) from None
    context.log.info(f"registered: {registration.summary()}")
    value = registration.to_dict()
    value["check_capacity"] = config.backfill.check_capacity
    return dg.MaterializeResult(value=value, metadata={
        "snapshot": dg.MetadataValue.text(registration.snapshot),
        "snapshot_uuid": dg.MetadataValue.text(registration.snapshot_uuid),
        "coordination_index": dg.MetadataValue.text(registration.coordination_index),
        "shards": dg.MetadataValue.int(registration.shards),
        "estimated_bytes": dg.MetadataValue.int(registration.estimated_bytes),
        "target_room_bytes": dg.MetadataValue.int(registration.capacity.room_bytes if registration.capacity else -1),
        "gate_summary": dg.MetadataValue.text(registration.summary()),
        "evidence": dg.MetadataValue.md(registration.to_markdown()),
    })


@dg.asset_check(asset=snapshot_registration, blocking=True,
                description="The backfill's estimated size fits in the target's room above its high disk watermark "
                            "(backfill.check_capacity: false turns this off).")
def target_has_room(snapshot_registration: dict[str, Any]) -> dg.AssetCheckResult:
    """Fail when the estimate exceeds the room; pass when it fits, the room is unknown, or the check is off."""
    fits = snapshot_registration.get("fits")
    checked = bool(snapshot_registration.get("check_capacity", True))
    capacity = snapshot_registration.get("capacity") or {}
    return dg.AssetCheckResult(
        passed=not checked or fits is not False, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"estimated_bytes": dg.MetadataValue.int(int(snapshot_registration.get("estimated_bytes") or 0)),
                  "room_bytes": dg.MetadataValue.int(int(capacity.get("room_bytes", -1))),
                  "checked": dg.MetadataValue.bool(checked),
                  "note": dg.MetadataValue.text(snapshot_registration.get("capacity_note") or "")})
