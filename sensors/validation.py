"""The alert on the validation checks: a failed run, visible in the UI, when an ERROR check turns red."""

from __future__ import annotations

import json

import dagster as dg

from jobs import validation_alert
from workers.validate.report import CHECKS
from workflow_model.steps import Step

_KEY = dg.AssetKey(Step.VALIDATION_REPORT.value)


def _severity(record: dg.AssetCheckExecutionRecord) -> str | None:
    event = record.event
    data = event.dagster_event.event_specific_data if event and event.dagster_event else None
    severity = getattr(data, "severity", None)
    return severity.value if severity is not None else None


def _findings(record: dg.AssetCheckExecutionRecord) -> str:
    event = record.event
    data = event.dagster_event.event_specific_data if event and event.dagster_event else None
    found = (getattr(data, "metadata", None) or {}).get("findings")
    return json.dumps(found.value)[:500] if found is not None else "see the check's evaluation"


def turned_red(instance: dg.DagsterInstance, seen: dict[str, list[object]]) -> tuple[list[tuple[str, int, str]],
                                                                                      dict[str, list[object]]]:
    """(check, evaluation id, findings) of each ERROR check whose newest evaluation failed while the one seen
    before did not; and the new cursor (check -> [evaluation id, status])."""
    alerts = []
    cursor = dict(seen)
    for name in CHECKS:
        record = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(_KEY, name))
        if record is None:
            continue
        status = record.status.value
        before = seen.get(name)
        if before is not None and before[0] == record.id:
            continue
        cursor[name] = [record.id, status]
        was_red = before is not None and before[1] == "FAILED"
        if status == "FAILED" and not was_red and _severity(record) == "ERROR":
            alerts.append((name, record.id, _findings(record)))
    return alerts, cursor


@dg.sensor(job=validation_alert, default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
           description="Starts a failing validation_alert run when a validation check of severity ERROR turns red.")
def validation_alerts(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """One alert run per check that turned red."""
    seen = json.loads(context.cursor) if context.cursor else {}
    alerts, cursor = turned_red(context.instance, seen)
    requests = [dg.RunRequest(run_key=f"{name}:{evaluation}", run_config={"ops": {"validation_check_turned_red": {
        "config": {"check": name, "message": findings}}}}, tags={"migration/check": name})
        for name, evaluation, findings in alerts]
    if not requests and cursor == seen:
        return dg.SkipReason("no validation check turned red")
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))
