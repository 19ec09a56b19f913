"""The ``workflow`` commands as the product's documentation writes them, run as a user would on a real workflow:
``configure sample --load``, ``configure edit``, ``status --live-status``, ``log PHASE``/``log all --follow``,
``output [PHASE]``, ``approve step STEP``."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import dagster as dg

from migration_pipeline.sandbox.state import SandboxState
from tests.migration_pipeline.workflow.helpers import BIN, Migration, build_migration
from workflow_model.store import sample_text


def _stream(m: Migration, *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    """``workflow ARGS`` in the background; its stdout lines collected as they come."""
    proc = subprocess.Popen([str(BIN / "workflow"), *args], env=m.env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def _until(lines: list[str], done: object, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(done) and done(lines):
            return
        time.sleep(0.5)
    raise AssertionError(f"not printed within {timeout_s}s:\n" + "\n".join(lines))


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(timeout=30)


def test_configure_sample_load(tmp_path: Path) -> None:
    home = tmp_path / "dagster"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("MIGRATION_WORKFLOW_CONFIG", None)

    def workflow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "workflow"), *args], env=env, capture_output=True, text=True, timeout=120)

    printed = workflow("configure", "sample")
    assert printed.returncode == 0 and printed.stdout == sample_text()
    assert not (home / "migration" / "workflow.yaml").exists()
    loaded = workflow("configure", "sample", "--load")
    assert loaded.returncode == 0, loaded.stderr
    active = home / "migration" / "workflow.yaml"
    assert active.read_text() == sample_text()
    assert workflow("configure", "view").returncode == 0
    # Loading the sample again over itself is fine; over an edited config it is refused without --force.
    assert workflow("configure", "sample", "--load").returncode == 0
    edited = sample_text().replace("max_connections: 10", "max_connections: 4")
    active.write_text(edited)
    refused = workflow("configure", "sample", "--load")
    assert refused.returncode == 2
    assert str(active) in refused.stderr and "--force" in refused.stderr
    assert active.read_text() == edited
    forced = workflow("configure", "sample", "--load", "--force")
    assert forced.returncode == 0, forced.stderr
    assert active.read_text() == sample_text()


def test_configure_edit_saves_only_a_valid_config(tmp_path: Path) -> None:
    home = tmp_path / "dagster"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("MIGRATION_WORKFLOW_CONFIG", None)
    active = home / "migration" / "workflow.yaml"

    def edit_with(script: str) -> subprocess.CompletedProcess[str]:
        editor = tmp_path / "editor.sh"
        editor.write_text(f"#!/bin/sh\n{script}\n")
        editor.chmod(0o755)
        return subprocess.run([str(BIN / "workflow"), "configure", "edit"], env={**env, "EDITOR": str(editor)},
                              input="n\n", capture_output=True, text=True, timeout=120)

    # With no active config the editor opens the sample; what it saves becomes the active config.
    saved = edit_with('sed -i "s/max_connections: 10/max_connections: 3/" "$1"')
    assert saved.returncode == 0, saved.stderr
    assert "max_connections: 3 " in active.read_text()
    # An edit that does not validate names the key and leaves the active config as it was.
    refused = edit_with('sed -i "s/max_connections: 3 /max_connections: lots /" "$1"')
    assert refused.returncode != 0
    assert "backfill.max_connections" in refused.stdout + refused.stderr
    assert "max_connections: 3 " in active.read_text()


def test_documented_commands_on_a_real_workflow(sandbox: SandboxState, tmp_path: Path) -> None:
    m = build_migration(sandbox, tmp_path, docs=240)
    logs_index, orders_index = f"{m.prefix}-logs", f"{m.prefix}-orders"
    m.run("submit", check=True)

    # The status names each gate as the STEP `approve step` takes.
    status = m.run("status", check=True).stdout
    gate_rows = [line for line in status.splitlines() if "approval gate" in line]
    assert [re.split(r"\s*│\s*", row)[1] for row in gate_rows] == [
        "metadata_approval", "migrated_metadata_approval", "backfill_approval", "cutover_approval",
        "validation_approval"]
    assert "workflow approve step metadata_approval --by NAME" in status

    # Outputs before any approval.
    assert m.run("output", check=True).stdout.split() == ["source_snapshot", "metadata_evaluation"]
    evaluation = m.run("output", "metadata_evaluation", check=True).stdout
    assert "objects planned" in evaluation and "Blocked (0)" in evaluation
    assert re.search(rf"\| index \| {re.escape(logs_index)} \| create \|", evaluation), evaluation
    snapshot = m.run("output", "source_snapshot", check=True).stdout
    assert f"{logs_index}:0" in snapshot and f"{orders_index}:0" in snapshot
    assert re.search(rf"\| {re.escape(logs_index)} \| 2 \| {m.counts[logs_index]} \|", snapshot), snapshot
    missing = m.run("output", "backfill_parity")
    assert missing.returncode == 1 and "no output yet" in missing.stderr

    # Phase logs: only that phase's steps.
    evaluation_log = m.run("log", "metadata_evaluation", "--limit", "500", check=True).stdout.splitlines()
    steps = {line.split()[2] for line in evaluation_log if len(line.split()) > 2}
    assert "metadata_evaluation" in steps and "source_snapshot" not in steps
    unknown = m.run("log", "snapshot_phase")
    assert unknown.returncode == 2 and "metadata_evaluation" in unknown.stderr and "shard_backfill[" in unknown.stderr
    assert m.run("output", "nowhere:7").returncode == 2

    # approve step: the metadata is migrated, the backfill gate waits.
    m.run("approve", "step", "metadata_approval", "--by", "alice", "--ticket", "CHG-1", check=True)
    assert m.states()["migrated_metadata_approval"] == "waiting for approval"
    m.run("approve", "step", "migrated_metadata_approval", "--by", "alice", check=True)
    assert m.states()["backfill_approval"] == "waiting for approval"
    registered = m.run("output", "snapshot_registration", check=True).stdout
    assert re.search(rf"\| {re.escape(logs_index)} \| 2 \| {m.counts[logs_index]} \|", registered), registered
    migrated = m.run("output", "migrated_metadata", check=True).stdout
    assert "approved by alice" in migrated and re.search(r"objects: .*\bcreated [1-9]", migrated), migrated
    assert re.search(rf"\| index \| {re.escape(logs_index)} \| create \| created \|", migrated), migrated

    # The backfill runs in the background while `output SHARD --follow` follows one shard until its run ends.
    shard = f"{logs_index}:1"
    approving = subprocess.Popen([str(BIN / "workflow"), "approve", "step", "backfill_approval", "--by", "bob"],
                                 env=m.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    followed = m.run("output", shard, "--follow", timeout=600)
    assert followed.returncode == 0, followed.stderr
    stdout, stderr = approving.communicate(timeout=600)
    assert approving.returncode == 0, stdout + stderr
    assert re.search(r": done: \d+ documents", followed.stdout), followed.stdout
    states = m.states()
    assert states["shard_backfill"] == "done" and states["backfill_parity"] == "done"
    assert states["validation_approval"] == "waiting for approval"
    with dg.DagsterInstance.from_config(str(m.home)) as instance:
        gate = instance.fetch_materializations(dg.AssetKey("backfill_approval"), limit=1).records[0]
        assert gate.asset_materialization is not None
        assert gate.asset_materialization.metadata["approved_by"].value == "bob"

    # The same log through the bracketed name; the shards' table; the parity table.
    assert m.run("output", f"shard_backfill[{shard}]", check=True).stdout == followed.stdout
    shards = m.run("output", "shard_backfill", check=True).stdout
    assert shard in shards and "docs/s" in shards
    parity = m.run("output", "backfill_parity", check=True).stdout
    assert re.search(rf"\| {re.escape(orders_index)} \| {re.escape(orders_index)} \| {m.counts[orders_index]} \| "
                     rf"{m.counts[orders_index]} \| yes \|", parity), parity
    shard_log = m.run("log", shard, "--limit", "500", check=True).stdout.splitlines()
    stepped = [line for line in shard_log if " shard_backfill" in line]
    assert stepped and all(f"shard_backfill[{shard}]" in line for line in stepped)
    assert not any(f"{logs_index}:0" in line for line in shard_log)

    # Followers run until interrupted.
    proc, lines = _stream(m, "log", "all", "--follow", "--limit", "500")
    try:
        _until(lines, lambda got: any("backfill_parity" in line for line in got))
        time.sleep(3)
        assert proc.poll() is None, "log --follow stopped by itself"
    finally:
        _stop(proc)
    proc, lines = _stream(m, "status", "--live-status")
    try:
        _until(lines, lambda got: any("backfill_parity" in line for line in got))
        assert any("migration workflow (" in line for line in lines)
        assert proc.poll() is None
    finally:
        _stop(proc)
