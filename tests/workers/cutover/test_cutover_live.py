"""Cutover and back-out end to end: clients writing through two real capture proxies (ES 7.10 source, OS 2.19
target, real Kafka), the forward replayer applying the capture topic to the target and the reverse replayer applying
the reverse topic to the source, the switch driven through the proxies' admin API (``workers.cutover.sequence``).

What is checked: no client sees an error, every acknowledged write's final value is on both clusters, and the two
clusters end up holding the same documents; and a cutover whose replayer is gone aborts on time and leaves the
traffic on the source. The write latencies before and during the switches are printed (``-s`` shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from opensearchpy import OpenSearch

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.capture.conftest import RunningProxy, create_topic, proxy_options
from tests.workers.replay.live import committed_everything, documents, options, replayer_process
from workers.capture import topic_admin
from workers.capture.options import Destination
from workers.common.clusters import ClusterConnection
from workers.cutover.admin_client import ProxyAdmin
from workers.cutover.reverse import reverse_options
from workers.cutover.sequence import CutoverAborted, backout, cutover
from workers.replay.options import ReplayOptions
from workers.replay.replayer import Replayer
from workers.replay.stats import read_status

TOKEN_ENV = "CUTOVER_LIVE_TOKEN"
MAPPINGS = {"properties": {"n": {"type": "long"}, "w": {"type": "keyword"}}}
# Updates per document after its first write: each document's final value is its last counter.
UPDATES = 4
# Acknowledged writes before the cutover, between the cutover and the back-out, and after it.
PHASE = 80


@dataclass
class Write:
    """One acknowledged write: when it started and ended (monotonic), its document and counter."""

    start: float
    end: float
    doc_id: str
    n: int


@dataclass
class Writers:
    """Client threads writing through the proxies: each document indexed (one in five with an automatic id), then
    updated in place ``UPDATES`` times, one request at a time; every acknowledged write and every error recorded."""

    urls: list[str]
    index: str
    clients: int = 3
    # Between a client's writes. Clients writing back to back outrun the replayer here for good: it applies each
    # connection's writes one after another too, on a target sharing the machine's two cores with everything else.
    think_s: float = 0.05
    stop: threading.Event = field(default_factory=threading.Event)
    acked: list[Write] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Writers:
        for worker in range(self.clients):
            thread = threading.Thread(target=self._run, args=(worker,), daemon=True)
            self.threads.append(thread)
            thread.start()
        return self

    def wait_for(self, more: int, timeout_s: float = 60.0) -> None:
        """Until ``more`` writes beyond the current count were acknowledged."""
        goal, deadline = len(self.acked) + more, time.monotonic() + timeout_s
        while len(self.acked) < goal:
            assert not self.errors, self.errors[:5]
            assert time.monotonic() < deadline, f"only {len(self.acked)} of {goal} writes in {timeout_s}s"
            time.sleep(0.05)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(90)

    def _run(self, worker: int) -> None:
        # No client retries: an error the proxy let through must show here.
        client = OpenSearch(hosts=[self.urls[worker % len(self.urls)]], timeout=60, max_retries=0)
        k = 0
        while not self.stop.is_set():
            k += 1
            doc_id: str | None = None if k % 5 == 0 else f"w{worker}-{k}"
            for n in range(UPDATES + 1):
                if self.stop.is_set():
                    break
                started = time.monotonic()
                try:
                    if n == 0:
                        answer = client.index(index=self.index, id=doc_id, body={"n": 0, "w": f"w{worker}"})
                        doc_id = answer["_id"]
                    else:
                        client.update(index=self.index, id=doc_id, body={"doc": {"n": n}})
                except Exception as exc:  # every client error counts
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    break
                assert doc_id is not None
                self.acked.append(Write(started, time.monotonic(), doc_id, n))
                time.sleep(self.think_s)

    def final_values(self) -> dict[str, int]:
        """Per document, the counter of its last acknowledged write."""
        out: dict[str, int] = {}
        for write in sorted(self.acked, key=lambda w: w.end):
            out[write.doc_id] = write.n
        return out

    def latencies_ms(self, begin: float, end: float, *, started_within: bool = False) -> list[float]:
        """Latencies of the writes in flight at some moment of [begin, end] (or, with ``started_within``, of those
        that started in it)."""
        return sorted((w.end - w.start) * 1000 for w in self.acked
                      if w.start <= end and (w.start >= begin if started_within else w.end >= begin))


def percentiles(values: list[float]) -> str:
    if not values:
        return "no writes"
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return f"p50 {statistics.median(values):.1f} ms, p99 {p99:.1f} ms, max {values[-1]:.1f} ms ({len(values)} writes)"


class ReplayerProcess:
    """``python -m workers.replay`` with the flags ``opts`` stands for (what a pod runs: a process of its own, so it
    does not share this one's interpreter with the clients and the proxies), until ``stop()``."""

    def __init__(self, opts: ReplayOptions, status_file: Path) -> None:
        args = ["--max-speed", "--commit-interval-s", str(opts.commit_interval_s), "--type-mode", opts.type_mode,
                "--group-id", opts.group_id]
        args += [f"--rename={rule}" for rule in opts.rename]
        args += [f"--restore-type={index}={type_name}" for index, type_name in opts.restore_types.items()]
        if opts.dead_letters:
            args += ["--dead-letters", opts.dead_letters]
        self.status_file = status_file
        self.process = replayer_process(opts.brokers, opts.topic, opts.target.endpoint, status_file, *args)

    def wait_assigned(self, timeout_s: float = 60.0) -> None:
        """Until it joined its group and got its partitions (a new process and a new group take seconds)."""
        def assigned() -> bool:
            assert self.process.poll() is None, self.process.communicate()[1][-3000:]
            status = read_status(str(self.status_file))
            return bool(status and status["partitions"])

        wait_until(assigned, f"replayer on {self.status_file.stem} assigned", timeout_s)

    def stop(self) -> dict[str, Any]:
        """SIGTERM: it finishes, commits and prints its final status."""
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, err[-3000:]
        final: dict[str, Any] = json.loads(out)
        return final


@pytest.fixture
def replayers() -> Iterator[Callable[[ReplayOptions, Path], ReplayerProcess]]:
    """Start replayer processes; any still running after the test (it failed) is killed."""
    started: list[ReplayerProcess] = []

    def start(opts: ReplayOptions, status_file: Path) -> ReplayerProcess:
        started.append(ReplayerProcess(opts, status_file))
        return started[-1]

    yield start
    for replayer in started:
        if replayer.process.poll() is None:
            replayer.process.kill()
            replayer.process.communicate(timeout=30)


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    value = unique("token")
    monkeypatch.setenv(TOKEN_ENV, value)
    return value


@pytest.fixture
def switching_proxies(sandbox: SandboxState, token: str) -> Iterator[Callable[[str, str, int], list[RunningProxy]]]:
    started: list[RunningProxy] = []

    def start(topic: str, reverse_topic: str, count: int) -> list[RunningProxy]:
        assert sandbox.kafka is not None
        for _ in range(count):
            started.append(RunningProxy(proxy_options(
                sandbox.engines["source"].url, sandbox.kafka.bootstrap, topic, admin_host="127.0.0.1",
                admin_port=0, admin_token_env=TOKEN_ENV,
                switch_target=Destination.parse(sandbox.engines["target"].url), reverse_topic=reverse_topic,
                max_hold_s=30.0)))
        return started[-count:]

    yield start
    for running in started:
        running.stop()


def admin_of(running: RunningProxy, token: str) -> ProxyAdmin:
    return ProxyAdmin(f"http://127.0.0.1:{running.server.admin_port}", token)


def create_index(url: str, index: str) -> None:
    OpenSearch(hosts=[url]).indices.create(index=index, body={
        "settings": {"number_of_shards": 2, "number_of_replicas": 0}, "mappings": MAPPINGS})


def create_reverse_topic(brokers: str, topic: str, partitions: int) -> str:
    name = f"{topic}.reverse"
    admin = AdminClient({"bootstrap.servers": brokers})  # kept alive until the futures are answered
    for future in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
        future.result(30)
    return name


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s}s"
        time.sleep(0.1)


