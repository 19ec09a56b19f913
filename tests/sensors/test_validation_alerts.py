"""The validation alert: a failed run requested when an ERROR check turns red, once, and again after it recovered."""

from __future__ import annotations

import dagster as dg

from sensors.validation import validation_alerts

KEY = dg.AssetKey("validation_report")


def _evaluate(instance: dg.DagsterInstance, name: str, passed: bool,
              severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR) -> None:
    instance.report_runless_asset_event(dg.AssetCheckEvaluation(
        asset_key=KEY, check_name=name, passed=passed, severity=severity,
        metadata={"findings": dg.MetadataValue.json([f"{name} finding"])}))


def _tick(instance: dg.DagsterInstance, cursor: str | None) -> tuple[list[dg.RunRequest], str | None]:
    result = validation_alerts(dg.build_sensor_context(instance=instance, cursor=cursor))
    if isinstance(result, dg.SkipReason):
        return [], cursor
    assert isinstance(result, dg.SensorResult)
    return list(result.run_requests or []), result.cursor


def test_an_error_check_turning_red_starts_one_failing_alert_run() -> None:
    with dg.instance_for_test() as instance:
        _evaluate(instance, "counts", True)
        requests, cursor = _tick(instance, None)
        assert requests == []
        _evaluate(instance, "fingerprints", False)
        _evaluate(instance, "queries", False, dg.AssetCheckSeverity.WARN)  # yellow, not red: no alert
        requests, cursor = _tick(instance, cursor)
        assert [r.tags["migration/check"] for r in requests] == ["fingerprints"]
        config = requests[0].run_config["ops"]["validation_check_turned_red"]["config"]
        assert config["check"] == "fingerprints" and "fingerprints finding" in config["message"]
        # Still red on the next evaluation: no second alert. Green, then red again: a new one.
        _evaluate(instance, "fingerprints", False)
        assert _tick(instance, cursor)[0] == []
        _evaluate(instance, "fingerprints", True)
        requests, cursor = _tick(instance, _tick(instance, cursor)[1])
        _evaluate(instance, "fingerprints", False)
        requests, cursor = _tick(instance, cursor)
        assert [r.tags["migration/check"] for r in requests] == ["fingerprints"]


def test_the_alert_job_fails_naming_the_check() -> None:
    from jobs import validation_alert

    result = validation_alert.execute_in_process(
        run_config={"ops": {"validation_check_turned_red": {"config": {"check": "counts", "message": "x: 1 vs 2"}}}},
        raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_failure_data is not None and failure.step_failure_data.error is not None
    assert "validation check counts turned red: x: 1 vs 2" in failure.step_failure_data.error.message
