"""Outputs, shard facts and phase logs through a Dagster webserver's GraphQL API (the remote driver's side).

A shard's worker log is read from its file when the webserver's Dagster home is on this machine, else from the
run's captured stderr (``capturedLogs``), else the message says where to see it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from migration_pipeline.workflow.logs import shard_log_path
from migration_pipeline.workflow.outputs import (
    GRAPHQL_MILESTONES,
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    EventRec,
    LogChunk,
    RunRef,
    ShardFacts,
    event_in_phase,
    event_line,
    last_progress,
    pretty_log_line,
    read_log_file,
    run_in_phase,
    shard_facts,
    tail_lines,
)
from migration_pipeline.workflow.phases import PhaseRef
from workflow_model.steps import Step

if TYPE_CHECKING:
    from migration_pipeline.workflow.remote import RemoteWorkflow

_ENTRY = """fragment Entry on MetadataEntry { label __typename
  ... on TextMetadataEntry { text } ... on IntMetadataEntry { intValue } ... on FloatMetadataEntry { floatValue }
  ... on BoolMetadataEntry { boolValue } ... on JsonMetadataEntry { jsonString }
  ... on MarkdownMetadataEntry { mdStr } }"""

_SHARDS = """query Shards($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  assetPartitionStatuses { ... on DefaultPartitionStatuses {
    materializedPartitions failedPartitions materializingPartitions unmaterializedPartitions } }
  assetMaterializations(limit: 10000) { partition metadataEntries { ...Entry } } } } }
""" + _ENTRY

_META = """query Meta($keys: [AssetKeyInput!]!) { assetNodes(assetKeys: $keys) { assetKey { path }
  assetMaterializations(limit: 1) { metadataEntries { ...Entry } } } }
""" + _ENTRY

_RUNS = """query PhaseRuns($limit: Int, $filter: RunsFilter) { runsOrError(limit: $limit, filter: $filter) {
  __typename ... on Runs { results { runId jobName status creationTime assetSelection { path } tags { key value } } }
  ... on PythonError { message } } }"""

_EVENTS = """query Events($runId: ID!) { logsForRun(runId: $runId) { __typename ... on EventConnection { events {
  __typename ... on MessageEvent { message timestamp level stepKey } ... on LogsCapturedEvent { fileKey stepKeys }
} } } }"""

_FAILURES = """query Failures($runId: ID!) { logsForRun(runId: $runId) { __typename ... on EventConnection { events {
  __typename ... on ExecutionStepFailureEvent { error { message cause { message } } } } } } }"""

_CAPTURED = """query Captured($runId: ID!, $fileKey: String!) { runOrError(runId: $runId) { __typename
  ... on Run { capturedLogs(fileKey: $fileKey) { stdout stderr } } } }"""

_RECENT_RUNS = 100
_STATES = (("materializedPartitions", "done"), ("failedPartitions", "failed"),
           ("materializingPartitions", "running"), ("unmaterializedPartitions", "pending"))


def _metadata(event: dict[str, Any]) -> dict[str, Any]:
    from migration_pipeline.workflow.remote import _metadata as metadata

    return metadata(event)


def phase_metadata(wf: RemoteWorkflow, phase: str) -> dict[str, Any]:
    """The metadata of the phase's last materialization ({} when it has none)."""
    for node in wf.query(_META, {"keys": [{"path": [phase]}]})["assetNodes"]:
        events = node["assetMaterializations"]
        if events:
            return _metadata(events[0])
    return {}


def shards(wf: RemoteWorkflow, keys: list[str] | None = None) -> list[ShardFacts]:
    """Every shard partition (or ``keys``): state, documents, documents/s."""
    node = wf.query(_SHARDS, {"key": {"path": [Step.SHARD_BACKFILL.value]}}).get("assetNodeOrError") or {}
    statuses = node.get("assetPartitionStatuses") or {}
    states: dict[str, str] = {}
    for name, state in _STATES:
        for key in statuses.get(name) or []:
            states[key] = state
    latest: dict[str, dict[str, Any]] = {}
    for event in node.get("assetMaterializations") or []:
        key = event.get("partition")
        if key and key not in latest:  # newest first
            latest[key] = _metadata(event)
    out = []
    for key in sorted(states):
        if keys is not None and key not in keys:
            continue
        live = None
        if states[key] == "running":
            path = shard_log_path(key)
            live = last_progress(tail_lines(path) if path.is_file() else shard_log(wf, key).lines)
        out.append(shard_facts(key, states[key], latest.get(key, {}), live))
    return out


