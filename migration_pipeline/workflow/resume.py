"""Whether ``workflow submit`` starts afresh or resumes: the same snapshot config resumes what is left."""

from __future__ import annotations

from dataclasses import dataclass

from migration_pipeline.workflow.status import Facts
from workflow_model import WorkflowConfig
from workflow_model.steps import GATES, Step


@dataclass(frozen=True)
class SubmitPlan:
    """What a submit does: take a new snapshot (``prepare``), or resume with these shards (may be none)."""

    prepare: bool
    shards: tuple[str, ...] = ()
    reason: str = ""


def plan_submit(facts: Facts, config: WorkflowConfig, new_snapshot: bool = False) -> SubmitPlan:
    """Resume when the recorded snapshot came from the same snapshot settings; otherwise prepare anew."""
    snapshot = facts.assets.get(Step.SOURCE_SNAPSHOT)
    if new_snapshot:
        return SubmitPlan(True, reason="a new snapshot was asked for")
    if snapshot is None or snapshot.materialized_at is None:
        return SubmitPlan(True, reason="no snapshot recorded yet")
    if snapshot.metadata.get("config_fingerprint") != config.snapshot_fingerprint():
        return SubmitPlan(True, reason="the snapshot settings changed since the last snapshot")
    # The shards are released by the gate that releases the backfill.
    gate = facts.assets.get(next(g.step for g in GATES if g.releases == Step.SHARD_BACKFILL))
    approved = gate is not None and gate.materialized_at is not None and gate.metadata.get("decision") == "approve"
    left = tuple(sorted(k for k, state in facts.partitions.items() if state in ("failed", "pending")))
    if not approved or not left:
        return SubmitPlan(False, reason=f"snapshot {snapshot.metadata.get('snapshot')} is current; nothing to rerun")
    return SubmitPlan(False, left, f"snapshot {snapshot.metadata.get('snapshot')} is current; "
                                   f"{len(left)} shard(s) left to run")
