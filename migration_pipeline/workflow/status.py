"""The workflow's state as a person reads it: phases, shards, documents, pending gates.

Both drivers (in-process and GraphQL) gather the same facts; ``summarize`` turns them into one status.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from workflow_model.steps import LAST_STEP, PHASES, Step, gate, is_gate

RUNNING = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "MANAGED", "CANCELING"}


@dataclass
class AssetFacts:
    """What the instance knows of one unpartitioned asset."""

    materialized_at: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    latest_run_status: str | None = None
    latest_run_id: str | None = None


@dataclass
class Facts:
    """Everything the status is computed from."""

    assets: dict[str, AssetFacts] = field(default_factory=dict)
    partitions: dict[str, str] = field(default_factory=dict)  # shard key -> done | failed | running | pending
    shard_documents: dict[str, int] = field(default_factory=dict)
    shard_errors: dict[str, str] = field(default_factory=dict)  # failed shard key -> its last run's error


@dataclass
class Phase:
    """One phase's state."""

    name: str
    state: str
    detail: str = ""
    kind: str = "phase"  # "gate": an approval step, decided with `workflow approve step NAME`


@dataclass
class WorkflowStatus:
    """The whole workflow at a glance."""

    phases: list[Phase]
    shards: dict[str, int]
    failed_shards: list[str]
    documents: int
    pending_gates: list[str]
    rejected_gates: list[str]
    parity: dict[str, Any] | None
    shard_errors: dict[str, str] = field(default_factory=dict)
    gate_evidence: dict[str, str] = field(default_factory=dict)  # pending gate -> one line of what it decides on

    @property
    def finished(self) -> bool:
        """True when the last step (the cleanup) ran."""
        return self.phase(LAST_STEP).state == "done"

    @property
    def stopped(self) -> bool:
        """True when nothing will move without a person: a gate is pending or rejected, or a phase failed."""
        return bool(self.pending_gates or self.rejected_gates
                    or any(p.state == "failed" for p in self.phases)) and not self.running

    @property
    def running(self) -> bool:
        """True while a phase runs."""
        return any(p.state == "running" for p in self.phases)

    def phase(self, name: str) -> Phase:
        """The phase of that name."""
        return next(p for p in self.phases if p.name == name)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (``--json``)."""
        return {**asdict(self), "finished": self.finished}


def _asset_state(facts: AssetFacts) -> str:
    if facts.latest_run_status in RUNNING:
        return "running"
    if facts.latest_run_status in ("FAILURE", "CANCELED"):
        return "failed"
    return "done" if facts.materialized_at is not None else "pending"


def _detail(name: str, facts: AssetFacts) -> str:
    meta = facts.metadata
    if name == Step.SOURCE_SNAPSHOT and meta:
        return f"{meta.get('snapshot')} ({meta.get('shards')} shards)"
    if is_gate(name) and meta:
        return f"{meta.get('decision')} by {meta.get('approved_by')}" + (
            f" (ticket {meta['ticket']})" if meta.get("ticket") else "")
    if name == Step.METADATA_EVALUATION and meta:
        return f"{meta.get('objects')} objects, {meta.get('blocked', 0)} blocked"
    if name == Step.BACKFILL_PARITY and meta:
        return f"{meta.get('indices')} indices, mismatched: {meta.get('mismatched') or 'none'}"
    if name == Step.VALIDATION_REPORT and meta:
        failed = [c for c, ok in (meta.get("checks") or {}).items() if not ok]
        return (f"clean, {meta.get('target_documents')} documents" if meta.get("clean") else
                f"differences: {', '.join(failed) or '?'} ({meta.get('differing_documents', 0)} documents listed)")
    if name == Step.REPLAY_CATCHUP and meta:
        if meta.get("replay") == "off":
            return "off (replay.enabled is false)"
        return f"caught up: {meta.get('lag_records')} records behind, {meta.get('replayers')} replayer(s)"
    if name == Step.CUTOVER and meta:
        if meta.get("switch") == "off":
            return "off: no proxies to switch (point the clients at the target yourself)"
        where = "traffic on the target" if meta.get("side") == "target" else "traffic back on the source (back-out)"
        return f"{where}; writes held {float(meta.get('hold_s') or 0):.2f}s"
    if name == Step.MIGRATION_CLEANUP and meta:
        return str(meta.get("summary") or "")
    return str(meta.get("gate_summary") or "")


def evidence_line(subject: str, facts: AssetFacts) -> str:
    """One line of what a gate on ``subject`` decides on (the subject's own summary, else its detail)."""
    return str(facts.metadata.get("gate_summary") or _detail(subject, facts) or "")


def summarize(facts: Facts) -> WorkflowStatus:
    """The status from the facts."""
    phases: list[Phase] = []
    pending_gates: list[str] = []
    rejected: list[str] = []
    evidence: dict[str, str] = {}
    shard_counts = {state: 0 for state in ("done", "failed", "running", "pending")}
    for key_state in facts.partitions.values():
        shard_counts[key_state] = shard_counts.get(key_state, 0) + 1
    for step in PHASES:
        name = step.value
        asset = facts.assets.get(name, AssetFacts())
        if step == Step.SHARD_BACKFILL:
            total = len(facts.partitions)
            if shard_counts["running"]:
                state = "running"
            elif shard_counts["failed"]:
                state = "failed"
            elif total and shard_counts["done"] == total:
                state = "done"
            else:
                state = "pending"
            detail = f"{shard_counts['done']}/{total} shards done"
            phases.append(Phase(name, state, detail))
            continue
        state = _asset_state(asset)
        if is_gate(name) and state not in ("running", "failed"):
            subject = facts.assets.get(gate(name).approves, AssetFacts())
            decided = asset.materialized_at
            if subject.materialized_at is not None and (decided is None or subject.materialized_at > decided):
                state = "waiting for approval"
                pending_gates.append(name)
                evidence[name] = evidence_line(gate(name).approves, subject)
            elif asset.metadata.get("decision") == "reject":
                state = "rejected"
                rejected.append(name)
        phases.append(Phase(name, state, _detail(name, asset), "gate" if is_gate(name) else "phase"))
    parity_meta = facts.assets.get(Step.BACKFILL_PARITY, AssetFacts()).metadata
    parity = {"mismatched": parity_meta.get("mismatched"), "target_documents": parity_meta.get("target_documents")} \
        if parity_meta else None
    failed = sorted(k for k, s in facts.partitions.items() if s == "failed")
    return WorkflowStatus(phases, shard_counts, failed, sum(facts.shard_documents.values()), pending_gates, rejected,
                          parity, {k: facts.shard_errors[k] for k in failed if k in facts.shard_errors}, evidence)
