"""Metadata evaluation (with a blocking check) and migration: thin assets over ``workers.metadata``."""

# No "from __future__ import annotations": Dagster inspects the context annotation at definition time.
from typing import Any

import dagster as dg

from resources.clusters import SearchClusterResource
from resources.metadata import MetadataMigrationResource
from workers.metadata.apply import migrate
from workers.metadata.plan import evaluate
from workers.metadata.report import Report

GROUP = "migration"


def _evaluate(source: SearchClusterResource, target: SearchClusterResource,
              metadata_migration: MetadataMigrationResource) -> Report:
    found = metadata_migration.read(source)
    conn = target.connection()
    return evaluate(found, target.get_client(), conn.redacted(), metadata_migration.options())


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


@dg.asset(group_name=GROUP, deps=["source_cluster", "target_cluster"], kinds={"opensearch"},
          description="What migrating the source's templates and indices to the target would do, object by object.")
def metadata_evaluation(source: SearchClusterResource, target: SearchClusterResource,
                        metadata_migration: MetadataMigrationResource) -> dg.MaterializeResult[dict[str, Any]]:
    """Evaluate the metadata migration; the report is the value and a Markdown table in the metadata."""
    report = _evaluate(source, target, metadata_migration)
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


@dg.asset(group_name=GROUP, kinds={"opensearch"},
          description="Templates, settings, mappings and aliases created on the target from the evaluated plan.")
def migrated_metadata(context: dg.AssetExecutionContext, metadata_evaluation: dict[str, Any],
                      source: SearchClusterResource, target: SearchClusterResource,
                      metadata_migration: MetadataMigrationResource) -> dg.MaterializeResult[dict[str, Any]]:
    """Re-evaluate against the target as it is now and create what the plan says; fail when an object failed."""
    report = _evaluate(source, target, metadata_migration)
    if report.blocked:
        # The blocking check only guards its own run: a later run must not migrate a plan with blocked objects.
        raise dg.Failure(f"{len(report.blocked)} object(s) are blocked; see the report", metadata=_metadata(report))
    before = {(r["kind"], r["name"]): r["action"] for r in metadata_evaluation["rows"]}
    changed = [f"{r.kind} {r.name}: {before.get((r.kind, r.name), 'absent')} → {r.action}" for r in report.rows
               if before.get((r.kind, r.name)) != r.action]
    if changed:
        context.log.warning("the plan changed since the evaluation: " + "; ".join(changed))
    migrate(report, target.get_client(), report.target, metadata_migration.allow_existing)
    metadata = _metadata(report)
    metadata["changed_since_evaluation"] = dg.MetadataValue.md("\n".join(f"- {c}" for c in changed) or "none")
    if report.failed:
        raise dg.Failure(f"{len(report.failed)} object(s) failed on the target: "
                         + "; ".join(f"{r.name}: {r.reason}" for r in report.failed), metadata=metadata)
    return dg.MaterializeResult(metadata=metadata, value=report.to_dict(with_bodies=False))
