"""Approval gates: an asset a person materializes (typed config), and the guard every gated asset runs first.

Dagster cannot pause a run for a person, so each gate is a run boundary: the approver materializes the gate, the
automation sensor then starts the gated asset, and the gated asset checks that the approval is for the latest
version of what it approves (a stale approval is refused).
"""

# No "from __future__ import annotations": Dagster inspects the context annotation at definition time.
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from assets.partitions import GROUP
from resources.workflow import WorkflowResource

AUTO_APPROVER = "workflow config (approvals.skip)"


class ApprovalConfig(dg.Config):
    """Who decides, under which ticket, and what."""

    approved_by: str = Field(default="", description="Who approves (required unless the workflow skips the gate)")
    ticket: str | None = Field(default=None, description="Change ticket or reason")
    decision: Literal["approve", "reject"] = "approve"


def latest_record(instance: dg.DagsterInstance, key: str) -> dg.EventLogRecord | None:
    """The newest materialization record of an unpartitioned asset."""
    records = instance.fetch_materializations(dg.AssetKey(key), limit=1).records
    return records[0] if records else None


def metadata_of(record: dg.EventLogRecord) -> dict[str, Any]:
    """A materialization record's metadata as plain values ({} for other events)."""
    materialization = record.asset_materialization
    return {k: v.value for k, v in materialization.metadata.items()} if materialization else {}


def build_gate(name: str, approves: str, description: str, blocking_check: str | None = None) -> dg.AssetsDefinition:
    """A gate asset that approves (or rejects) the latest materialization of ``approves``."""

    @dg.asset(name=name, group_name=GROUP, deps=[approves], kinds={"approval"}, description=description)
    def gate(context: dg.AssetExecutionContext, config: ApprovalConfig,
             workflow: WorkflowResource) -> dg.MaterializeResult:
        instance = context.instance
        record = latest_record(instance, approves)
        if record is None:
            raise dg.Failure(f"{name}: nothing to approve yet, {approves} was never materialized")
        if blocking_check:
            evaluation = instance.get_latest_asset_check_evaluation_record(
                dg.AssetCheckKey(dg.AssetKey(approves), blocking_check))
            # The status enum is not exported by dagster; its value is stable (FAILED, SUCCEEDED, ...).
            if evaluation is not None and evaluation.status.value == "FAILED":
                raise dg.Failure(f"{name}: {approves} failed its blocking check {blocking_check}; fix and re-evaluate "
                                 "before approving")
        approver = config.approved_by.strip()
        if not approver:
            if not workflow.load().approvals.skipped(name):
                raise dg.Failure(f"{name}: approved_by is required (who approves)")
            approver = AUTO_APPROVER
        verb = "approved" if config.decision == "approve" else "REJECTED"
        context.log.info(f"{name}: {approves} (materialization {record.storage_id}) {verb} by {approver}")
        return dg.MaterializeResult(metadata={
            "decision": dg.MetadataValue.text(config.decision),
            "approved_by": dg.MetadataValue.text(approver),
            "ticket": dg.MetadataValue.text(config.ticket or ""),
            "approves": dg.MetadataValue.text(approves),
            "approves_storage_id": dg.MetadataValue.int(record.storage_id),
            "approves_run_id": dg.MetadataValue.text(record.run_id),
        })

    return gate


def require_approval(instance: dg.DagsterInstance, gate: str, approves: str) -> dict[str, Any]:
    """Raise unless ``gate`` approved the latest ``approves``; returns the approval's metadata."""
    record = latest_record(instance, gate)
    if record is None:
        raise dg.Failure(f"waiting for {gate}: approve with `workflow approve {gate} --by NAME` or in the UI")
    approval = metadata_of(record)
    if approval.get("decision") == "reject":
        raise dg.Failure(f"{gate} was rejected by {approval.get('approved_by')}"
                         + (f" (ticket {approval['ticket']})" if approval.get("ticket") else "")
                         + "; the workflow stops here until a new approval")
    current = latest_record(instance, approves)
    if current is None or approval.get("approves_storage_id") != current.storage_id:
        raise dg.Failure(
            f"stale approval: {gate} approved {approves} materialization {approval.get('approves_storage_id')}, "
            f"but the latest is {current.storage_id if current else 'missing'}; approve it again")
    return approval


metadata_approval = build_gate(
    "metadata_approval", "metadata_evaluation",
    "A person approves the evaluated metadata plan before anything is written to the target.",
    blocking_check="no_blocking_incompatibilities")
backfill_approval = build_gate(
    "backfill_approval", "migrated_metadata",
    "A person approves starting the document backfill into the migrated indices.")

GATES = {"metadata_approval": "metadata_evaluation", "backfill_approval": "migrated_metadata"}


def gated(gate: str) -> dg.AutomationCondition:
    """Run once after each new materialization of ``gate``: other parents don't trigger it.

    ``since_last_handled`` latches the update until the asset is requested, so an approval that lands while the
    asset is still running (or its partitions are still in a backfill) starts it on a later tick instead of being lost.
    """
    return (dg.AutomationCondition.any_deps_updated().allow(dg.AssetSelection.assets(gate)).since_last_handled()
            & ~dg.AutomationCondition.in_progress())
