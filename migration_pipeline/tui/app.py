"""``workflow manage``: steps and gates, the evidence of the selected gate (approve/reject in place), the shards,
and a log pane that follows the selected step or shard. Every driver call runs on a worker thread."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Markdown, RichLog, Static

from migration_pipeline.tui.approval import ApprovalForm, Decision
from migration_pipeline.tui.data import LogFollow, ViewData, fetch
from migration_pipeline.tui.styles import CSS
from migration_pipeline.tui.widgets import PhaseTable, ShardTable
from migration_pipeline.workflow.driver import Driver
from migration_pipeline.workflow.phases import PhaseRef
from migration_pipeline.workflow.status import WorkflowStatus
from workers.common.errors import MigrationError
from workflow_model.steps import PHASES, Step, is_gate

DriverFactory = Callable[[Callable[[str], None]], Driver]


class WorkflowApp(App[None]):
    """The migration workflow at a glance, with its gates decided in place."""

    TITLE = "migration workflow"
    CSS = CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "decide('approve')", "Approve gate"),
        Binding("r", "decide('reject')", "Reject gate"),
        Binding("g", "refresh_now", "Refresh"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, open_driver: DriverFactory, refresh_s: float = 2.0) -> None:
        super().__init__()
        self._open_driver = open_driver
        self._workflow: Driver | None = None
        self._workflow_lock = threading.Lock()
        self.refresh_s = refresh_s
        self.selection = PhaseRef(PHASES[0].value)
        self.follow = LogFollow(self.selection)
        self.status: WorkflowStatus | None = None
        self.deciding: str | None = None  # the gate whose decision is being recorded
        self._refreshing = False
        self._placed_cursor = False
        self._detail = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("connecting …", id="summary")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield PhaseTable(id="phases")
                yield ShardTable(id="shards")
            with Vertical(id="right"):
                with VerticalScroll(id="detail-box"):
                    yield Markdown("", id="detail")
                yield RichLog(id="log", wrap=True, highlight=False, markup=False, max_lines=5000)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#log", RichLog).border_title = "log"
        self.query_one("#detail-box").border_title = "evidence / output"
        self.query_one(PhaseTable).focus()
        self.set_interval(self.refresh_s, self.action_refresh_now)
        self.action_refresh_now()

    # ---- the driver, on worker threads

    def _post(self, callback: Callable[..., object], *args: object, **kwargs: object) -> None:
        """Run ``callback`` on the UI thread, from any thread; nothing once the app has stopped."""
        if threading.get_ident() == self._thread_id:
            callback(*args, **kwargs)
            return
        with contextlib.suppress(RuntimeError):  # the app is closing; a decision being recorded runs to its end
            self.call_from_thread(callback, *args, **kwargs)

    def say(self, message: str) -> None:
        """The driver's progress messages (from any thread) as notifications."""
        self._post(self.notify, message, timeout=6)

    def workflow(self) -> Driver:
        """The driver, opened on first use (on a worker thread: opening loads the Dagster definitions)."""
        with self._workflow_lock:
            if self._workflow is None:
                self._workflow = self._open_driver(self.say)
            return self._workflow

    def action_refresh_now(self) -> None:
        """Read the workflow again (skipped while a refresh is still running)."""
        if not self._refreshing:
            self._refreshing = True
            self._refresh_worker(self.selection, self.follow)

    @work(thread=True, group="refresh")
    def _refresh_worker(self, selection: PhaseRef, follow: LogFollow) -> None:
        try:
            data = fetch(self.workflow(), selection, follow)
        except Exception as exc:  # shown, and the next refresh tries again: the screen must outlive a hiccup
            self._post(self._failed, str(exc) if isinstance(exc, MigrationError) else f"{type(exc).__name__}: {exc}")
            return
        finally:
            self._refreshing = False
        self._post(self._apply, data)

    @work(thread=True, group="decide")
    def _decide_worker(self, decision: Decision) -> None:
        try:
            self.workflow().approve(decision.gate, decision.approver, decision.ticket, decision.decision)
            message, severity = f"{decision.gate}: {decision.decision} recorded for {decision.approver}", "information"
        except Exception as exc:  # a failed phase after the decision, an unreachable webserver: shown, not fatal
            message, severity = f"{decision.gate}: {exc}", "error"
        finally:
            self.deciding = None
        self._post(self.notify, message, severity=severity, timeout=10)
        self._post(self.action_refresh_now)

    # ---- applying what was read (UI thread)

    def _failed(self, message: str) -> None:
        self.query_one("#summary", Static).update(f"[red]{message}[/]")

    def _apply(self, data: ViewData) -> None:
        self.status = data.status
        self.query_one(PhaseTable).show(data.status)
        self.query_one(ShardTable).show(data.shards)
        self.query_one("#summary", Static).update(self._summary(data.status))
        if not self._placed_cursor:
            self._placed_cursor = True
            if data.status.pending_gates:
                self.query_one(PhaseTable).select_step(data.status.pending_gates[0])
        if data.selection != self.selection:
            return  # the selection moved while reading: the next refresh reads the new one
        if data.detail != self._detail:
            self._detail = data.detail
            self.query_one("#detail", Markdown).update(data.detail)
        if data.follow is not None:
            self.follow = data.follow
        log = self.query_one("#log", RichLog)
        for line in data.new_lines:
            log.write(line)

    def _summary(self, status: WorkflowStatus) -> str:
        s = status.shards
        parts = [f"shards {s.get('done', 0)} done, {s.get('running', 0)} running, {s.get('failed', 0)} failed, "
                 f"{s.get('pending', 0)} pending · documents {status.documents:,}"]
        if self.deciding:
            parts.append(f"[cyan]recording the decision on {self.deciding} …[/]")
        elif status.pending_gates:
            parts.append(f"[bold yellow]waiting for {', '.join(status.pending_gates)}[/]: a approve · r reject")
        if status.rejected_gates:
            parts.append(f"[red]rejected: {', '.join(status.rejected_gates)}[/]")
        return " · ".join(parts)

    # ---- selection

    def _select(self, selection: PhaseRef) -> None:
        if selection == self.selection:
            return
        self.selection = selection
        self._detail = f"## {selection.label}\n\nreading …\n"
        self.query_one("#detail", Markdown).update(self._detail)
        self.query_one("#log", RichLog).clear()
        self.query_one("#log", RichLog).border_title = f"log: {selection.label}"
        self.action_refresh_now()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if isinstance(event.data_table, PhaseTable) and event.row_key.value is not None:
            self._select(PhaseRef(str(event.row_key.value)))
        elif isinstance(event.data_table, ShardTable) and event.data_table.has_focus and event.row_key.value:
            self._select(PhaseRef(Step.SHARD_BACKFILL.value, str(event.row_key.value)))

    def on_descendant_focus(self, event: object) -> None:
        shards, phases = self.query_one(ShardTable), self.query_one(PhaseTable)
        if shards.has_focus and shards.selected:
            self._select(PhaseRef(Step.SHARD_BACKFILL.value, shards.selected))
        elif phases.has_focus and phases.selected:
            self._select(PhaseRef(phases.selected))

    # ---- decisions

    def _gate_to_decide(self) -> str | None:
        pending = self.status.pending_gates if self.status else []
        if is_gate(self.selection.name) and self.selection.name in pending:
            return self.selection.name
        return pending[0] if len(pending) == 1 else None

    def action_decide(self, decision: str) -> None:
        """Ask approver and ticket, then record the decision on the selected (or the only) pending gate."""
        if self.deciding:
            self.notify(f"still recording the decision on {self.deciding}", severity="warning")
            return
        gate = self._gate_to_decide()
        if gate is None:
            pending = self.status.pending_gates if self.status else []
            self.notify("no gate is waiting for a decision" if not pending
                        else f"select the gate to decide: {', '.join(pending)}", severity="warning")
            return
        default = os.environ.get("USER") or "unknown"

        def done(result: Decision | None) -> None:
            if result is not None:
                self.deciding = result.gate
                self._decide_worker(result)

        self.push_screen(ApprovalForm(gate, decision, default), done)
