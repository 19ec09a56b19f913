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
from workflow_model.steps import GATES, Gate, Step

AUTO_APPROVER = "workflow config (approvals.skip)"
# What a gate the workflow approves itself says (the cutover's, with nothing to switch, is one too).
AUTO_APPROVAL_REASON = "approvals.skip, or nothing to decide"


class ApprovalConfig(dg.Config):
    """Who decides, under which ticket, and what."""

    approved_by: str = Field(default="", description="Who approves (required unless the workflow skips the gate)")
    ticket: str | None = Field(default=None, description="Change ticket or reason")
    decision: Literal["approve", "reject"] = "approve"


def latest_record(instance: dg.DagsterInstance, key: str) -> dg.EventLogRecord | None:
    """The newest materialization record of an unpartitioned asset."""
    records = instance.fetch_materializations(dg.AssetKey(str(key)), limit=1).records
    return records[0] if records else None


def metadata_of(record: dg.EventLogRecord) -> dict[str, Any]:
    """A materialization record's metadata as plain values ({} for other events)."""
    materialization = record.asset_materialization
    return {k: v.value for k, v in materialization.metadata.items()} if materialization else {}


# The blocking asset check (declared on the asset, in metadata.py) whose failure a gate refuses to approve, by the
# asset it is on.
BLOCKING_CHECKS: dict[Step, tuple[str, ...]] = {Step.METADATA_EVALUATION: ("no_blocking_incompatibilities",),
                                               Step.SNAPSHOT_REGISTRATION: ("target_has_room",),
                                               Step.VALIDATION_REPORT: ("counts", "fingerprints")}


def build_gate(gate: Gate) -> dg.AssetsDefinition:
    """The asset of ``gate``: it approves (or rejects) the latest materialization of ``gate.approves``."""
    name, approves = gate.name, gate.approves.value
    blocking_checks = BLOCKING_CHECKS.get(gate.approves, ())

    # By key: the approved assets' modules import this one (for `gated` and `require_approval`).
    @dg.asset(name=name, group_name=GROUP, deps=[dg.AssetKey(approves)], kinds={"approval"},
              description=f"A person decides: {gate.question}")
    def gate_asset(context: dg.AssetExecutionContext, config: ApprovalConfig,
                   workflow: WorkflowResource) -> dg.MaterializeResult:
        instance = context.instance
        record = latest_record(instance, approves)
        if record is None:
            raise dg.Failure(f"{name}: nothing to approve yet, {approves} was never materialized")
        for blocking_check in blocking_checks:
            evaluation = instance.get_latest_asset_check_evaluation_record(
                dg.AssetCheckKey(dg.AssetKey(approves), blocking_check))
            # The status enum is not exported by dagster; its value is stable (FAILED, SUCCEEDED, ...).
            if evaluation is not None and evaluation.status.value == "FAILED":
                raise dg.Failure(f"{name}: {approves} failed its blocking check {blocking_check}; fix and re-evaluate "
                                 "before approving")
        approver = config.approved_by.strip()
        if not approver:
            if not workflow.load().approves_itself(name):
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

    return gate_asset


def require_approval(instance: dg.DagsterInstance, gate: Gate) -> dict[str, Any]:
    """Raise unless ``gate`` approved the latest version of what it approves; returns the approval's metadata."""
    name, approves = gate.name, gate.approves.value
    record = latest_record(instance, name)
    if record is None:
        raise dg.Failure(f"waiting for {name}: approve with `workflow approve {name} --by NAME` or in the UI")
    approval = metadata_of(record)
    if approval.get("decision") == "reject":
        raise dg.Failure(f"{name} was rejected by {approval.get('approved_by')}"
                         + (f" (ticket {approval['ticket']})" if approval.get("ticket") else "")
                         + "; the workflow stops here until a new approval")
    current = latest_record(instance, approves)
    if current is None or approval.get("approves_storage_id") != current.storage_id:
        raise dg.Failure(
            f"stale approval: {name} approved {approves} materialization {approval.get('approves_storage_id')}, "
            f"but the latest is {current.storage_id if current else 'missing'}; approve it again")
    return approval


GATE_ASSETS: dict[Step, dg.AssetsDefinition] = {g.step: build_gate(g) for g in GATES}


def releasing(step: Step) -> Gate:
    """The gate that releases ``step`` (declared in ``workflow_model.steps.GATES``)."""
    return next(g for g in GATES if g.releases == step)


def gated(gate: Gate) -> dg.AutomationCondition:
    """Run once after each new materialization of the gate's asset: other parents don't trigger it.

    ``since_last_handled`` latches the update until the asset is requested, so an approval that lands while the
    asset is still running (or its partitions are still in a backfill) starts it on a later tick instead of being lost.
    """
    return (dg.AutomationCondition.any_deps_updated().allow(dg.AssetSelection.assets(GATE_ASSETS[gate.step]))
            .since_last_handled()
            & ~dg.AutomationCondition.in_progress())
