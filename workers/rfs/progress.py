"""Progress of a shard backfill: a rich bar for a person, periodic log lines for a worker."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import TaskID

log = logging.getLogger("workers.rfs")


@dataclass
class Counters:
    """Running totals of a shard backfill (or of a run of several shards)."""

    docs: int = 0
    bytes: int = 0
    retries: int = 0
    dead_letters: int = 0
    allowed_failures: int = 0
    dead_by_type: dict[str, int] = field(default_factory=dict)
    retry_reasons: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        """Time since the start."""
        return time.monotonic() - self.started

    def rates(self) -> tuple[float, float]:
        """(documents/s, MB/s) since the start."""
        s = max(self.seconds, 1e-9)
        return self.docs / s, self.bytes / s / 1e6


class Progress:
    """Reports counters; subclasses decide how."""

    def start(self, label: str, total_docs: int | None) -> None:
        """Begin (``total_docs`` is an upper estimate: nested children are counted)."""

    def extend(self, label: str, total_docs: int | None) -> None:
        """Another shard (``label``, up to ``total_docs`` documents) joins the run; counters cover them all."""

    def update(self, counters: Counters) -> None:
        """New totals."""

    def finish(self, counters: Counters) -> None:
        """Done."""


class LogProgress(Progress):
    """A log line every ``interval_s``: documents/s, MB/s, retries, dead letters."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self.label = ""
        self.next_at = 0.0

    def start(self, label: str, total_docs: int | None) -> None:
        self.label = label
        self.next_at = time.monotonic() + self.interval_s
        self.extend(label, total_docs)

    def extend(self, label: str, total_docs: int | None) -> None:
        log.info("%s: starting (up to %s documents)", label, total_docs if total_docs is not None else "?")

    def update(self, counters: Counters) -> None:
        if time.monotonic() >= self.next_at:
            self.next_at = time.monotonic() + self.interval_s
            self._line(counters, "progress")

    def finish(self, counters: Counters) -> None:
        self._line(counters, "done")

    def _line(self, c: Counters, what: str) -> None:
        docs_s, mb_s = c.rates()
        log.info("%s: %s: %d documents, %.1f MB, %.0f docs/s, %.1f MB/s, %d retries, %d dead letters",
                 self.label, what, c.docs, c.bytes / 1e6, docs_s, mb_s, c.retries, c.dead_letters)


class RichProgress(Progress):
    """A progress bar on the terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        # On stderr, with the log lines: stdout is the --json result's alone.
        self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=False,
                       console=Console(stderr=True))
        self.task: TaskID | None = None

    def start(self, label: str, total_docs: int | None) -> None:
        self.bar.start()
        self.task = self.bar.add_task(label, total=total_docs, rate="")

    def extend(self, label: str, total_docs: int | None) -> None:
        assert self.task is not None
        total = next(t.total for t in self.bar.tasks if t.id == self.task)
        if total is not None and total_docs is not None:
            self.bar.update(self.task, total=total + total_docs)

    def update(self, counters: Counters) -> None:
        docs_s, mb_s = counters.rates()
        assert self.task is not None
        self.bar.update(self.task, completed=counters.docs,
                        rate=f"{docs_s:.0f} docs/s {mb_s:.1f} MB/s retries {counters.retries} "
                             f"dead {counters.dead_letters}")

    def finish(self, counters: Counters) -> None:
        self.update(counters)
        self.bar.stop()
