"""How the ``workflow`` CLI shows things: the status and shard tables, Markdown output, a followed worker log."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.markdown import Markdown
from rich.table import Table

from migration_pipeline.cli.common import out
from migration_pipeline.workflow.driver import Driver
from migration_pipeline.workflow.outputs import ShardFacts, shard_rows
from migration_pipeline.workflow.status import WorkflowStatus
from workflow_model.steps import Step

COLORS = {"done": "green", "failed": "red", "rejected": "red", "running": "cyan", "waiting for approval": "yellow"}
ENDED = ("done", "failed")


def status_table(status: WorkflowStatus, title: str) -> Table:
    """Each step: its name (for a gate, the STEP of `workflow approve step STEP`), kind, state and detail."""
    table = Table(title=title)
    table.add_column("step", no_wrap=True)  # whole, so that it can be copied into `workflow approve step`
    table.add_column("kind", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("detail")
    for phase in status.phases:
        color = COLORS.get(phase.state, "white")
        kind = "approval gate" if phase.kind == "gate" else phase.kind
        table.add_row(phase.name, kind, f"[{color}]{phase.state}[/]", phase.detail)
    return table


def shard_table(shards: list[ShardFacts]) -> Table:
    """One row per shard: state, documents, documents/s."""
    table = Table(title=Step.SHARD_BACKFILL.value)
    for col in ("shard", "state", "documents", "docs/s"):
        table.add_column(col, no_wrap=True, justify="right" if col in ("documents", "docs/s") else "left")
    for key, state, docs, rate in shard_rows(shards):
        table.add_row(key, f"[{COLORS.get(state, 'white')}]{state}[/]", docs, rate)
    return table


def print_markdown(text: str) -> None:
    """Rendered on a terminal; as is into a pipe or a file (Markdown reads well, and greps)."""
    if out.is_terminal:
        out.print(Markdown(text))
    else:
        out.print(text, highlight=False, markup=False, end="")


def follow_shard_log(driver: Driver, key: str, follow: bool, say: Callable[[str], None],
                     poll_s: float = 1.0) -> bool:
    """Print the shard's worker log; with ``follow`` until the shard's run ends. False when there is none."""
    cursor, printed, noted = 0, False, False
    while True:
        # The state first: lines written before the run ended are then read below, before stopping.
        found = driver.shards([key]) if follow else []
        state = found[0].state if found else "pending"
        chunk = driver.shard_log(key, cursor)
        for line in chunk.lines:
            out.print(line, highlight=False, markup=False)
        printed = printed or bool(chunk.lines)
        cursor = chunk.cursor
        if chunk.note and not printed and not noted:
            say(chunk.note)
            noted = True
        if not follow or state in ENDED:
            return printed or not chunk.note
        time.sleep(poll_s)
