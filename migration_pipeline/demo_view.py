"""What the demo shows on the terminal: a line per finished phase, a live bar for the backfill, details in a log.

Details (the sandbox's start-up steps, the driver's own lines) go to the demo's log file, and to the terminal too
with ``--verbose``; the latest one is shown on a transient spinner line meanwhile.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.status import Status
from rich.text import Text

from migration_pipeline.workflow.observer import ShardRunEnd, WorkflowObserver
from workflow_model.steps import GATES, Step, is_gate

# Step (asset) names as a person reads them; steps not listed (asset checks, the shards) are not shown as phases.
PHASE_LABELS: dict[str, str] = {
    Step.SOURCE_SNAPSHOT.value: "snapshot",
    Step.METADATA_EVALUATION.value: "metadata evaluation",
    Step.MIGRATED_METADATA.value: "metadata migration",
    Step.SNAPSHOT_REGISTRATION.value: "snapshot registration",
    Step.BACKFILL_PARITY.value: "parity check",
    Step.REPLAY_CATCHUP.value: "replay catch-up",
    Step.VALIDATION_REPORT.value: "validation report",
    Step.CUTOVER.value: "traffic switch",
    Step.MIGRATION_CLEANUP.value: "cleanup",
    **{g.name: g.name.replace("_", " ") for g in GATES},
}


# Wide enough for every phase's label, so the durations line up.
_LABEL_WIDTH = max(20, *(len(label) for label in PHASE_LABELS.values()))


def phase_detail(step: str, meta: dict[str, Any]) -> str:
    """One phrase about what a finished step did, from its materialization metadata."""
    if step == Step.SOURCE_SNAPSHOT:
        return f"{meta.get('snapshot')}: {meta.get('shards')} shards, {meta.get('source_documents', 0):,} documents"
    if step == Step.METADATA_EVALUATION:
        return f"{meta.get('objects')} objects planned, {meta.get('blocked', 0)} blocked"
    if is_gate(step):
        return f"{meta.get('decision')}d by {meta.get('approved_by')}"
    if step == Step.MIGRATED_METADATA:
        results = {k.removeprefix("result_"): v for k, v in meta.items() if k.startswith("result_") and v}
        done = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in results.items()) or "nothing to create"
        return f"{done}; {meta['gate_summary']}" if meta.get("gate_summary") else done
    if step == Step.BACKFILL_PARITY:
        mismatched = meta.get("mismatched") or []
        indices = int(meta.get("indices") or 0)
        return f"{indices - len(mismatched)}/{indices} indices match"
    if step == Step.REPLAY_CATCHUP:
        if meta.get("replay") == "off":
            return "off (no capture configured)"
        return (f"{meta.get('transactions', 0):,} transactions, lag {meta.get('lag_records', 0)} records, "
                f"{meta.get('dead_letters', 0)} dead letters")
    if step == Step.VALIDATION_REPORT:
        failed = [name for name, passed in (meta.get("checks") or {}).items() if not passed]
        if meta.get("clean"):
            verdict = "clean: contents match"
        elif failed and set(failed) <= {"queries", "metadata"}:
            verdict = f"contents match; warnings: {', '.join(failed)}"
        else:
            verdict = f"DIFFERENCES: {meta.get('differing_documents', 0)} documents listed"
        return f"{verdict} ({meta.get('report_html')})"
    if step == Step.CUTOVER:
        if meta.get("switch") == "off":
            return "off (no proxies to switch)"
        return f"traffic on the {meta.get('side')}; writes held {float(meta.get('hold_s') or 0):.2f}s"
    if step in (Step.SNAPSHOT_REGISTRATION, Step.MIGRATION_CLEANUP):
        return str(meta.get("gate_summary") or meta.get("summary") or "")
    return ""


class _DocsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} docs/s" if speed else "- docs/s", style="progress.data.speed")


class DemoView(WorkflowObserver):
    """The demo's terminal: phase lines, a spinner for details, the backfill's bar (fed by ``written``)."""

    def __init__(self, console: Console, log: TextIO | None = None, verbose: bool = False) -> None:
        self.console = console
        self.log = log or io.StringIO()  # the demo gives its log file once it knows where it goes
        self.verbose = verbose
        self.written: Callable[[str], int] | None = None  # documents the workers recorded for a snapshot
        self.snapshot = ""
        self.total_documents = 0
        self.backfill_seconds = 0.0
        self.worker_seconds = 0.0
        self.shard_documents = 0
        self.failed: list[str] = []
        self._lock = threading.Lock()
        self._status: Status | None = None
        self._progress: Progress | None = None
        self._task = TaskID(0)
        self._running = self._done = self._shards = 0
        self._began = 0.0
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # -- lines -------------------------------------------------------------------------------------------------

    def detail(self, message: str) -> None:
        """A detail line: to the log file, on the spinner, and printed with --verbose."""
        self.log.write(f"{time.strftime('%H:%M:%S')} {message}\n")
        self.log.flush()
        if self.verbose:
            self.console.print(f"  [dim]{message}[/]", highlight=False)
        if self._status is not None:
            self._status.update(f"[dim]{message}[/]")

    def phase(self, label: str, seconds: float, detail: str = "", ok: bool = True) -> None:
        """The line of a finished phase."""
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        self.console.print(f"{mark} {label:<{_LABEL_WIDTH}} {seconds:>6.1f} s  {detail}", highlight=False)
        self.log.write(f"{time.strftime('%H:%M:%S')} phase {label}: {seconds:.1f} s {detail}\n")

    def start_spinner(self) -> None:
        """Show the latest detail on a transient line until the next bar or the end."""
        if self._status is None and self.console.is_terminal:
            self._status = self.console.status("[dim]starting[/]")
            self._status.start()

    def stop_spinner(self) -> None:
        """Remove the spinner line."""
        if self._status is not None:
            self._status.stop()
            self._status = None

    # -- the driver's hooks ------------------------------------------------------------------------------------

    def step_finished(self, step: str, seconds: float, metadata: dict[str, Any]) -> None:
        if step == Step.SOURCE_SNAPSHOT:
            self.snapshot = str(metadata.get("snapshot") or "")
            self.total_documents = int(metadata.get("source_documents") or 0)
        if step in PHASE_LABELS:
            self.phase(PHASE_LABELS[step], seconds, phase_detail(step, metadata))

    def backfill_started(self, keys: list[str], parallel: int) -> None:
        self.stop_spinner()
        self._shards, self._running, self._done = len(keys), 0, 0
        self._began = time.monotonic()
        self.detail(f"backfill: {len(keys)} shards, {parallel} at a time")
        self._progress = Progress(
            TextColumn("  backfill"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} docs"), _DocsPerSecond(),
            TextColumn("ETA"), TimeRemainingColumn(),
            TextColumn("shards {task.fields[done]}/{task.fields[shards]} done, {task.fields[running]} running"),
            console=self.console, transient=True, speed_estimate_period=10)
        self._task = self._progress.add_task("backfill", total=self.total_documents or None, done=0,
                                             shards=self._shards, running=0)
        self._progress.start()
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll, name="demo-progress", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            if self.written is None or not self.snapshot or self._progress is None:
                continue
            try:
                written = self.written(self.snapshot)
            except Exception as exc:  # the bar is a view: a failed read of the target waits for the next one
                self.log.write(f"progress: cannot read the coordination index: {exc}\n")
                continue
            self._progress.update(self._task, completed=written)

    def shard_started(self, key: str) -> None:
        with self._lock:
            self._running += 1
            self._update_shards()
        self.log.write(f"{time.strftime('%H:%M:%S')} shard {key}: started\n")

    def shard_finished(self, outcome: ShardRunEnd) -> None:
        meta = outcome.metadata
        with self._lock:
            self._running -= 1
            self._done += 1
            self.worker_seconds += float(meta.get("duration_s") or 0.0)
            self.shard_documents += int(meta.get("documents") or 0)
            if outcome.error:
                self.failed.append(outcome.key)
            self._update_shards()
        if outcome.error:
            self.console.print(f"[red]✗ shard {outcome.key}[/]: {outcome.error}", highlight=False)
        self.log.write(f"{time.strftime('%H:%M:%S')} shard {outcome.key}: "
                       f"{outcome.error or meta.get('status')}, {meta.get('documents', 0)} documents in "
                       f"{meta.get('duration_s', 0)} s\n")

    def _update_shards(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, done=self._done, running=self._running)

    def backfill_finished(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
        self.backfill_seconds = time.monotonic() - self._began
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        rate = self.shard_documents / self.backfill_seconds if self.backfill_seconds else 0.0
        self.phase("backfill", self.backfill_seconds,
                   f"{self.shard_documents:,} documents, {self._done - len(self.failed)}/{self._shards} shards, "
                   f"{rate:,.0f} docs/s (the shards' own worker time: {self.worker_seconds:.1f} s in all)",
                   ok=not self.failed)
        self.start_spinner()
