"""Sensors: the approval gates (automation sensor and auto-approvals), the replay's Kafka lag, validation alerts."""

import dagster as dg

from sensors.gates import auto_approvals, migration_gates
from sensors.replay import replay_lag_sensor
from sensors.validation import validation_alerts

SENSORS: list[dg.SensorDefinition] = [migration_gates, auto_approvals, replay_lag_sensor, validation_alerts]

__all__ = ["SENSORS", "auto_approvals", "migration_gates", "replay_lag_sensor", "validation_alerts"]
