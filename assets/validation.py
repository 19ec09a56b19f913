"""The validation report (after the backfill) and its four checks; the checks also re-run alone on a schedule.

The asset runs the full validation (``workers.validate``): every document's fingerprint, the default and configured
queries, the metadata against the plan. Its checks judge that report in the run that made it; in a run of the
checks alone (the ``validation_checks`` schedule) they re-run the cheap part themselves: counts, a sample of the
fingerprints (other buckets each time) and the queries, so that the UI keeps a history of agreement while traffic
flows.

With replay on (a live migration) both compare the target with the live source instead of the snapshot
(``workflow_model.validation.default_against``; ``workers/validate/live.py``): clients keep writing through the
capture proxy and the replayer follows, so against the snapshot the target would always differ. Differences still
in flight are rechecked until they converge; only those that persist fail a check.
"""

# No "from __future__ import annotations": Dagster inspects the context annotation at definition time.
import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from assets.approvals import latest_record, metadata_of
from assets.partitions import GROUP
from assets.replay_history import replay_lag_history
from resources.workflow import WorkflowResource
from workers.common.errors import MigrationError
from workers.common.fingerprint import BUCKETS
from workers.validate.render import index_table, to_markdown, write_files
from workers.validate.report import CHECKS
from workers.validate.run import validate
from workers.validate.snapshot_side import shards_from_dict
from workflow_model.steps import VALIDATION_FOLLOWS, Step
from workflow_model.validation import (
    migration_options,
    scope_dict,
    snapshot_scope,
    source_engine_version,
    validation_options,
)

SEVERITY = {"counts": dg.AssetCheckSeverity.ERROR, "fingerprints": dg.AssetCheckSeverity.ERROR,
            "metadata": dg.AssetCheckSeverity.WARN, "queries": dg.AssetCheckSeverity.WARN}
_DESCRIPTIONS = {
    "counts": "Every target index holds as many documents as the snapshot's shards sent there (replay on: no "
              "document stays missing or extra against the live source once writes in flight arrived).",
    "fingerprints": "Every document's id, routing and source on the target equal the snapshot's, or with replay on "
                    "the live source's once writes in flight arrived (all of them after a backfill; a rotating "
                    "sample of id buckets on the schedule).",
    "metadata": "The target's mappings, settings and aliases are what the metadata evaluation plans.",
    "queries": "The default and configured searches give the same totals, top ids and buckets on both clusters.",
}


def _image(path: Path) -> dg.MetadataValue:
    """A PNG shown inline in the UI's Markdown."""
    data = base64.b64encode(path.read_bytes()).decode()
    return dg.MetadataValue.md(f"![{path.stem}](data:image/png;base64,{data})")


@dg.asset(name=Step.VALIDATION_REPORT.value, group_name=GROUP, deps=[dg.AssetKey(VALIDATION_FOLLOWS.value)],
          kinds={"opensearch", "python"},
          automation_condition=(dg.AutomationCondition.any_deps_updated().since_last_handled()
                                & ~dg.AutomationCondition.any_deps_missing()
                                & ~dg.AutomationCondition.any_deps_in_progress()
                                & ~dg.AutomationCondition.in_progress()),
          description="The target against the source: per-index counts, content fingerprints of every document "
                      "(differing ids listed), metadata against the plan, searches on both; HTML and JSON beside "
                      "the workflow file.")
