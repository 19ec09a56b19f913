"""Metadata evaluation (with a blocking check) and migration: thin assets over ``workers.metadata``."""

# No "from __future__ import annotations": Dagster inspects the context annotation at definition time.
from typing import Any

import dagster as dg

from assets.approvals import GATE_ASSETS, gated, releasing, require_approval
from assets.clusters import target_cluster
from assets.partitions import GROUP
from resources.workflow import WorkflowResource
from workers.common.clusters import build_client
from workers.lifecycle import target_state
from workers.metadata.apply import migrate
from workers.metadata.options import MigrationOptions
from workers.metadata.plan import evaluate
from workers.metadata.report import Report
from workers.metadata.source import SnapshotLocation, read_source
from workers.metadata.versions import EngineVersion
from workflow_model import WorkflowConfig
from workflow_model.steps import Step
from workflow_model.validation import migration_options


def _options(config: WorkflowConfig) -> MigrationOptions:
    return migration_options(config)


def _evaluate(config: WorkflowConfig, snapshot: dict[str, Any]) -> Report:
    """The plan for the snapshot's metadata against the target as it is now."""
    config.require_secrets()
    location = SnapshotLocation(snapshot["uri"], snapshot["snapshot"], snapshot.get("s3_endpoint"),
                                snapshot.get("s3_region"))
    version = EngineVersion.parse(config.source.version) if config.source.version else None
    found = read_source(snapshot=location, version=version)
    conn = config.target.connection()
    return evaluate(found, build_client(conn), conn.redacted(), _options(config))


def _metadata(report: Report) -> dict[str, Any]:
    out: dict[str, Any] = {
        "source": dg.MetadataValue.text(report.source),
        "target": dg.MetadataValue.text(report.target),
        "source_version": dg.MetadataValue.text(report.source_version),
        "target_version": dg.MetadataValue.text(report.target_version),
        "report": dg.MetadataValue.md(report.markdown()),
        "transformations": dg.MetadataValue.md(
            "\n".join(f"- **{name}**: {summary}" for name, summary in report.transformations.items()) or "none"),
    }
    out.update({key.replace("-", "_").replace(":", "_"): dg.MetadataValue.int(n) for key, n in report.counts().items()})
    out["objects"] = dg.MetadataValue.int(len(report.rows))
    return out


@dg.asset(name=Step.METADATA_EVALUATION.value, group_name=GROUP, deps=[target_cluster], kinds={"opensearch"},
          description="What migrating the snapshot's templates and indices to the target would do, object by object.")
def metadata_evaluation(source_snapshot: dict[str, Any],
                        workflow: WorkflowResource) -> dg.MaterializeResult[dict[str, Any]]:
    """Evaluate the metadata migration; the report is the value and a Markdown table in the metadata."""
    report = _evaluate(workflow.load(), source_snapshot)
    return dg.MaterializeResult(metadata=_metadata(report), value=report.to_dict(with_bodies=False))


@dg.asset_check(asset=metadata_evaluation, blocking=True,
                description="No object of the evaluation is blocked (conflicting types, rejected mappings, ...).")
def no_blocking_incompatibilities(metadata_evaluation: dict[str, Any]) -> dg.AssetCheckResult:
    """Pass when the evaluation blocks nothing; list the blocked objects otherwise."""
    blocked = [r for r in metadata_evaluation["rows"] if r["action"] == "blocked"]
    lines = "\n".join(f"- {r['kind']} **{r['name']}**: {'; '.join(r['blockers'])}" for r in blocked)
    return dg.AssetCheckResult(
        passed=not blocked,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"blocked": dg.MetadataValue.int(len(blocked)),
                  "blocked_objects": dg.MetadataValue.md(lines or "none")},
    )


_GATE = releasing(Step.MIGRATED_METADATA)


@dg.asset(name=Step.MIGRATED_METADATA.value, group_name=GROUP, kinds={"opensearch"}, deps=[GATE_ASSETS[_GATE.step]],
          automation_condition=gated(_GATE),
          description="Templates, settings, mappings and aliases created on the target from the approved plan.")
def migrated_metadata(context: dg.AssetExecutionContext, metadata_evaluation: dict[str, Any],
                      source_snapshot: dict[str, Any],
                      workflow: WorkflowResource) -> dg.MaterializeResult[dict[str, Any]]:
    """Re-evaluate against the target as it is now and create what the plan says; fail when an object failed."""
    approval = require_approval(context.instance, _GATE)
    config = workflow.load()
    report = _evaluate(config, source_snapshot)
    if report.blocked:
        # The blocking check only guards its own run: a later run must not migrate a plan with blocked objects.
        raise dg.Failure(f"{len(report.blocked)} object(s) are blocked; see the report", metadata=_metadata(report))
    before = {(r["kind"], r["name"]): r["action"] for r in metadata_evaluation["rows"]}
    changed = [f"{r.kind} {r.name}: {before.get((r.kind, r.name), 'absent')} → {r.action}" for r in report.rows
               if before.get((r.kind, r.name)) != r.action]
    if changed:
        context.log.warning("the plan changed since the evaluation: " + "; ".join(changed))
    target = build_client(config.target.connection())
    migrate(report, target, report.target, config.metadata.transformations.allow_existing)
    metadata = _metadata(report)
    # The next gate's evidence: what the target holds now of what was planned.
    planned = [r for r in report.rows if r.action != "excluded"]
    indices = target_state.indices_table(target, [r.name for r in planned if r.kind == "index"])
    templates = target_state.templates_present(target, [r.name for r in planned if r.kind != "index"])
    metadata["target_state"] = dg.MetadataValue.md(target_state.to_markdown(indices, templates))
    missing = [r["index"] for r in indices if not r["present"]] + [n for n, ok in templates.items() if not ok]
    metadata["gate_summary"] = dg.MetadataValue.text(
        f"{sum(r['present'] for r in indices)}/{len(indices)} indices and "
        f"{sum(templates.values())}/{len(templates)} templates on the target"
        + (f"; missing: {', '.join(missing[:10])}" if missing else ""))
    metadata["approved_by"] = dg.MetadataValue.text(str(approval.get("approved_by", "")))
    metadata["changed_since_evaluation"] = dg.MetadataValue.md("\n".join(f"- {c}" for c in changed) or "none")
    if report.failed:
        raise dg.Failure(f"{len(report.failed)} object(s) failed on the target: "
                         + "; ".join(f"{r.name}: {r.reason}" for r in report.failed), metadata=metadata)
    return dg.MaterializeResult(metadata=metadata, value=report.to_dict(with_bodies=False))
