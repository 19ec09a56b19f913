"""Sensors: the approval gates (automation sensor and auto-approvals); later Kafka lag and run status."""

import dagster as dg

from sensors.gates import auto_approvals, migration_gates

SENSORS: list[dg.SensorDefinition] = [migration_gates, auto_approvals]

__all__ = ["SENSORS", "auto_approvals", "migration_gates"]