def validation_report(context: dg.AssetExecutionContext, source_snapshot: dict[str, Any],
                      workflow: WorkflowResource) -> dg.MaterializeResult[dict[str, Any]]:
    """Validate the whole target; the report's files go to ``validation/<time>/`` beside the workflow file."""
    config = workflow.load()
    config.require_secrets()
    scope = snapshot_scope(source_snapshot)
    try:
        report = validate(scope, validation_options(config), metadata_options=migration_options(config),
                          source_version=source_engine_version(config),
                          replay_tuples=config.validation.replay_tuples)
    except MigrationError as exc:
        raise dg.Failure(f"validation: {exc}") from None
    folder = workflow.validation_dir() / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    paths = write_files(report, folder, lag=replay_lag_history(context.instance))
    context.log.info(f"validation: {'clean' if report.clean else 'differences found'}; report in {paths['html']}")
    metadata: dict[str, Any] = {
        "clean": dg.MetadataValue.bool(report.clean),
        "report": dg.MetadataValue.md(to_markdown(report)),
        "indices": dg.MetadataValue.md("\n".join(index_table(report))),
        "differing_documents": dg.MetadataValue.int(len(report.differences)),
        "target_documents": dg.MetadataValue.int(sum(r.target_count or 0 for r in report.indices)),
        "checks": dg.MetadataValue.json({c: report.passed(c) for c in CHECKS}),
        "report_html": dg.MetadataValue.path(str(paths["html"])),
        "report_json": dg.MetadataValue.path(str(paths["json"])),
        "snapshot_fingerprints": dg.MetadataValue.path(str(paths["snapshot_fingerprints"])),
        "scope": dg.MetadataValue.json(scope_dict(scope)),
        "snapshot": dg.MetadataValue.text(scope.snapshot),
        "against": dg.MetadataValue.text(report.against_label),
        "duration_s": dg.MetadataValue.float(round(report.seconds, 3)),
    }
    if "documents_plot" in paths:
        metadata["documents_plot"] = _image(paths["documents_plot"])
    if "lag_plot" in paths:
        metadata["replay_lag_plot"] = _image(paths["lag_plot"])
    return dg.MaterializeResult(value=report.to_dict(), metadata=metadata)


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(name, asset=validation_report, description=_DESCRIPTIONS[name],
                             blocking=SEVERITY[name] == dg.AssetCheckSeverity.ERROR) for name in CHECKS],
    description="The validation report's checks: judged from the report in its own run, re-run (counts, sampled "
                "fingerprints, queries, metadata) when the checks run alone.")
def validation_checks(context: dg.AssetCheckExecutionContext,
                      workflow: WorkflowResource) -> Iterator[dg.AssetCheckResult]:
    """One result per check."""
    record = latest_record(context.instance, Step.VALIDATION_REPORT.value)
    if record is None:
        raise dg.Failure(f"{Step.VALIDATION_REPORT}: nothing to check yet, the report was never made")
    meta = metadata_of(record)
    if record.run_id == context.run.run_id:
        report: dict[str, Any] = json.loads(Path(str(meta["report_json"])).read_text())
        mode = "report"
    else:
        report = _cheap(context, workflow, meta["scope"], meta.get("snapshot_fingerprints"))
        mode = "scheduled"
    for name in CHECKS:
        check = report["checks"][name]
        yield dg.AssetCheckResult(
            check_name=name, asset_key=validation_report.key, passed=bool(check["passed"]), severity=SEVERITY[name],
            metadata={"findings": dg.MetadataValue.json(check["findings"][:50]),
                      "found": dg.MetadataValue.int(len(check["findings"])),
                      "skipped": dg.MetadataValue.text(check.get("skipped") or ""),
                      "mode": dg.MetadataValue.text(mode if mode == "report" else report["mode"]),
                      "against": dg.MetadataValue.text(str(report.get("against") or "snapshot")),
                      "confidence": dg.MetadataValue.text(report.get("confidence") or "")})


def sample_offset(now: float, buckets: int) -> int:
    """Where this run's sample starts: a rotation by the half hour, so that successive scheduled runs cover every
    bucket in turn."""
    return (int(now // 1800) * buckets) % BUCKETS


def _cheap(context: dg.AssetCheckExecutionContext, workflow: WorkflowResource, scope: dict[str, Any],
           fingerprints: str | None) -> dict[str, Any]:
    config = workflow.load()
    config.require_secrets()
    buckets = config.validation.sample_buckets
    # With replay on, against the live source (the target moves with it; see the module's docstring).
    options = validation_options(config, mode="sample", sample_offset=sample_offset(time.time(), buckets))
    # The snapshot side as the report kept it: the cleanup removes the coordination index's copy.
    path = Path(fingerprints) if fingerprints and options.against == "snapshot" else None
    known = shards_from_dict(json.loads(path.read_text())) if path and path.is_file() else None
    try:
        report = validate(snapshot_scope(scope), options, metadata_options=migration_options(config),
                          source_version=source_engine_version(config), known=known)
    except MigrationError as exc:
        raise dg.Failure(f"scheduled validation: {exc}") from None
    context.log.info(f"scheduled validation, {report.against_label}: "
                     f"{'clean' if report.clean else 'differences found'} ({report.confidence})")
    return report.to_dict()
