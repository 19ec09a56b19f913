"""One interface over the two ways to drive the workflow: in-process, or a Dagster webserver's GraphQL API."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

from migration_pipeline.workflow.status import WorkflowStatus


class Driver(Protocol):
    """What the ``workflow`` commands need."""

    def submit(self, new_snapshot: bool = False) -> None:
        """Start the workflow, or resume what is left of it."""

    def approve(self, gate: str, approved_by: str, ticket: str | None, decision: str) -> None:
        """Record a decision on a gate."""

    def status(self) -> WorkflowStatus:
        """The workflow's status."""

    def log_lines(self, limit: int) -> list[tuple[str, str]]:
        """(unique id, line) of recent events, oldest first."""

    def reset(self) -> None:
        """Forget the recorded phases."""


def open_driver(dagster_url: str | None, say: Callable[[str], None]) -> Driver:
    """The GraphQL driver for ``dagster_url``, else the in-process one on ``$DAGSTER_HOME``."""
    if dagster_url:
        from migration_pipeline.workflow.remote import RemoteWorkflow

        return RemoteWorkflow(dagster_url, say)
    import dagster as dg

    from migration_pipeline.config.store import dagster_home
    from migration_pipeline.workflow.local import LocalWorkflow

    os.environ["DAGSTER_HOME"] = str(dagster_home())
    return LocalWorkflow(dg.DagsterInstance.get(), say)
