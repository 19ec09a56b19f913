"""The validation schedule's ticks (with the default ``enabled: auto``) and the replay lag history the report plots."""

from __future__ import annotations

from typing import Literal

import dagster as dg
import pytest

from assets.replay_history import replay_lag_history
from jobs.validation import validation_checks_schedule
from workflow_model.steps import Step

REPORT = dg.AssetKey(Step.VALIDATION_REPORT.value)
REPLAY = dg.AssetKey(Step.REPLAY_CATCHUP.value)


def _tick(instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    result = validation_checks_schedule(dg.build_schedule_context(instance=instance))
    assert isinstance(result, dg.RunRequest | dg.SkipReason)
    return result


def test_checks_wait_for_a_report_then_for_replay_to_start() -> None:
    assert validation_checks_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    with dg.instance_for_test() as instance:
        skipped = _tick(instance)
        assert isinstance(skipped, dg.SkipReason) and "validation_report has not run" in str(skipped.skip_message)
        instance.report_runless_asset_event(dg.AssetMaterialization(REPORT))
        instance.report_runless_asset_event(dg.AssetMaterialization(REPLAY, metadata={"replay": "off"}))
        skipped = _tick(instance)
        assert isinstance(skipped, dg.SkipReason) and "replay has not started" in str(skipped.skip_message)
        instance.report_runless_asset_event(dg.AssetMaterialization(REPLAY, metadata={"lag_records": 3}))
        assert isinstance(_tick(instance), dg.RunRequest)


def test_lag_history_joins_the_catch_up_and_the_sensor_observations() -> None:
    with dg.instance_for_test() as instance:
        assert replay_lag_history(instance) == []
        instance.report_runless_asset_event(dg.AssetObservation(REPLAY, metadata={"lag_records": 99}))  # before: old
        instance.report_runless_asset_event(dg.AssetMaterialization(REPLAY, metadata={
            "lag_history": dg.MetadataValue.json([[1000.0, 500], [1002.0, 40], [1004.0, 0]])}))
        for lag in (7, 2):
            instance.report_runless_asset_event(dg.AssetObservation(REPLAY, metadata={"lag_records": lag}))
        points = replay_lag_history(instance)
        assert points[:3] == [(1000.0, 500.0), (1002.0, 40.0), (1004.0, 0.0)]
        assert [lag for _, lag in points[3:]] == [7.0, 2.0]
        assert points[3][0] < points[4][0]


@pytest.mark.parametrize("value", [True, False, "auto"])
def test_the_setting_takes_a_boolean_or_auto(value: bool | Literal["auto"]) -> None:
    from workflow_model.config import ValidationScheduleModel

    assert ValidationScheduleModel(enabled=value).enabled == value
