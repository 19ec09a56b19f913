"""What one refresh of the screen reads from the driver (on a worker thread): status, shards, the selected
phase's evidence or output, and the new lines of its log."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from migration_pipeline.workflow.driver import Driver
from migration_pipeline.workflow.evidence import gather, to_markdown
from migration_pipeline.workflow.outputs import ShardFacts, render_output, shard_rows
from migration_pipeline.workflow.phases import PhaseRef
from migration_pipeline.workflow.status import WorkflowStatus
from workflow_model.steps import Step, is_gate

LOG_LIMIT = 500


@dataclass(frozen=True)
class LogFollow:
    """Where the log pane is in the selected phase's log: event ids seen, or a shard log's cursor."""

    selection: PhaseRef
    seen: frozenset[str] = frozenset()
    cursor: int = 0


@dataclass
class ViewData:
    """One refresh's worth of facts, applied to the widgets on the UI thread."""

    status: WorkflowStatus
    shards: list[ShardFacts]
    selection: PhaseRef
    detail: str
    new_lines: list[str] = field(default_factory=list)
    follow: LogFollow | None = None


def _shard_markdown(shards: list[ShardFacts], key: str | None) -> str:
    chosen = [s for s in shards if key is None or s.key == key]
    lines = ["| shard | state | documents | docs/s |", "|---|---|---|---|"]
    lines += [f"| {k} | {state} | {docs} | {rate} |" for k, state, docs, rate in shard_rows(chosen)]
    title = f"## shard {key}" if key else f"## {Step.SHARD_BACKFILL}: {len(shards)} shards"
    note = "\n\nThe log below is the shard worker's own (`workflow output " + key + "`)." if key else ""
    return f"{title}\n\n" + "\n".join(lines) + note + "\n"


def detail_markdown(driver: Driver, status: WorkflowStatus, shards: list[ShardFacts], selection: PhaseRef) -> str:
    """A gate's evidence, a shard's facts, or the phase's output."""
    if is_gate(selection.name):
        return to_markdown(gather(driver, selection.name, status.phase(selection.name).state))
    if selection.name == Step.SHARD_BACKFILL:
        return _shard_markdown(shards, selection.shard)
    text = render_output(selection.name, driver.phase_metadata(selection.name))
    return f"## {selection.name}: {status.phase(selection.name).state}\n\n" + (text or "no output yet\n")


def new_log_lines(driver: Driver, follow: LogFollow) -> tuple[list[str], LogFollow]:
    """Lines of the selection's log not shown yet: a shard's worker log, or the phase's run events."""
    if follow.selection.shard is not None:
        chunk = driver.shard_log(follow.selection.shard, follow.cursor)
        lines, seen = list(chunk.lines), follow.seen
        if chunk.note and not lines and "note" not in seen:  # why there is no log yet, once
            lines, seen = [chunk.note], seen | {"note"}
        return lines, replace(follow, cursor=chunk.cursor, seen=seen)
    fresh = [(i, line) for i, line in driver.phase_log_lines(follow.selection, LOG_LIMIT) if i not in follow.seen]
    return [line for _, line in fresh], replace(follow, seen=follow.seen | {i for i, _ in fresh})


def fetch(driver: Driver, selection: PhaseRef, follow: LogFollow) -> ViewData:
    """Everything the screen shows, read once."""
    status = driver.status()
    shards = driver.shards()
    detail = detail_markdown(driver, status, shards, selection)
    if follow.selection != selection:
        follow = LogFollow(selection)
    lines, follow = new_log_lines(driver, follow)
    return ViewData(status, shards, selection, detail, lines, follow)
