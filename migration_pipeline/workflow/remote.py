"""The workflow through a Dagster webserver's GraphQL API: its daemon's sensors run the phases."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import requests

from migration_pipeline.workflow import remote_outputs
from migration_pipeline.workflow.outputs import LogChunk, ShardFacts
from migration_pipeline.workflow.phases import PhaseRef
from migration_pipeline.workflow.resume import plan_submit
from migration_pipeline.workflow.status import AssetFacts, Facts, WorkflowStatus, summarize
from migration_pipeline.workflow.target_state import remove_workflow_state
from sensors.gates import approval_run_config
from workers.common.errors import MigrationError
from workflow_model.steps import PHASES, Step

_SHARD_ASSET = {"path": [Step.SHARD_BACKFILL.value]}

_ENTRY = """fragment Entry on MetadataEntry { label __typename
  ... on TextMetadataEntry { text } ... on IntMetadataEntry { intValue } ... on FloatMetadataEntry { floatValue }
  ... on BoolMetadataEntry { boolValue } ... on JsonMetadataEntry { jsonString }
  ... on MarkdownMetadataEntry { mdStr } }"""

_FACTS = """query Facts($keys: [AssetKeyInput!]!, $shards: AssetKeyInput!) {
  assetNodes(assetKeys: $keys) { assetKey { path }
    assetMaterializations(limit: 1) { timestamp metadataEntries { ...Entry } } }
  assetsLatestInfo(assetKeys: $keys) { assetKey { path } latestRun { id status } inProgressRunIds unstartedRunIds }
  shards: assetNodeOrError(assetKey: $shards) { ... on AssetNode {
    assetPartitionStatuses { ... on DefaultPartitionStatuses {
      materializedPartitions failedPartitions materializingPartitions unmaterializedPartitions } }
    assetMaterializations(limit: 10000) { partition timestamp metadataEntries { ...Entry } } } }
}
""" + _ENTRY

_LAUNCH = """mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message }
  ... on PipelineNotFoundError { message } } }"""

_REPOS = """{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name location { name }
  jobs { name } } } ... on PythonError { message } } }"""

_RUNS = """query Runs($limit: Int) { runsOrError(limit: $limit) { ... on Runs { results { runId jobName status
  startTime } } } }"""

_LOGS = """query Logs($runId: ID!) { logsForRun(runId: $runId) { __typename ... on EventConnection { events {
  __typename ... on MessageEvent { message timestamp level stepKey } } } } }"""

_BACKFILL = """mutation Backfill($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on PartitionSetNotFoundError { message } ... on InvalidSubsetError { message } } }"""

_RUN = """query Run($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } } }"""

_WIPE = """mutation Wipe($keys: [PartitionsByAssetSelector!]!) { wipeAssets(assetPartitionRanges: $keys) {
  __typename ... on PythonError { message } ... on UnauthorizedError { message } } }"""

_DELETE = """mutation Delete($keys: [String!]!, $repo: RepositorySelector!) {
  deleteDynamicPartitions(partitionKeys: $keys, partitionsDefName: "shards",
    repositorySelector: $repo) { __typename ... on PythonError { message } } }"""


class DagsterApiError(MigrationError):
    """The webserver refused or failed a request; the message says which."""


def _value(entry: dict[str, Any]) -> Any:
    kind = entry["__typename"]
    if kind == "IntMetadataEntry":
        return entry.get("intValue")
    if kind == "FloatMetadataEntry":
        return entry.get("floatValue")
    if kind == "BoolMetadataEntry":
        return entry.get("boolValue")
    if kind == "JsonMetadataEntry":
        return json.loads(entry["jsonString"]) if entry.get("jsonString") else None
    if kind == "MarkdownMetadataEntry":
        return entry.get("mdStr")
    return entry.get("text")


def _metadata(event: dict[str, Any]) -> dict[str, Any]:
    return {e["label"]: _value(e) for e in event.get("metadataEntries", [])}


class RemoteWorkflow:
    """Submit, approve and inspect through ``/graphql``."""

    def __init__(self, url: str, say: Callable[[str], None] = print, timeout_s: float = 30.0) -> None:
        parsed = urlparse(url if "://" in url else f"http://{url}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise DagsterApiError(f"--dagster-url {url!r} is not http(s)://host:port")
        self.url = f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}/graphql"
        self.say = say
        self.timeout_s = timeout_s
        self._repo: dict[str, str] | None = None

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one GraphQL operation; errors name the webserver."""
        try:
            resp = requests.post(self.url, json={"query": query, "variables": variables or {}}, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise DagsterApiError(f"cannot reach the Dagster webserver at {self.url}: {exc.__class__.__name__}") \
                from None
        if resp.status_code != 200:
            raise DagsterApiError(f"Dagster webserver {self.url} answered HTTP {resp.status_code}: {resp.text[:300]}")
        body = resp.json()
        if body.get("errors"):
            raise DagsterApiError(f"GraphQL error from {self.url}: {body['errors'][0].get('message')}")
        data: dict[str, Any] = body["data"]
        return data

    def _repository(self) -> dict[str, str]:
        if self._repo is None:
            data = self.query(_REPOS)["repositoriesOrError"]
            if data["__typename"] != "RepositoryConnection":
                raise DagsterApiError(f"the webserver cannot load the code location: {data.get('message')}")
            for node in data["nodes"]:
                if any(job["name"] == "prepare_migration" for job in node["jobs"]):
                    self._repo = {"repositoryName": node["name"], "repositoryLocationName": node["location"]["name"]}
                    break
            else:
                raise DagsterApiError(f"no code location at {self.url} has the migration's jobs")
        return self._repo

    def launch(self, job: str, run_config: dict[str, Any] | None = None, tags: dict[str, str] | None = None) -> str:
        """Launch ``job``; returns its run id."""
        params = {"selector": {**self._repository(), "jobName": job}, "runConfigData": run_config or {},
                  "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}}
        result = self.query(_LAUNCH, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            detail = result.get("message") or "; ".join(e["message"] for e in result.get("errors", []))
            raise DagsterApiError(f"could not launch {job}: {result['__typename']}: {detail}")
        run_id: str = result["run"]["runId"]
        return run_id

    def run_job(self, job: str) -> None:
        """Launch ``job`` on the webserver's instance."""
        self.say(f"{job}: launched (run {self.launch(job)})")

    def submit(self, new_snapshot: bool = False) -> None:
        """Launch the prepare job (or a backfill of the shards left); the daemon's sensors take it from there."""
        from workflow_model import load_active

        plan = plan_submit(self.facts(), load_active(), new_snapshot)
        if plan.prepare:
            run_id = self.launch("prepare_migration")
            self.say(f"prepare_migration launched ({plan.reason}; run {run_id})")
            self.wait_for_run(run_id)
            return
        self.say(f"resume: {plan.reason}")
        if plan.shards:
            params = {"assetSelection": [_SHARD_ASSET], "partitionNames": list(plan.shards),
                      "title": f"workflow submit: {len(plan.shards)} shard(s) left"}
            result = self.query(_BACKFILL, {"params": params})["launchPartitionBackfill"]
            if result["__typename"] != "LaunchBackfillSuccess":
                raise DagsterApiError(f"could not launch the shard backfill: {result.get('message')}")
            self.say(f"backfill {result['backfillId']} launched for {', '.join(plan.shards)}")

    def wait_for_run(self, run_id: str, timeout_s: float = 6 * 3600) -> str:
        """Poll a run until it ends; returns its status."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = self.query(_RUN, {"runId": run_id})["runOrError"]
            status: str = run.get("status", "")
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                return status
            time.sleep(1)
        raise DagsterApiError(f"run {run_id} did not end within {timeout_s:.0f}s")

    def approve(self, gate: str, approved_by: str, ticket: str | None, decision: str) -> None:
        """Launch the gate's job with the decision."""
        from jobs import APPROVAL_JOBS

        run_id = self.launch(APPROVAL_JOBS[gate].name, approval_run_config(gate, approved_by, ticket, decision),
                             {"migration/approved_by": approved_by})
        self.say(f"{gate}: {decision} by {approved_by} launched (run {run_id})")

    def facts(self) -> Facts:
        """The same facts the in-process driver reads, from GraphQL."""
        keys = [{"path": [step.value]} for step in PHASES]
        data = self.query(_FACTS, {"keys": keys, "shards": _SHARD_ASSET})
        facts = Facts()
        for step in PHASES:
            facts.assets[step.value] = AssetFacts()
        for node in data["assetNodes"]:
            name = node["assetKey"]["path"][-1]
            events = node["assetMaterializations"]
            if events and name != Step.SHARD_BACKFILL:
                facts.assets[name].materialized_at = int(events[0]["timestamp"]) / 1000
                facts.assets[name].metadata = _metadata(events[0])
        for info in data["assetsLatestInfo"]:
            name = info["assetKey"]["path"][-1]
            run = info.get("latestRun")
            if info["inProgressRunIds"] or info["unstartedRunIds"]:
                facts.assets[name].latest_run_status = "STARTED"
            elif run:
                facts.assets[name].latest_run_status = run["status"]
                facts.assets[name].latest_run_id = run["id"]
        shards = data.get("shards") or {}
        statuses = shards.get("assetPartitionStatuses") or {}
        for field, state in (("materializedPartitions", "done"), ("failedPartitions", "failed"),
                             ("materializingPartitions", "running"), ("unmaterializedPartitions", "pending")):
            for key in statuses.get(field) or []:
                facts.partitions[key] = state
        for key in (k for k, state in facts.partitions.items() if state == "failed"):
            error = remote_outputs.last_error(self, key)
            if error:
                facts.shard_errors[key] = error
        for event in shards.get("assetMaterializations") or []:
            key = event.get("partition")
            if key in facts.partitions and key not in facts.shard_documents:  # newest first
                facts.shard_documents[key] = int(_metadata(event).get("documents") or 0)
        return facts

    def status(self) -> WorkflowStatus:
        """The workflow's status."""
        return summarize(self.facts())

    def log_lines(self, limit: int) -> list[tuple[str, str]]:
        """Recent events of the recent runs, oldest first."""
        runs = self.query(_RUNS, {"limit": 10})["runsOrError"].get("results", [])
        lines: list[tuple[float, str, str]] = []
        for run in runs:
            events = self.query(_LOGS, {"runId": run["runId"]})["logsForRun"].get("events", [])
            for n, event in enumerate(events):
                if not event.get("message") or event.get("level") == "DEBUG":
                    continue
                ts = int(event["timestamp"]) / 1000
                when = datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")
                lines.append((ts, f"{run['runId']}:{n}",
                              f"{when} {run['jobName']} {event.get('stepKey') or ''} {event['message']}".strip()))
        lines.sort()
        return [(i, line) for _, i, line in lines[-limit:]]

    def reset(self, clean_target: bool = True) -> str:
        """Wipe the phases' materializations and the shard partitions, after removing the workflow's state on the
        clusters (unless ``clean_target`` is False) as the cleanup step does; a summary of what was removed."""
        partitions = self.facts().partitions
        summary = "the clusters' state kept"
        if clean_target:
            summary = remove_workflow_state(self.phase_metadata(Step.SOURCE_SNAPSHOT.value),
                                            self.phase_metadata(Step.SNAPSHOT_REGISTRATION.value),
                                            sorted(k for k, s in partitions.items() if s == "running"))
        keys = list(partitions)
        if keys:
            result = self.query(_DELETE, {"keys": keys, "repo": self._repository()})["deleteDynamicPartitions"]
            if result["__typename"] == "PythonError":
                raise DagsterApiError(f"could not delete the shard partitions: {result['message']}")
        wiped = self.query(_WIPE, {"keys": [{"assetKey": {"path": [p.value]}} for p in PHASES]})["wipeAssets"]
        if wiped["__typename"] in ("PythonError", "UnauthorizedError"):
            raise DagsterApiError(f"could not wipe the workflow's assets: {wiped.get('message')}")
        return summary

    # What `workflow output`/`log PHASE` and `workflow manage` read (migration_pipeline/workflow/remote_outputs.py).

    def shards(self, keys: list[str] | None = None) -> list[ShardFacts]:
        """Each shard (or those of ``keys``): state, documents, documents/s."""
        return remote_outputs.shards(self, keys)

    def phase_metadata(self, phase: str) -> dict[str, Any]:
        """The metadata of the phase's last materialization ({} when it has none)."""
        return remote_outputs.phase_metadata(self, phase)

    def phase_log_lines(self, phase: PhaseRef, limit: int) -> list[tuple[str, str]]:
        """(unique id, line) of the phase's (or one shard's) run events, oldest first."""
        return remote_outputs.phase_log_lines(self, phase, limit)

    def shard_log(self, key: str, cursor: int = 0) -> LogChunk:
        """New lines of the shard worker's log: its file on this machine, else the run's captured stderr."""
        return remote_outputs.shard_log(self, key, cursor)
