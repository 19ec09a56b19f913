"""``console replay start|status|stop`` against the session sandbox: brokers and target taken from the running
sandbox, a replayer in the background replays what a real proxy captured, status --json shows it caught up."""

from __future__ import annotations

import json
import sys
from typing import Any

from opensearchpy import OpenSearch
from typer.testing import CliRunner

from migration_pipeline.cli.console import app
from migration_pipeline.cli.replay import state_dir
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.capture.conftest import create_topic
from tests.workers.replay.test_group import capture_writes, caught_up, explain, leftovers, wait_for
from workers.replay.group import ReplayerGroup
from workflow_model import active_config_path

runner = CliRunner()


def test_start_status_and_stop_a_replayer_group(sandbox: SandboxState) -> None:
    assert sandbox.kafka is not None
    topic, index, group = create_topic(sandbox.kafka.bootstrap, partitions=2), unique("cli"), unique("cli-group")
    written = capture_writes(sandbox, topic, index, clients=2, writes=4)
    # Brokers and target from the running sandbox (no --brokers, no --target).
    started = runner.invoke(app, ["replay", "start", "--group-id", group, "--topic", topic, "--", "--max-speed"])
    assert started.exit_code == 0, started.output
    assert "started 1 replayer(s)" in started.output
    folder = state_dir(group)
    assert folder == active_config_path().parent / "replay" / group and folder.is_dir()
    try:
        _replayed_then_stopped(sandbox, topic, index, group, written)
    except AssertionError:
        print(explain(ReplayerGroup(folder, group)), file=sys.stderr)
        raise
    finally:
        ReplayerGroup(folder, group).stop(timeout_s=10)
    assert leftovers(str(folder)) == []


def _replayed_then_stopped(sandbox: SandboxState, topic: str, index: str, group: str, written: int) -> None:

    def status() -> dict[str, Any]:
        result = runner.invoke(app, ["replay", "status", "--group-id", group, "--topic", topic, "--json"])
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    report = wait_for("caught up", lambda: caught_up(status(), written))
    [member] = report["members"]
    assert member["alive"] and member["status"]["topic"] == topic
    assert "--target-endpoint" in member["args"] and sandbox.engines["target"].url in member["args"]
    assert report["lag"]["group"] == group and all(p["lag"] == 0 for p in report["lag"]["partitions"])
    target = OpenSearch(hosts=[sandbox.engines["target"].url])
    target.indices.refresh(index=index)
    assert target.count(index=index)["count"] == written

    table = runner.invoke(app, ["replay", "status", "--group-id", group, "--topic", topic])
    assert table.exit_code == 0 and member["name"] in table.stdout and "totals: 1/1 members running" in table.stdout

    stopped = runner.invoke(app, ["replay", "stop", "--group-id", group])
    assert stopped.exit_code == 0, stopped.output
    assert f"member {member['name']} (pid {member['pid']}): stopped" in stopped.stdout
    again = runner.invoke(app, ["replay", "status", "--group-id", group, "--topic", topic, "--json"])
    assert json.loads(again.stdout)["members"] == []


def test_flags_this_command_sets_are_refused_after_the_separator(sandbox: SandboxState) -> None:
    result = runner.invoke(app, ["replay", "start", "--group-id", unique("g"), "--", "--kafka-topic", "x"])
    assert result.exit_code == 2 and "--kafka-topic after --: use console replay's --topic instead" in result.output
