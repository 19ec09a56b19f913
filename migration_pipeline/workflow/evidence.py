"""What a person decides a gate on: the plan, what is (or would be) on the target, and the source's counts.

Gathered from the phases' materialization metadata through a driver, plus the aliases of the planned indices that
already exist on the target (asked of the target of the active config; best effort).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migration_pipeline.workflow.outputs import md_table
from workflow_model.steps import GATES, Step, gate

if TYPE_CHECKING:
    from migration_pipeline.workflow.driver import Driver

# The snapshot (for the source's counts) and what each gate approves.
EVIDENCE_PHASES: tuple[str, ...] = (Step.SOURCE_SNAPSHOT.value, *(g.approves.value for g in GATES))
_TITLES = {g.name: g.question for g in GATES}


@dataclass
class Evidence:
    """The facts behind one gate's decision."""

    gate: str
    state: str
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # phase -> last materialization metadata
    aliases: dict[str, list[str]] = field(default_factory=dict)  # index on the target now -> its aliases
    target_note: str | None = None


def _target_name(cell: str) -> str:
    return cell.split(" (from ", 1)[0]


def planned_rows(meta: dict[str, Any]) -> list[dict[str, str]]:
    """The report's rows (kind, name, action, ...) that are not excluded."""
    return [r for r in md_table(str(meta.get("report") or "")) if r.get("action") != "excluded"]


def target_aliases(indices: list[str]) -> tuple[dict[str, list[str]], str | None]:
    """Index -> aliases for those of ``indices`` that exist on the active config's target; or why it is unknown."""
    if not indices:
        return {}, None
    from opensearchpy.exceptions import OpenSearchException

    from workers.common.clusters import build_client
    from workers.common.errors import MigrationError
    from workflow_model import load_active

    try:
        conn = load_active().target.connection()
        client = build_client(conn, max_retries=0)
        found = client.indices.get_alias(index=",".join(indices), ignore_unavailable=True, allow_no_indices=True)
    except (MigrationError, OpenSearchException, OSError) as exc:
        return {}, f"the target could not be asked: {exc.__class__.__name__}: {str(exc)[:200]}"
    return {name: sorted((body or {}).get("aliases") or {}) for name, body in found.items()}, None


def gather(driver: Driver, name: str, state: str, ask_target: bool = True) -> Evidence:
    """The evidence for the gate ``name`` (in ``state``) through ``driver``."""
    evidence = Evidence(name, state, {phase: driver.phase_metadata(phase) for phase in EVIDENCE_PHASES})
    if ask_target:
        subject = gate(name).approves
        names = [_target_name(r.get("name", "")) for r in planned_rows(evidence.metadata.get(subject, {}))
                 if r.get("kind") == "index"]
        evidence.aliases, evidence.target_note = target_aliases(names)
    return evidence


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or "—"


def _target_table(rows: list[dict[str, str]], evidence: Evidence, column: str) -> list[str]:
    lines = [f"| kind | name | {column} | on the target now |", "|---|---|---|---|"]
    for row in rows:
        name = _target_name(row.get("name", ""))
        if row.get("kind") == "index":
            now = (f"present, aliases: {', '.join(evidence.aliases[name]) or 'none'}" if name in evidence.aliases
                   else "unknown" if evidence.target_note else "absent")
        else:
            now = "—"
        lines.append(f"| {row.get('kind')} | {_cell(row.get('name', ''))} | {_cell(row.get(column, ''))} | {now} |")
    return lines if rows else ["nothing to create"]


def _counts(meta: dict[str, Any]) -> str:
    keys = ("create", "exists_identical", "exists_different", "excluded", "blocked")
    return " · ".join(f"{k.replace('_', '-')} {meta[k]}" for k in keys if meta.get(k) is not None)


def _plan(evaluation: dict[str, Any], evidence: Evidence) -> list[str]:
    blocked = [r for r in md_table(str(evaluation.get("report") or "")) if r.get("action") == "blocked"]
    return ["### What the evaluation plans", "",
            f"{evaluation.get('source')} ({evaluation.get('source_version')}) → {evaluation.get('target')} "
            f"({evaluation.get('target_version')}): **{evaluation.get('objects')} objects** — {_counts(evaluation)}",
            "", f"**Blocked ({len(blocked)})**", "",
            *([f"- {r.get('kind')} **{r.get('name')}**: {r.get('notes')}" for r in blocked] or ["none"]), "",
            "### On the target", "", *_target_table(planned_rows(evaluation), evidence, "action")]


def _migration(migrated: dict[str, Any], evidence: Evidence) -> list[str]:
    results = " · ".join(f"{k.removeprefix('result_')} {v}" for k, v in sorted(migrated.items())
                         if k.startswith("result_"))
    return ["### What the metadata migration did", "",
            f"on {migrated.get('target')}, approved by {migrated.get('approved_by') or '—'}: {results or '—'}", "",
            "**Changed since the evaluation**", "", str(migrated.get("changed_since_evaluation") or "none"), "",
            "### On the target", "", *_target_table(planned_rows(migrated), evidence, "result")]


def _transformations(meta: dict[str, Any]) -> list[str]:
    return ["", "### Transformations applied", "", str(meta.get("transformations") or "none")]


def to_markdown(evidence: Evidence) -> str:
    """The evidence as Markdown (the ``workflow manage`` evidence pane)."""
    meta = evidence.metadata
    lines = [f"## {evidence.gate}: {evidence.state}", "", _TITLES.get(evidence.gate, ""), ""]
    approves = gate(evidence.gate).approves
    subject = meta.get(approves) if approves in (Step.MIGRATED_METADATA, Step.SNAPSHOT_REGISTRATION,
                                                 Step.VALIDATION_REPORT) else None
    if subject and approves == Step.MIGRATED_METADATA:
        lines += _migration(subject, evidence)
        if subject.get("target_state"):
            lines += ["", "### The migrated objects on the target after the migration", "",
                      str(subject["target_state"])]
    elif subject and approves == Step.SNAPSHOT_REGISTRATION:
        lines += ["### The backfill about to start", "", str(subject.get("evidence") or "")]
    elif subject and approves == Step.VALIDATION_REPORT:
        lines += ["### The validation report", "",
                  f"{'clean' if subject.get('clean') else 'DIFFERENCES FOUND'}: "
                  f"{subject.get('differing_documents', 0)} differing documents listed, "
                  f"{subject.get('target_documents')} documents on the target; the full report: "
                  f"{subject.get('report_html')}", "", str(subject.get("report") or "")]
    elif approves in (Step.SNAPSHOT_REGISTRATION, Step.VALIDATION_REPORT):
        lines.append(f"nothing to decide on yet: {approves} has not run")
    elif meta.get(Step.METADATA_EVALUATION):
        subject = meta[Step.METADATA_EVALUATION]
        lines += _plan(subject, evidence)
    else:
        lines.append("nothing to decide on yet: the metadata evaluation has not run")
    if evidence.target_note:
        lines += ["", f"*{evidence.target_note}*"]
    snapshot = meta.get(Step.SOURCE_SNAPSHOT) or {}
    if snapshot:
        lines += ["", f"### Source counts (snapshot {snapshot.get('snapshot')}, "
                      f"{snapshot.get('source_documents')} documents)", "",
                  str(snapshot.get("documents_per_index") or "")]
    if subject and approves == Step.MIGRATED_METADATA:
        lines += _transformations(subject)
    return "\n".join(lines) + "\n"
