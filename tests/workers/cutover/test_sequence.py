"""The cutover sequence and the admin client against stand-in proxies (``fake_proxy.py``), Kafka replaced by what the
drain would read: the order of the steps, and every way back when a step fails. The real thing, engines, Kafka and
proxies included, is test_cutover_live.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.workers.cutover.fake_proxy import FakeProxy
from workers.capture.topic_admin import GroupLag, PartitionLag
from workers.common.errors import ConfigurationError
from workers.cutover import sequence
from workers.cutover.admin_client import ProxyAdmin, ProxyAdminError, ProxyConflict, ProxyUnauthorized
from workers.cutover.cli import app
from workers.cutover.drain import Marks, remaining
from workers.cutover.reverse import reverse_options
from workers.cutover.sequence import CutoverAborted, backout, cutover
from workers.replay.offsets import PartitionOffsets

TOKEN = "secret-token"


@pytest.fixture
def fakes() -> Iterator[list[FakeProxy]]:
    proxies = [FakeProxy(TOKEN), FakeProxy(TOKEN)]
    yield proxies
    for proxy in proxies:
        proxy.stop()


class Kafka:
    """What the sequence reads from Kafka: the group's state and commits, and the watermarks at the hold."""

    def __init__(self, high: dict[int, int], commits: list[dict[int, int]], state: str = "stable") -> None:
        self.high, self.commits, self.state = high, commits, state
        self.reads = 0
        self.closed = False

    def lag(self, brokers: str, topic: str, group: str, config: Any, **_: Any) -> GroupLag:
        rows = tuple(PartitionLag(p, 0, 0, h, h) for p, h in self.high.items())
        return GroupLag(brokers, topic, group, self.state, rows)

    def marks(self, brokers: str, config: Any, topic: str, timeout_s: float = 10.0) -> Marks:
        return Marks(dict.fromkeys(self.high, 0), dict(self.high))

    def reader(self, *args: Any) -> Kafka:
        return self

    def read(self, partitions: list[int], timeout_s: float = 5.0) -> dict[int, int]:
        self.reads += 1
        return self.commits[min(self.reads, len(self.commits)) - 1]

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> Kafka:
    fake = Kafka({0: 10, 1: 0, 2: 5}, [{0: 3}, {0: 10, 2: 4}, {0: 10, 2: 5}])
    monkeypatch.setattr(sequence.topic_admin, "consumer_lag", fake.lag)
    monkeypatch.setattr(sequence, "read_marks", fake.marks)
    monkeypatch.setattr(sequence, "CommitReader", fake.reader)
    return fake


def admins(fakes: list[FakeProxy], token: str = TOKEN) -> list[ProxyAdmin]:
    return [ProxyAdmin(f.url, token) for f in fakes]


def test_cutover_pauses_waits_for_the_commits_switches_and_resumes(fakes: list[FakeProxy], kafka: Kafka) -> None:
    lines: list[str] = []
    result = cutover(admins(fakes), brokers="k:9092", group="g", poll_s=0.01, progress=lines.append)
    assert result.topic == "capture" and result.to_side == "target" and result.watermarks == {0: 10, 1: 0, 2: 5}
    assert kafka.reads == 3 and kafka.closed
    for fake in fakes:
        assert fake.calls == ["GET /status", "POST /pause-writes", "POST /switch target", "POST /resume",
                              "GET /status"]
        assert (fake.side, fake.paused) == ("target", False)
    assert all(s["side"] == "target" for s in result.statuses.values())
    assert result.hold_s >= result.pause_s + result.drain_s + result.switch_s - 0.01
    assert any("drained" in line for line in lines)
    # And back: the reverse topic is the one the proxies name for the target side.
    kafka.reads = 0
    back = backout(admins(fakes), brokers="k:9092", group="rg", poll_s=0.01)
    assert (back.topic, back.to_side) == ("capture.reverse", "source")
    assert all(f.side == "source" and f.switches == 2 for f in fakes)


def test_a_drain_that_takes_too_long_resumes_on_the_source_and_says_what_is_left(
        fakes: list[FakeProxy], kafka: Kafka) -> None:
    kafka.commits = [{0: 7, 2: 5}]
    with pytest.raises(CutoverAborted, match=r"within 0.3s .*\[0\] 3.*resumed on the source") as caught:
        cutover(admins(fakes), brokers="k:9092", group="g", drain_timeout_s=0.3, poll_s=0.05)
    assert caught.value.stage == "drain" and caught.value.remaining == {0: 3}
    for fake in fakes:
        assert (fake.side, fake.paused, fake.switches) == ("source", False, 0)
        assert "POST /switch target" not in fake.calls


def test_a_failed_switch_switches_back_the_others_and_resumes(fakes: list[FakeProxy], kafka: Kafka) -> None:
    fakes[1].fail.append("/switch")
    with pytest.raises(CutoverAborted, match=r"switch: .*HTTP 500.*switched back") as caught:
        cutover(admins(fakes), brokers="k:9092", group="g", poll_s=0.01)
    assert caught.value.stage == "switch"
    assert [(f.side, f.paused) for f in fakes] == [("source", False), ("source", False)]
    assert fakes[0].calls[-3:] == ["POST /switch source", "POST /resume", "GET /status"]


def test_a_failed_pause_resumes_every_proxy(fakes: list[FakeProxy], kafka: Kafka) -> None:
    fakes[0].fail.append("/pause-writes")
    with pytest.raises(CutoverAborted, match="pause: a proxy could not pause"):
        cutover(admins(fakes), brokers="k:9092", group="g")
    assert all(not f.paused and f.side == "source" for f in fakes)
    assert kafka.reads == 0


