"""One interface over the two ways to drive the workflow: in-process, or a Dagster webserver's GraphQL API."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from migration_pipeline.workflow.status import WorkflowStatus

if TYPE_CHECKING:
    from migration_pipeline.workflow.outputs import LogChunk, ShardFacts
    from migration_pipeline.workflow.phases import PhaseRef


class Driver(Protocol):
    """What the ``workflow`` commands need."""

    def submit(self, new_snapshot: bool = False) -> None:
        """Start the workflow, or resume what is left of it."""

    def approve(self, gate: str, approved_by: str, ticket: str | None, decision: str) -> None:
        """Record a decision on a gate."""

    def status(self) -> WorkflowStatus:
        """The workflow's status."""

    def run_job(self, job: str) -> None:
        """Run (in-process) or launch (webserver) a job that takes no config, such as ``backout``."""

    def log_lines(self, limit: int) -> list[tuple[str, str]]:
        """(unique id, line) of recent events, oldest first."""

    def reset(self, clean_target: bool = True) -> str:
        """Forget the recorded phases (and remove the workflow's state on the clusters); what was removed."""

    def shards(self, keys: list[str] | None = None) -> list[ShardFacts]:
        """Each shard (or those of ``keys``): state, documents, documents/s."""

    def phase_metadata(self, phase: str) -> dict[str, Any]:
        """The metadata of the phase's last materialization ({} when it has none)."""

    def phase_log_lines(self, phase: PhaseRef, limit: int) -> list[tuple[str, str]]:
        """(unique id, line) of the phase's (or one shard's) run events, oldest first."""

    def shard_log(self, key: str, cursor: int = 0) -> LogChunk:
        """New lines of a shard worker's log since ``cursor``."""


def open_driver(dagster_url: str | None, say: Callable[[str], None]) -> Driver:
    """The GraphQL driver for ``dagster_url``, else the in-process one on ``$DAGSTER_HOME``."""
    if dagster_url:
        from migration_pipeline.workflow.remote import RemoteWorkflow

        return RemoteWorkflow(dagster_url, say)
    from migration_pipeline.workflow.instance import open_local_instance
    from migration_pipeline.workflow.local import LocalWorkflow

    return LocalWorkflow(open_local_instance(), say)
