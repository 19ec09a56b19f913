"""Sensors: approval gates, Kafka lag and run status (added with the workflow, replay and cutover issues)."""

import dagster as dg

SENSORS: list[dg.SensorDefinition] = []

__all__ = ["SENSORS"]