def test_preflight_refuses_a_proxy_on_the_wrong_side_a_group_without_members_and_a_long_drain(
        fakes: list[FakeProxy], kafka: Kafka) -> None:
    fakes[1].side = "target"
    with pytest.raises(CutoverAborted, match=f"preflight: {fakes[1].url} is on the 'target' side"):
        cutover(admins(fakes), brokers="k:9092", group="g")
    fakes[1].side = "source"
    kafka.state = "empty"
    with pytest.raises(CutoverAborted, match="group 'g' has no running member"):
        cutover(admins(fakes), brokers="k:9092", group="g")
    kafka.state = "stable"
    with pytest.raises(ConfigurationError, match="below the proxies' max_hold_s"):
        cutover(admins(fakes), brokers="k:9092", group="g", drain_timeout_s=29.5)
    with pytest.raises(CutoverAborted, match="capture the source side's traffic to \\['capture'\\], not 'other'"):
        cutover(admins(fakes), brokers="k:9092", group="g", topic="other")
    assert all(f.calls.count("POST /pause-writes") == 0 for f in fakes)


def test_the_client_names_the_url_and_never_the_token(fakes: list[FakeProxy]) -> None:
    wrong = ProxyAdmin(fakes[0].url, "wrong-token")
    with pytest.raises(ProxyUnauthorized, match=f"proxy admin {fakes[0].url}: GET /status: .*refused the token"):
        wrong.status()
    assert "wrong-token" not in repr(wrong)
    with pytest.raises(ProxyConflict, match=r"409.*not paused"):
        ProxyAdmin(fakes[0].url, TOKEN).switch("target")
    with pytest.raises(ProxyAdminError, match=r"proxy admin http://127\.0\.0\.1:1: GET /status: cannot connect"):
        ProxyAdmin("http://127.0.0.1:1", TOKEN).status()


def test_the_cli_exits_3_on_an_aborted_cutover_and_2_on_bad_input(
        fakes: list[FakeProxy], kafka: Kafka, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    args = ["cutover", "--admin-url", fakes[0].url, "--admin-url", fakes[1].url, "--brokers", "k:9092",
            "--token-env", "CUTOVER_TEST_TOKEN", "--drain-timeout-s", "0.3"]
    assert runner.invoke(app, args).exit_code == 2  # the variable is not set
    monkeypatch.setenv("CUTOVER_TEST_TOKEN", TOKEN)
    kafka.commits = [{}]
    aborted = runner.invoke(app, [*args, "--json"])
    assert aborted.exit_code == 3 and "cutover aborted at drain" in aborted.output
    kafka.commits = [{0: 10, 2: 5}]
    done = runner.invoke(app, args)
    assert done.exit_code == 0 and "traffic goes to the target" in done.output
    shown = runner.invoke(app, ["status", "--admin-url", fakes[0].url, "--token-env", "CUTOVER_TEST_TOKEN"])
    assert shown.exit_code == 0 and "traffic goes to: target" in shown.output


def test_remaining_counts_only_partitions_below_their_watermark() -> None:
    marks = Marks({0: 0, 1: 0, 2: 4, 3: 0}, {0: 10, 1: 0, 2: 4, 3: 6})
    assert remaining(marks, {0: 10, 3: 2}) == {3: 4}
    assert remaining(marks, {}) == {0: 10, 3: 6}


def test_a_finished_last_transaction_lets_the_commit_reach_the_watermark() -> None:
    # What the drain relies on: the records of a partition end with a finished transaction (a request record, its
    # response record) and a connection's close; the commit position is then the next offset, the watermark.
    offsets = PartitionOffsets(None)
    for offset in (0, 1, 2):
        offsets.seen(offset)
    offsets.begin(("c", 1), 1)
    assert offsets.position() == 1
    offsets.finish(("c", 1))
    assert offsets.position() == 3


def test_reverse_options_point_the_replayer_at_the_source() -> None:
    from workers.common.clusters import ClusterConnection
    from workers.replay.options import ReplayOptions

    forward = ReplayOptions(brokers="k:9092", topic="capture", target=ClusterConnection(endpoint="http://t:9200"),
                            rename=["logs=archive"], transforms=["m:f"], tuples="/tmp/t", from_timestamp_ms=5)
    source = ClusterConnection(endpoint="http://s:9200")
    reverse = reverse_options(forward, source=source, reverse_topic="capture.reverse", group_id="rg",
                              restore_types={"logs": "log"})
    assert (reverse.topic, reverse.group_id, reverse.target, reverse.rename) == (
        "capture.reverse", "rg", source, ["archive=logs"])
    assert (reverse.type_mode, reverse.restore_types, reverse.transforms, reverse.tuples,
            reverse.from_timestamp_ms) == ("restore", {"logs": "log"}, [], None, None)
    assert reverse_options(forward, source=source, reverse_topic="r", group_id="rg", restore_types={}).type_mode \
        == "drop"
    with pytest.raises(ConfigurationError, match="group of its own"):
        reverse_options(forward, source=source, reverse_topic="r", group_id=forward.group_id, restore_types={})
    with pytest.raises(ConfigurationError, match="cannot be inverted"):
        reverse_options(forward.model_copy(update={"rename": ["regex:a(.*)=b$1"]}), source=source,
                        reverse_topic="r", group_id="rg", restore_types={})
