"""Command-line interfaces: ``migration`` (umbrella), ``workflow`` and ``console``."""

from migration_pipeline.cli.common import quiet_dagster_warnings

quiet_dagster_warnings()
