"""The end of the workflow: once the validation is approved, its temporary state is removed."""

# No "from __future__ import annotations": Dagster inspects the context annotation at definition time.
from typing import Any

import dagster as dg

from assets.approvals import GATE_ASSETS, gated, releasing, require_approval
from assets.partitions import GROUP, SHARDS
from resources.workflow import WorkflowResource
from workers.common.clusters import build_client
from workers.common.errors import MigrationError
from workers.lifecycle.cleanup import clean_up
from workflow_model.steps import Step

_GATE = releasing(Step.MIGRATION_CLEANUP)


def running_partitions(instance: dg.DagsterInstance) -> list[str]:
    """Shard partitions whose run is in progress (Dagster's view; the coordination index's leases are the other)."""
    keys = instance.get_dynamic_partitions(str(SHARDS.name))
    statuses = instance.get_status_by_partition(dg.AssetKey(Step.SHARD_BACKFILL.value), keys, SHARDS) or {}
    return sorted(k for k, s in statuses.items() if s is not None and s.value == "IN_PROGRESS")


@dg.asset(name=Step.MIGRATION_CLEANUP.value, group_name=GROUP, deps=[GATE_ASSETS[_GATE.step]],
          automation_condition=gated(_GATE), kinds={"opensearch"},
          description="The workflow's temporary state removed (coordination records, the repository it registered "
                      "on the source); the migrated data, the snapshot and the dead letters are kept.")
def migration_cleanup(context: dg.AssetExecutionContext, source_snapshot: dict[str, Any],
                      workflow: WorkflowResource) -> dg.MaterializeResult:
    """Refuse while a shard runs; otherwise remove the workflow's state and say what was kept."""
    require_approval(context.instance, _GATE)
    running = running_partitions(context.instance)
    if running:
        raise dg.Failure(f"cannot clean up while shards run: {', '.join(running[:10])}")
    config = workflow.load()
    config.require_secrets()
    repository = source_snapshot["repository"] if source_snapshot.get("registered_repository") else None
    try:
        report = clean_up(build_client(config.target.connection()), config.backfill.coordination_index,
                          source_snapshot["snapshot"],
                          source=build_client(config.source.connection()) if repository else None,
                          repository=repository)
    except MigrationError as exc:
        raise dg.Failure(str(exc)) from None
    context.log.info(f"cleanup: {report.summary()}")
    return dg.MaterializeResult(metadata={
        "summary": dg.MetadataValue.text(report.summary()),
        "records_removed": dg.MetadataValue.int(report.records_removed),
        "index_removed": dg.MetadataValue.bool(report.index_removed),
        "repository_removed": dg.MetadataValue.text(report.repository_removed or ""),
        "kept": dg.MetadataValue.md("\n".join(f"- {k}" for k in report.kept)),
        "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in report.notes) or "none"),
    })
