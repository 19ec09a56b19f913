"""A local replayer group against the session sandbox: two detached members share the topic's partitions, replay
everything a real capture proxy recorded, commit it, scale down to one and stop without leaving a process behind."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.capture.conftest import RunningProxy, create_topic, proxy_options, transactions
from workers.common.errors import ConfigurationError
from workers.replay.group import Member, ReplayerGroup, ReplayerGroupError, log_tail


def capture_writes(sandbox: SandboxState, topic: str, index: str, clients: int = 4, writes: int = 5) -> int:
    """``clients`` connections each read once, then write ``writes`` documents through a real proxy onto ``topic``;
    the number of documents written."""
    assert sandbox.kafka is not None
    proxy = RunningProxy(proxy_options(sandbox.engines["source"].url, sandbox.kafka.bootstrap, topic))
    try:
        for c in range(clients):
            client = OpenSearch(hosts=[proxy.url])
            # A read first: the replayer skips a partition's first transaction as "before its start" when the
            # proxy received it in an earlier millisecond than Kafka stamped its first record (workers/replay/feed.py
            # decides after the transaction is complete; reported). These tests are about the group.
            client.info()
            for i in range(writes):
                client.index(index=index, id=f"{c}-{i}", body={"n": i, "client": c})
            client.close()
    finally:
        proxy.stop()
    captured = transactions(sandbox.kafka.bootstrap, topic)
    assert len(captured) == clients * (writes + 1), [(t.conn, t.seq) for t in captured]
    return clients * writes


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 90.0) -> Any:
    """``check()``'s first true value within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s}s"
        time.sleep(0.3)


class Progress:
    """The last group status seen, shown when the group does not catch up in time."""

    last: dict[str, Any] | None = None


def caught_up(report: dict[str, Any], written: int) -> dict[str, Any] | None:
    """The report once every record is committed and at least ``written`` transactions were replayed."""
    Progress.last = report
    done = report["totals"]["total_lag"] == 0 and report["totals"]["transactions"] >= written
    return report if done else None


def explain(group: ReplayerGroup) -> str:
    """The last status and every member's log tail."""
    logs = {m.member.name: log_tail(Path(m.member.log), 15) for m in group.members()}
    return json.dumps({"last_status": Progress.last, "logs": logs}, indent=1, default=str)[:20000]