def group_committed(brokers: str, topic: str, group: str) -> bool:
    return topic_admin.consumer_lag(brokers, topic, group, timestamps=False).committed_any


def caught_up(brokers: str, topic: str, group: str, records: int = 200) -> bool:
    # Under a second of this test's traffic (a few hundred records a second; commits every 0.2 s).
    lag = topic_admin.consumer_lag(brokers, topic, group, timestamps=False)
    return lag.committed_any and lag.total_lag <= records


def assert_same_everywhere(source_url: str, target_url: str, index: str, writers: Writers) -> None:
    on_source, on_target = documents(source_url, index), documents(target_url, index)
    assert sorted(on_source) == sorted(on_target), (
        f"only on the source: {sorted(on_source.keys() - on_target.keys())[:10]}, "
        f"only on the target: {sorted(on_target.keys() - on_source.keys())[:10]}")
    differ = [i for i in on_source if on_source[i] != on_target[i]]
    assert not differ, [(i, on_source[i], on_target[i]) for i in differ[:10]]
    finals = writers.final_values()
    wrong = [(i, n, on_source.get(i)) for i, n in finals.items()
             if i not in on_source or json.loads(on_source[i])["n"] != n]
    assert not wrong, wrong[:10]


# Opt-in: the default run has the same scenario end to end in tests/migration_pipeline/test_demo_live.py (one proxy,
# through the workflow); this one adds two proxies and three clients.
@pytest.mark.slow
def test_cutover_then_backout_under_continuous_writes_loses_nothing(
        sandbox: SandboxState, switching_proxies: Callable[[str, str, int], list[RunningProxy]], token: str,
        replayers: Callable[[ReplayOptions, Path], ReplayerProcess], tmp_path: Path) -> None:
    assert sandbox.kafka is not None
    brokers = sandbox.kafka.bootstrap
    source_url, target_url = sandbox.engines["source"].url, sandbox.engines["target"].url
    topic = create_topic(brokers, partitions=2)
    reverse_topic = create_reverse_topic(brokers, topic, 2)
    index = unique("cutover")
    create_index(source_url, index)
    create_index(target_url, index)
    proxies = switching_proxies(topic, reverse_topic, 2)
    admins = [admin_of(p, token) for p in proxies]

    forward_opts = options(brokers, topic, target_url, group_id=unique("fwd"), exit_when_idle_s=None,
                           dead_letters=str(tmp_path / "letters"))
    reverse_opts = reverse_options(forward_opts, source=ClusterConnection(endpoint=source_url),
                                   reverse_topic=reverse_topic, group_id=unique("rev"), restore_types={})
    # Both started before any write, as before a real cutover (a new process joining a new group takes seconds).
    forward = replayers(forward_opts, tmp_path / "forward.json")
    reverse = replayers(reverse_opts, tmp_path / "reverse.json")
    forward.wait_assigned()
    reverse.wait_assigned()
    writers = Writers([p.url for p in proxies], index).start()
    try:
        began = time.monotonic()
        writers.wait_for(PHASE)
        # A cutover is started once the replayer is nearly caught up (the drain waits for whatever lag is left).
        wait_until(lambda: caught_up(brokers, topic, forward_opts.group_id), "forward replayer caught up")
        before = writers.latencies_ms(began, time.monotonic())

        to_target = cutover(admins, brokers=brokers, group=forward_opts.group_id, drain_timeout_s=10.0,
                            progress=print)
        cut_window = (time.monotonic() - to_target.total_s, time.monotonic())
        assert all(s["side"] == "target" for s in to_target.statuses.values())
        writers.wait_for(PHASE)
        wait_until(lambda: caught_up(brokers, reverse_topic, reverse_opts.group_id), "reverse replayer caught up")
        on_target_window = writers.latencies_ms(cut_window[1], time.monotonic(), started_within=True)

        to_source = backout(admins, brokers=brokers, group=reverse_opts.group_id, drain_timeout_s=10.0,
                            progress=print)
        back_window = (time.monotonic() - to_source.total_s, time.monotonic())
        assert to_source.topic == reverse_topic
        assert all(s["side"] == "source" and not s["paused"] for s in to_source.statuses.values())
        writers.wait_for(PHASE)
    finally:
        writers.finish()
        finals = []
        try:
            wait_until(lambda: committed_everything(brokers, topic, forward_opts.group_id)[0]
                       and committed_everything(brokers, reverse_topic, reverse_opts.group_id)[0],
                       "both replayers caught up", timeout_s=30)
        finally:
            finals = [forward.stop(), reverse.stop()]

    assert writers.errors == []
    assert all(final["stats"]["dead_letters"] == 0 for final in finals), finals
    assert finals[1]["stats"]["transactions"] > 0 and finals[1]["stats"]["auto_ids_pinned"] > 0
    assert_same_everywhere(source_url, target_url, index, writers)

    for result in (to_target, to_source):
        print(f"{result.direction}: writes held {result.hold_s * 1000:.0f} ms (pause {result.pause_s * 1000:.0f}, "
              f"drain {result.drain_s * 1000:.0f}, switch {result.switch_s * 1000:.0f}); watermarks "
              f"{result.watermarks}")
    print(f"write latency before the cutover:   {percentiles(before)}")
    print(f"write latency during the cutover:   {percentiles(writers.latencies_ms(*cut_window))}")
    print(f"write latency on the target:        {percentiles(on_target_window)}")
    print(f"write latency during the back-out:  {percentiles(writers.latencies_ms(*back_window))}")
    print(f"{len(writers.acked)} acknowledged writes, {len(writers.final_values())} documents, "
          f"{len(writers.errors)} client errors")


