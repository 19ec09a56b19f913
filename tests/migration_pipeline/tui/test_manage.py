"""``workflow manage`` in Textual's headless pilot, on a real workflow waiting at its gates: keypresses decide them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
from textual.pilot import Pilot
from textual.widgets import Markdown, RichLog

from migration_pipeline.sandbox.state import SandboxState
from migration_pipeline.tui.app import WorkflowApp
from migration_pipeline.tui.approval import ApprovalForm
from migration_pipeline.tui.widgets import ShardTable
from migration_pipeline.workflow.driver import open_driver
from tests.migration_pipeline.workflow.helpers import Migration, build_migration


async def _until(pilot: Pilot[None], done: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return
        await pilot.pause(0.25)
    raise AssertionError(f"{what}: not within {timeout_s}s")


def _detail(app: WorkflowApp) -> str:
    return app.query_one("#detail", Markdown).source


def _log(app: WorkflowApp) -> str:
    return "\n".join(strip.text for strip in app.query_one("#log", RichLog).lines)


async def _drive(m: Migration) -> WorkflowApp:
    logs_index = f"{m.prefix}-logs"
    app = WorkflowApp(lambda say: open_driver(None, say), refresh_s=0.5)
    async with app.run_test(size=(200, 60)) as pilot:
        # The pending gate is selected, with its evidence: the plan, the target, the source's counts.
        await _until(pilot, lambda: app.selection.name == "metadata_approval"
                     and "What the evaluation plans" in _detail(app), "the metadata gate's evidence")
        evidence = _detail(app)
        assert "waiting for approval" in evidence and "What the evaluation plans" in evidence
        assert f"| index | {logs_index} | create | absent |" in evidence
        assert f"| {logs_index} | 2 | {m.counts[logs_index]} |" in evidence

        await pilot.press("a")
        await _until(pilot, lambda: isinstance(app.screen, ApprovalForm), "the approval form")
        await pilot.press(*"alice", "enter", *"CHG-42", "enter")
        await _until(pilot, lambda: app.status is not None and app.deciding is None
                     and app.status.phase("migrated_metadata").state == "done"
                     and app.status.pending_gates == ["migrated_metadata_approval"], "the metadata migration", 300)
        # The log pane follows the selected gate: its approval run's events.
        await _until(pilot, lambda: "approve_metadata metadata_approval" in _log(app), "the gate's run in the log")

        # The gate after the migration: what the migration created, now on the target.
        await pilot.press("down", "down")
        await _until(pilot, lambda: app.selection.name == "migrated_metadata_approval"
                     and f"| index | {logs_index} | created | present, aliases: none |" in _detail(app),
                     "the migrated metadata gate's evidence")
        await pilot.press("a")
        await _until(pilot, lambda: isinstance(app.screen, ApprovalForm), "the approval form")
        await pilot.press("enter", "enter")  # the default approver ($USER), no ticket
        await _until(pilot, lambda: app.status is not None and app.deciding is None
                     and app.status.pending_gates == ["backfill_approval"], "the snapshot registration", 300)

        # The last check before the backfill: shards, counts and the target's room.
        await pilot.press("down", "down")
        await _until(pilot, lambda: app.selection.name == "backfill_approval"
                     and "The backfill about to start" in _detail(app)
                     and f"| {logs_index} | 2 | {m.counts[logs_index]} |" in _detail(app),
                     "the backfill gate's evidence")
        await pilot.press("a")
        await _until(pilot, lambda: isinstance(app.screen, ApprovalForm), "the approval form")
        await pilot.press("enter", "enter")
        await _until(pilot, lambda: app.status is not None and app.deciding is None
                     and app.status.pending_gates == ["validation_approval"], "the backfill and the parity check", 600)

        # Each shard with its documents and documents/s; a shard's worker log follows it.
        table = app.query_one(ShardTable)
        await _until(pilot, lambda: table.row_count == 3 and all(
            table.get_cell(key, "docs/s") != "—" for key in (f"{logs_index}:0", f"{logs_index}:1")), "shard rates")
        assert table.get_cell(f"{logs_index}:0", "documents") != "—"
        table.focus()
        await _until(pilot, lambda: app.selection.shard is not None and ": done: " in _log(app), "a shard's log")
    return app


def test_manage_decides_gates_in_place(sandbox: SandboxState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = build_migration(sandbox, tmp_path, docs=90)
    m.run("submit", check=True)
    monkeypatch.setenv("DAGSTER_HOME", str(m.home))
    monkeypatch.setenv("USER", "tui-default")
    asyncio.run(_drive(m))
    with dg.DagsterInstance.from_config(str(m.home)) as instance:
        decided = {}
        for gate in ("metadata_approval", "migrated_metadata_approval", "backfill_approval"):
            record = instance.fetch_materializations(dg.AssetKey(gate), limit=1).records[0]
            assert record.asset_materialization is not None
            decided[gate] = {k: v.value for k, v in record.asset_materialization.metadata.items()}
    assert decided["metadata_approval"]["approved_by"] == "alice"
    assert decided["metadata_approval"]["ticket"] == "CHG-42"
    assert decided["migrated_metadata_approval"]["approved_by"] == "tui-default"
    assert decided["backfill_approval"]["approved_by"] == "tui-default"
    assert m.states()["backfill_parity"] == "done"