def leftovers(marker: str) -> list[int]:
    """Live processes whose command line mentions ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "cmdline").read_bytes() and \
                    (proc / "stat").read_text().rpartition(")")[2].split()[0] != "Z":
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_two_members_replay_everything_then_scale_to_one_and_stop(sandbox: SandboxState, tmp_path: Path) -> None:
    assert sandbox.kafka is not None
    brokers, target = sandbox.kafka.bootstrap, sandbox.engines["target"].url
    topic, index = create_topic(brokers, partitions=4), unique("group")
    written = capture_writes(sandbox, topic, index)
    group = ReplayerGroup(tmp_path / "state", f"g-{topic}")
    args = ["--kafka-brokers", brokers, "--kafka-topic", topic, "--target-endpoint", target, "--max-speed"]

    members = group.start(2, args)
    try:
        _two_members(group, members, args, brokers, topic, target, index, written, tmp_path)
    except AssertionError:
        print(explain(group), file=sys.stderr)
        raise
    finally:
        group.stop(timeout_s=10)


def _two_members(group: ReplayerGroup, members: list[Member], args: list[str], brokers: str, topic: str, target: str,
                 index: str, written: int, tmp_path: Path) -> None:
    assert len({m.pid for m in members}) == 2
    # Idempotent: asking again (or for fewer) keeps the running members.
    assert group.start(1, args) == members
    assert [m.alive for m in group.members()] == [True, True]
    with pytest.raises(ReplayerGroupError, match=rf"replayer group 'g-{topic}' \(.*state\).*other replayer flags"):
        group.start(2, [*args, "--speedup-factor", "2"])
    record = json.loads((tmp_path / "state" / f"{members[0].name}.member.json").read_text())
    assert record["pid"] == members[0].pid and "--max-speed" in record["args"] and record["started"] > 0

    def shared(report: dict[str, Any] | None) -> dict[str, Any] | None:
        # Kafka shares the partitions out: each member owns some (the second gets its share a rebalance later).
        owned = [set((m["status"] or {}).get("partitions", {})) for m in (report or {}).get("members", [])]
        return report if len(owned) == 2 and owned[0] and owned[1] and not owned[0] & owned[1] else None

    report = wait_for("everything replayed and committed, the partitions shared",
                      lambda: shared(caught_up(group.status(brokers, topic), written)))
    assert report["totals"]["alive"] == 2 and report["totals"]["dead_letters"] == 0
    assert {m["name"] for m in report["members"]} == {m.name for m in members}
    assert all(m["alive"] and m["status"]["group"] == f"g-{topic}" for m in report["members"])
    OpenSearch(hosts=[target]).indices.refresh(index=index)
    assert OpenSearch(hosts=[target]).count(index=index)["count"] == written

    kept = group.scale(1)
    assert [m.name for m in kept] == [members[0].name]  # the newest one went
    assert leftovers(members[1].status_file) == []
    [only] = group.members()
    assert only.alive and only.member == members[0]

    stopped = group.stop(timeout_s=20)
    assert [(s.name, s.outcome) for s in stopped] == [(members[0].name, "stopped")]
    assert stopped[0].final is not None and stopped[0].final.get("finished") is True
    assert group.members() == []
    assert leftovers(str(tmp_path / "state")) == []


def test_a_member_that_died_is_reported_with_its_log(sandbox: SandboxState, tmp_path: Path) -> None:
    assert sandbox.kafka is not None
    group = ReplayerGroup(tmp_path / "state", unique("dead"))
    # No target: the replayer refuses to start.
    [member] = group.start(1, ["--kafka-brokers", sandbox.kafka.bootstrap])
    try:
        [status] = wait_for("the member exits", lambda: [m for m in group.members() if not m.alive])
    finally:
        stopped = group.stop()
    assert status.member.pid == member.pid
    assert any("--target-endpoint (or REPLAYER_TARGET_ENDPOINT) is required" in line for line in status.log_tail)
    assert [s.outcome for s in stopped] == ["had died"] and any("required" in line for line in stopped[0].log_tail)
    assert group.members() == []


def test_a_reused_pid_is_not_taken_for_the_member(tmp_path: Path) -> None:
    group = ReplayerGroup(tmp_path, "g")
    # This test's own pid: alive, but not a replayer with that status file.
    fake = Member("host-0", os.getpid(), time.time(), [], [], str(tmp_path / "host-0.log"),
                  str(tmp_path / "host-0.status.json"))
    (tmp_path / "host-0.member.json").write_text(json.dumps(fake.to_dict()))
    [status] = group.members()
    assert not status.alive
    [stopped] = group.stop(timeout_s=1)
    assert stopped.outcome == "had died"


def test_flags_the_group_owns_and_secrets_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    group = ReplayerGroup(tmp_path, "g")
    with pytest.raises(ConfigurationError, match="--member is set by the group for each member"):
        group.start(1, ["--member", "x"])
    with pytest.raises(ConfigurationError, match="--target-password: pass a secret as an environment variable"):
        group.start(1, ["--target-password=hunter2"])
    monkeypatch.delenv("NOT_SET_PW", raising=False)
    with pytest.raises(ConfigurationError, match=r"replayer group 'g' .*NOT_SET_PW, which are not set"):
        group.start(1, ["--target-password-env", "NOT_SET_PW"])
    with pytest.raises(ReplayerGroupError, match="never started here"):
        group.scale(2)
    assert group.members() == []
