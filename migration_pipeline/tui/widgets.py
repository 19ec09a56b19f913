"""The screen's tables: phases (with gates) and shards, updated in place so the cursor stays where it is."""

from __future__ import annotations

from textual.widgets import DataTable

from migration_pipeline.workflow.outputs import ShardFacts, shard_rows
from migration_pipeline.workflow.status import WorkflowStatus
from workflow_model.steps import PHASES

STATE_STYLE = {"done": "green", "failed": "red", "rejected": "red", "running": "cyan",
               "waiting for approval": "bold yellow"}


def _styled(state: str) -> str:
    style = STATE_STYLE.get(state)
    return f"[{style}]{state}[/]" if style else state


class _KeyedTable(DataTable[str]):
    """A table whose rows are keyed by what they show (a step, a shard)."""

    @property
    def selected(self) -> str | None:
        """The key of the row under the cursor."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None


class PhaseTable(_KeyedTable):
    """One row per step (phase or approval gate), keyed by its name."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.border_title = "steps"
        self.add_column("step", key="step")
        self.add_column("kind", key="kind")
        self.add_column("state", key="state")
        self.add_column("detail", key="detail")
        for step in PHASES:
            self.add_row(step.value, "", "…", "", key=step.value)

    def show(self, status: WorkflowStatus) -> None:
        """The status's state and detail of each step."""
        for phase in status.phases:
            self.update_cell(phase.name, "kind", "gate" if phase.kind == "gate" else "phase", update_width=True)
            self.update_cell(phase.name, "state", _styled(phase.state), update_width=True)
            self.update_cell(phase.name, "detail", phase.detail, update_width=True)

    def select_step(self, name: str) -> None:
        """Put the cursor on that step."""
        self.move_cursor(row=self.get_row_index(name))


class ShardTable(_KeyedTable):
    """One row per shard: state, documents, documents/s."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.border_title = "shards"
        for col in ("shard", "state", "documents", "docs/s"):
            self.add_column(col, key=col)

    def show(self, shards: list[ShardFacts]) -> None:
        """Add new shards, update the others."""
        present = {str(row.value) for row in self.rows}
        for key, state, docs, rate in shard_rows(shards):
            if key in present:
                self.update_cell(key, "state", _styled(state), update_width=True)
                self.update_cell(key, "documents", docs, update_width=True)
                self.update_cell(key, "docs/s", rate, update_width=True)
            else:
                self.add_row(key, _styled(state), docs, rate, key=key)
        for gone in present - {s.key for s in shards}:
            self.remove_row(gone)
        self.border_subtitle = f"{sum(1 for s in shards if s.state == 'done')}/{len(shards)} done"
