"""What the in-process driver tells its caller while it runs: finished steps and the backfill's shards.

The ``workflow`` CLI prints a line per shard (``SayObserver``); the demo draws a progress bar instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ShardRunEnd:
    """One shard run's end: its materialization metadata (with the worker's ``ShardOutcome`` as ``status``), or
    the error that stopped it."""

    key: str
    metadata: dict[str, Any]
    error: str | None = None


class WorkflowObserver:
    """Every hook does nothing; a caller overrides what it shows. Shard hooks are called from the shard threads."""

    def step_finished(self, step: str, seconds: float, metadata: dict[str, Any]) -> None:
        """A step (an asset) of a run finished, with its wall time and materialization metadata."""

    def backfill_started(self, keys: list[str], parallel: int) -> None:
        """The driver is about to run these shards, ``parallel`` at a time."""

    def shard_started(self, key: str) -> None:
        """A shard's run starts."""

    def shard_finished(self, outcome: ShardRunEnd) -> None:
        """A shard's run ended."""

    def backfill_finished(self) -> None:
        """Every shard of the batch ended (called also when the batch stops on an error)."""


class SayObserver(WorkflowObserver):
    """One line per finished shard through ``say``."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.total = 0
        self.ended = 0

    def backfill_started(self, keys: list[str], parallel: int) -> None:
        self.total, self.ended = len(keys), 0
        self.say(f"backfill: {len(keys)} shard(s), {parallel} at a time")

    def shard_finished(self, outcome: ShardRunEnd) -> None:
        self.ended += 1
        where = f"shard {outcome.key} ({self.ended}/{self.total})"
        if outcome.error:
            self.say(f"{where} FAILED: {outcome.error}")
        else:
            self.say(f"{where}: {outcome.metadata.get('status')}, {outcome.metadata.get('documents')} documents")