def _refs(wf: RemoteWorkflow, tags: dict[str, str] | None, limit: int | None) -> list[tuple[float, RunRef]]:
    variables: dict[str, Any] = {"limit": limit}
    if tags:
        variables["filter"] = {"tags": [{"key": k, "value": v} for k, v in tags.items()]}
    data = wf.query(_RUNS, variables)["runsOrError"]
    out = []
    for run in data.get("results") or []:
        selection = run.get("assetSelection")
        assets = {"/".join(k["path"]) for k in selection} if selection else None
        ref = RunRef(run["runId"], run["jobName"], assets, {t["key"]: t["value"] for t in run.get("tags") or []},
                     run.get("status") or "")
        out.append((float(run.get("creationTime") or 0), ref))
    return out


def _phase_runs(wf: RemoteWorkflow, phase: PhaseRef) -> list[RunRef]:
    """The phase's candidate runs, newest first."""
    if phase.shard is None:
        found = _refs(wf, None, _RECENT_RUNS)
    else:
        found = _refs(wf, {PARTITION_TAG: phase.shard}, None) + _refs(
            wf, {RANGE_START_TAG: phase.shard, RANGE_END_TAG: phase.shard}, None)
    found.sort(key=lambda item: -item[0])
    return [ref for _, ref in found]


def last_error(wf: RemoteWorkflow, key: str) -> str | None:
    """The error of the last failed step of the shard's newest run."""
    runs = _phase_runs(wf, PhaseRef(Step.SHARD_BACKFILL.value, key))
    if not runs:
        return None
    events = wf.query(_FAILURES, {"runId": runs[0].run_id})["logsForRun"].get("events") or []
    failures = [e["error"] for e in events if e.get("error")]
    if not failures:
        return None
    error = failures[-1]
    # Dagster wraps the asset's own error in its own: the cause is the one that says what happened.
    while error.get("cause") and str(error.get("message", "")).startswith("dagster._core.errors.DagsterExecutionStep"):
        error = error["cause"]
    return str(error.get("message") or "").strip()


def _events(wf: RemoteWorkflow, run_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = wf.query(_EVENTS, {"runId": run_id})["logsForRun"].get("events") or []
    return events


def _recs(events: list[dict[str, Any]]) -> list[tuple[int, EventRec]]:
    return [(n, EventRec(int(e["timestamp"]) / 1000, e.get("stepKey"), e["message"])) for n, e in enumerate(events)
            if e.get("message") and (e.get("level") != "DEBUG" or e.get("__typename") in GRAPHQL_MILESTONES)]


def phase_log_lines(wf: RemoteWorkflow, phase: PhaseRef, limit: int) -> list[tuple[str, str]]:
    """(unique id, line) of the phase's run events, oldest first."""
    lines: list[tuple[float, str, str]] = []
    for ref in _phase_runs(wf, phase):
        if (phase.shard is not None or ref.assets is not None) and not run_in_phase(ref, phase):
            continue
        events = _recs(_events(wf, ref.run_id))
        if ref.assets is None and not run_in_phase(ref, phase, [e for _, e in events]):
            continue
        lines += [(e.timestamp, f"{ref.run_id}:{n}", event_line(ref, e)) for n, e in events
                  if event_in_phase(phase, e)]
    lines.sort()
    return [(i, line) for _, i, line in lines[-limit:]]


def _captured(wf: RemoteWorkflow, run_id: str) -> list[str] | None:
    """The shard step's captured stderr (stdout when stderr is empty), or None when Dagster kept none."""
    file_keys = [e["fileKey"] for e in _events(wf, run_id)
                 if e.get("__typename") == "LogsCapturedEvent" and e.get("fileKey")
                 and (not e.get("stepKeys") or Step.SHARD_BACKFILL in e["stepKeys"])]
    if not file_keys:
        return None
    run = wf.query(_CAPTURED, {"runId": run_id, "fileKey": file_keys[-1]})["runOrError"]
    logs = run.get("capturedLogs") or {}
    text = logs.get("stderr") or logs.get("stdout") or ""
    # Dagster's console logger writes the run's debug events to the same stream.
    return [pretty_log_line(line) for line in text.splitlines() if " - dagster - DEBUG - " not in line]


def shard_log(wf: RemoteWorkflow, key: str, cursor: int = 0) -> LogChunk:
    """New lines of the shard worker's log since ``cursor`` (bytes of the file, or lines of the captured log)."""
    path = shard_log_path(key)
    if path.is_file():
        lines, new_cursor = read_log_file(path, cursor)
        return LogChunk(lines, new_cursor, str(path))
    runs = _phase_runs(wf, PhaseRef(Step.SHARD_BACKFILL.value, key))
    if not runs:
        return LogChunk([], cursor, "", f"shard {key} has not run yet")
    run_id = runs[0].run_id
    where = f"{wf.url.removesuffix('/graphql')}/runs/{run_id}"
    captured = _captured(wf, run_id)
    if captured is None:
        return LogChunk([], cursor, where, f"the webserver kept no captured log for shard {key}'s run {run_id}; "
                                           f"see the run in the Dagster UI: {where}")
    return LogChunk(captured[cursor:], len(captured), f"captured stderr of run {run_id} ({where})")