def test_a_cutover_whose_replayer_is_gone_aborts_on_time_and_traffic_stays_on_the_source(
        sandbox: SandboxState, switching_proxies: Callable[[str, str, int], list[RunningProxy]], token: str,
        tmp_path: Path) -> None:
    assert sandbox.kafka is not None
    brokers = sandbox.kafka.bootstrap
    source_url, target_url = sandbox.engines["source"].url, sandbox.engines["target"].url
    topic = create_topic(brokers, partitions=2)
    reverse_topic = create_reverse_topic(brokers, topic, 2)
    index = unique("aborted")
    create_index(source_url, index)
    create_index(target_url, index)
    (proxy,) = switching_proxies(topic, reverse_topic, 1)
    admins = [admin_of(proxy, token)]
    group = f"g-{topic}"
    process = replayer_process(brokers, topic, target_url, tmp_path / "status.json", "--max-speed")
    writers = Writers([proxy.url], index, clients=2).start()
    try:
        writers.wait_for(60)
        wait_until(lambda: group_committed(brokers, topic, group), "forward commits")
        # Killed, not stopped: the group keeps the member until its session times out (10 s), so the preflight
        # still sees a stable group, and the writes made since are never applied.
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        writers.wait_for(20)
        began = time.monotonic()
        with pytest.raises(CutoverAborted) as caught:
            cutover(admins, brokers=brokers, group=group, drain_timeout_s=3.0, progress=print)
        took = time.monotonic() - began
        held_window = (began, time.monotonic())
        writers.wait_for(20)
    finally:
        writers.finish()
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    print(f"aborted after {took:.2f}s: {caught.value}")
    assert caught.value.stage == "drain" and caught.value.remaining
    assert 3.0 <= took < 3.0 + 3.0
    status = admins[0].status()
    assert (status["side"], status["paused"], status["switches"]) == ("source", False, 0)
    assert writers.errors == []
    held = writers.latencies_ms(*held_window)
    print(f"write latency around the aborted cutover: {percentiles(held)}")
    # Writes were held through the drain, then went to the source.
    assert held and held[-1] >= 2500
    on_source = documents(source_url, index)
    assert all(i in on_source and json.loads(on_source[i])["n"] == n for i, n in writers.final_values().items())
    # Nothing lost for the target either: a replayer of the same group takes over from the group's commits.
    catch_up = options(brokers, topic, target_url, group_id=group, exit_when_idle_s=2.0)
    asyncio.run(Replayer(catch_up).run())
    assert_same_everywhere(source_url, target_url, index, writers)
