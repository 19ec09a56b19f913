"""``migration demo --live``: the zero-downtime scenario end to end on the sandbox.

A capture proxy in front of the source records every request to Kafka while a client writes through it without
pause; the workflow then snapshots, migrates the metadata, backfills, replays the captured traffic until the target
has caught up, validates the target against the live source, and cuts over (writes held at the proxy until the
replayer applied the last captured one, then every request goes to the target, captured to the reverse topic); the
client keeps writing to the target, the back-out brings the traffic back to the source (the reverse replayer having
applied every write made on the target), the client writes on, stops, and the last check compares both clusters
document by document and every acknowledged write on both. Exit 0 only when they agree and the client saw no error.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import requests
from confluent_kafka.admin import NewTopic

from migration_pipeline.demo import REPOSITORY, _clear_target
from migration_pipeline.demo_data import load_demo_data
from migration_pipeline.demo_view import DemoView
from migration_pipeline.live_traffic import INDEX_BODY, LiveTraffic, final_values, percentile
from migration_pipeline.sandbox import manager
from migration_pipeline.sandbox.paths import NAME_ENV, sandbox_name
from migration_pipeline.sandbox.processes import free_port
from migration_pipeline.sandbox.workflow_file import sandbox_workflow
from migration_pipeline.workflow.instance import open_local_instance
from migration_pipeline.workflow.local import LocalWorkflow, WorkflowError
from migration_pipeline.workflow.logs import logs_dir
from workers.capture import topic_admin
from workers.capture.options import default_reverse_topic
from workers.common.clusters import ClusterConnection
from workers.common.errors import MigrationError
from workers.replay.group import ReplayerGroup
from workers.validate.target_scan import fingerprint_index, scan_client
from workflow_model import save_active
from workflow_model.home import use_dagster_home
from workflow_model.steps import Step

LIVE_INDEX = "live-counters"
TOKEN_ENV = "MIGRATION_DEMO_PROXY_TOKEN"
# Seconds the client writes to each side between the switches (enough for a few hundred writes).
WRITE_WINDOW_S = 8.0


@dataclass
class LiveReport:
    """What the live demo did and saw."""

    source_url: str = ""
    target_url: str = ""
    proxy_url: str = ""
    phases: list[tuple[str, float, str]] = field(default_factory=list)
    writes: int = 0
    ids: int = 0
    client_errors: list[str] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)
    indices: dict[str, dict[str, Any]] = field(default_factory=dict)  # index -> source/target count and digest
    wrong_values: list[str] = field(default_factory=list)
    stopped: str | None = None
    log_file: str = ""

    @property
    def agree(self) -> bool:
        """Both clusters hold the same documents, every acknowledged write is on both, the client saw no error."""
        return (self.stopped is None and bool(self.indices) and not self.wrong_values and not self.client_errors
                and all(v["source_digest"] == v["target_digest"] and v["source"] == v["target"]
                        for v in self.indices.values()))

    def to_dict(self) -> dict[str, Any]:
        """For --json."""
        return {**self.__dict__, "agree": self.agree}


class _Proxy:
    """The capture proxy as its own process, with its admin API on."""

    def __init__(self, source: str, target: str, brokers: str, topic: str, log: Path) -> None:
        self.port, self.admin_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self._log = open(log, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workers.capture", "--listen", f"127.0.0.1:{self.port}", "--destination", source,
             "--kafka-brokers", brokers, "--kafka-topic", topic, "--node-id", "demo-proxy",
             "--admin-listen", f"127.0.0.1:{self.admin_port}", "--admin-token-env", TOKEN_ENV,
             "--switch-target", target, "--max-hold-s", "30"],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, token: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MigrationError(f"the capture proxy exited with {self.process.returncode}; see {self._log.name}")
            try:
                if requests.get(f"{self.admin_url}/status", headers={"Authorization": f"Bearer {token}"},
                                timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise MigrationError(f"the capture proxy did not answer in {timeout_s:.0f}s; see {self._log.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()


def _create_topic(brokers: str, topic: str, partitions: int = 3) -> None:
    admin = topic_admin.admin_client(brokers)
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(30)


def _drained(brokers: str, topic: str, group: str) -> bool:
    try:
        return topic_admin.consumer_lag(brokers, topic, group, timestamps=False).total_lag == 0
    except topic_admin.TopicNotFoundError:
        return True


def _wait_drained(brokers: str, pairs: list[tuple[str, str]], timeout_s: float = 180) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(_drained(brokers, topic, group) for topic, group in pairs):
            return True
        time.sleep(1)
    return False


def _step_span(instance: dg.DagsterInstance, step: str, since: float) -> tuple[float, float] | None:
    """Start and end (epoch seconds) of the newest run step ``step`` since ``since``."""
    from migration_pipeline.demo import _utc

    for run in instance.get_run_records(dg.RunsFilter(created_after=_utc(since))):
        for stat in instance.get_run_step_stats(run.dagster_run.run_id):
            if stat.step_key == step and stat.start_time and stat.end_time:
                return stat.start_time, stat.end_time
    return None


def run(scale: float = 0.05, name: str | None = None, view: DemoView | None = None) -> LiveReport:
    """The whole live scenario; the report says whether both sides agree."""
    from rich.console import Console

    report = LiveReport()
    name = sandbox_name(name)
    os.environ[NAME_ENV] = name
    use_dagster_home()
    logs = logs_dir()
    logs.mkdir(parents=True, exist_ok=True)
    report.log_file = str(logs / "demo-live.log")
    with open(report.log_file, "a", encoding="utf-8") as log:
        view = view or DemoView(Console(stderr=True), log)
        view.log = log
        view.start_spinner()
        try:
            _run(report, name, scale, view, logs)
        except (MigrationError, WorkflowError) as exc:
            report.stopped = str(exc)
            view.console.print(f"[red]live demo stopped:[/] {exc}", highlight=False)
        finally:
            view.stop_spinner()
    return report


def _phase(report: LiveReport, view: DemoView, name: str, began: float, detail: str) -> None:
    seconds = round(time.monotonic() - began, 1)
    report.phases.append((name, seconds, detail))
    view.phase(name, seconds, detail)


def _run(report: LiveReport, name: str, scale: float, view: DemoView, logs: Path) -> None:
    began = time.monotonic()
    state = manager.up(manager.UpRequest(kafka=True), name=name, progress=view.detail)
    assert state.kafka is not None  # asked for
    source, target, brokers = state.engines["source"], state.engines["target"], state.kafka.bootstrap
    report.source_url, report.target_url = source.url, target.url
    _phase(report, view, "sandbox", began, f"{source.engine} {source.version} → {target.engine} {target.version}, "
           f"Kafka {state.kafka.version}")

    began = time.monotonic()
    datasets = load_demo_data(source.url, scale, view.detail)
    indices = [d.index for d in datasets] + [LIVE_INDEX]
    _clear_target(target.url, indices)
    requests.delete(f"{source.url}/{LIVE_INDEX}", timeout=60)
    requests.put(f"{source.url}/{LIVE_INDEX}", json=INDEX_BODY, timeout=60).raise_for_status()
    _phase(report, view, "data", began, f"{sum(d.docs for d in datasets):,} documents in {len(datasets)} indices, "
           f"and {LIVE_INDEX} for the live writes")

    began = time.monotonic()
    stamp = time.strftime("%Y%m%d%H%M%S")
    topic, group = f"demo-live-{stamp}", f"demo-live-{stamp}"
    reverse_group = f"{group}-reverse"
    _create_topic(brokers, topic)
    token = secrets.token_urlsafe(24)
    os.environ[TOKEN_ENV] = token  # the proxy (a child) and the cutover (in this process) read it by name
    proxy = _Proxy(source.url, target.url, brokers, topic, logs / "demo-live-proxy.log")
    traffic: LiveTraffic | None = None
    groups: list[ReplayerGroup] = []
    try:
        proxy.wait_ready(token)
        report.proxy_url = proxy.url
        traffic = LiveTraffic(proxy.url, LIVE_INDEX)
        traffic.start()
        time.sleep(2)
        _phase(report, view, "capture", began, f"proxy {proxy.url} → source, captured to {topic}; a client writes "
               f"through it ({len(traffic.writes)} writes so far)")
        _workflow(report, view, state, indices, brokers, topic, group, reverse_group, proxy, traffic, groups)
    finally:
        if traffic is not None:
            traffic.stop()
        for replayers in groups:
            replayers.stop()
        proxy.stop()


def _workflow(report: LiveReport, view: DemoView, state: Any, indices: list[str], brokers: str, topic: str,
              group: str, reverse_group: str, proxy: _Proxy, traffic: LiveTraffic,
              groups: list[ReplayerGroup]) -> None:
    source, target = state.engines["source"], state.engines["target"]
    text = sandbox_workflow(
        state, repository=REPOSITORY, create="demo-live-{timestamp}", indices=indices, skip_approvals=True,
        replay={"enabled": True, "kafka_brokers": brokers, "topic": topic, "group_id": group, "lag_threshold": 400,
                "steady_s": 5.0, "timeout_s": 900.0},
        cutover={"proxy_admin_urls": [proxy.admin_url], "admin_token_env": TOKEN_ENV,
                 "reverse_group_id": reverse_group, "drain_timeout_s": 20.0, "max_hold_s": 30.0})
    view.detail(f"workflow config: {save_active(text)}")
    from resources.workflow import WorkflowResource

    replay_dir = WorkflowResource().replay_dir()
    groups += [ReplayerGroup(replay_dir / group, group), ReplayerGroup(replay_dir / reverse_group, reverse_group)]
    started = time.time()
    began = time.monotonic()
    with open_local_instance() as instance:
        workflow = LocalWorkflow(instance, view.detail, observer=view)
        workflow.reset()
        workflow.submit(new_snapshot=True)
        status = workflow.status()
        failed = [p.name for p in status.phases if p.state == "failed"]
        if failed:
            raise WorkflowError(f"the workflow failed at {', '.join(failed)}; see `workflow log`")
        cutover_meta = workflow.phase_metadata(Step.CUTOVER.value)
        if cutover_meta.get("side") != "target":
            raise WorkflowError(f"the workflow did not cut over (cutover: {cutover_meta or 'not run'})")
        catchup = workflow.phase_metadata(Step.REPLAY_CATCHUP.value)
        checks = workflow.phase_metadata(Step.VALIDATION_REPORT.value).get("checks") or {}
        warned = [name for name, passed in checks.items() if not passed]
        _phase(report, view, "workflow", began,
               f"snapshot, metadata, backfill, replay caught up ({catchup.get('lag_records')} records behind), "
               f"validation against the live source: {'clean' if not warned else 'failed: ' + ', '.join(warned)}"
               f"{' (queries move while clients write)' if warned == ['queries'] else ''}, cutover "
               f"(writes held {float(cutover_meta.get('hold_s') or 0):.2f}s)")
        cut = _step_span(instance, Step.CUTOVER.value, started)

        began = time.monotonic()
        before = len(traffic.writes)
        time.sleep(WRITE_WINDOW_S)
        _phase(report, view, "on the target", began, f"{len(traffic.writes) - before} writes through the proxy to "
               "the target, captured to the reverse topic and replayed onto the source")

        began = time.monotonic()
        back_began = time.time()
        workflow.run_job("backout")
        back = (back_began, time.time())
        meta = workflow.phase_metadata(Step.CUTOVER.value)
        _phase(report, view, "back-out", began, f"traffic back on the source (writes held "
               f"{float(meta.get('hold_s') or 0):.2f}s)")

        began = time.monotonic()
        before = len(traffic.writes)
        time.sleep(WRITE_WINDOW_S / 2)
        traffic.stop()
        drained = _wait_drained(brokers, [(topic, group), (default_reverse_topic(topic), reverse_group)])
        _phase(report, view, "drain", began, f"{len(traffic.writes) - before} more writes to the source; both "
               f"replayer groups {'drained' if drained else 'NOT drained after 180 s'}")

    _latencies(report, traffic, cut, back)
    began = time.monotonic()
    _final_check(report, source.url, target.url, indices, traffic)
    agree = "agree" if report.agree else "DIFFER"
    _phase(report, view, "final validation", began, f"{len(report.indices)} indices and {report.ids} live ids "
           f"compared: both sides {agree}; client errors: {len(report.client_errors)}")


def _latencies(report: LiveReport, traffic: LiveTraffic, cut: tuple[float, float] | None,
               back: tuple[float, float]) -> None:
    first_switch = cut[0] if cut else back[0]
    before = traffic.latencies(until=first_switch - 1)
    during = traffic.latencies(cut[0], cut[1]) if cut else []
    during += traffic.latencies(*back)
    report.writes, report.ids = len(traffic.writes), len(traffic.expected)
    report.client_errors = list(traffic.errors[:20])
    for label, values in (("before", before), ("switches", during)):
        report.latency_ms[f"{label}_p50"] = round(percentile(values, 0.5) * 1000, 1)
        report.latency_ms[f"{label}_p99"] = round(percentile(values, 0.99) * 1000, 1)
        report.latency_ms[f"{label}_writes"] = len(values)


def _final_check(report: LiveReport, source_url: str, target_url: str, indices: list[str],
                 traffic: LiveTraffic) -> None:
    for url in (source_url, target_url):
        requests.post(f"{url}/{','.join(indices)}/_refresh", timeout=120).raise_for_status()
    sides = {role: scan_client(ClusterConnection(endpoint=url, timeout_s=120), 2)
             for role, url in (("source", source_url), ("target", target_url))}
    for index in indices:
        row: dict[str, Any] = {}
        for role, client in sides.items():
            found, _ = fingerprint_index(client, index, connections=2)
            row[role], row[f"{role}_digest"] = found.count, found.digest
        report.indices[index] = row
    ids = sorted(traffic.expected)
    on_source, on_target = final_values(source_url, LIVE_INDEX, ids), final_values(target_url, LIVE_INDEX, ids)
    for doc_id in ids:
        want = traffic.expected[doc_id]
        if on_source.get(doc_id) != want or on_target.get(doc_id) != want:
            report.wrong_values.append(f"{doc_id}: acknowledged n={want}, source {on_source.get(doc_id)}, "
                                       f"target {on_target.get(doc_id)}")
