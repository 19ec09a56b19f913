"""Outputs, shard facts and phase logs read straight from a Dagster instance (the in-process driver's side)."""

from __future__ import annotations

import logging
from typing import Any

import dagster as dg

from assets.approvals import latest_record, metadata_of
from migration_pipeline.workflow.logs import shard_log_path
from migration_pipeline.workflow.outputs import (
    MILESTONES,
    RANGE_END_TAG,
    RANGE_START_TAG,
    EventRec,
    LogChunk,
    RunRef,
    ShardFacts,
    event_in_phase,
    event_line,
    last_progress,
    read_log_file,
    run_in_phase,
    shard_facts,
    tail_lines,
)
from migration_pipeline.workflow.phases import PhaseRef
from workflow_model.steps import Step

_STATES = {"MATERIALIZED": "done", "FAILED": "failed", "IN_PROGRESS": "running"}
_RECENT_RUNS = 100


def shards(instance: dg.DagsterInstance, keys: list[str] | None = None) -> list[ShardFacts]:
    """Every shard partition (or ``keys``): state, documents, documents/s."""
    from assets.partitions import SHARDS

    known = instance.get_dynamic_partitions("shards")
    wanted = [k for k in known if keys is None or k in keys]
    shard_key = dg.AssetKey(Step.SHARD_BACKFILL.value)
    statuses = instance.get_status_by_partition(shard_key, wanted, SHARDS) or {}
    out = []
    for key in wanted:
        status = statuses.get(key)
        state = _STATES.get(status.value, "pending") if status is not None else "pending"
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=shard_key, asset_partitions=[key]), limit=1).records
        metadata = metadata_of(records[0]) if records else {}
        live = last_progress(tail_lines(shard_log_path(key))) if state == "running" else None
        out.append(shard_facts(key, state, metadata, live))
    return out


def phase_metadata(instance: dg.DagsterInstance, phase: str) -> dict[str, Any]:
    """The metadata of the phase's last materialization ({} when it has none)."""
    record = latest_record(instance, phase)
    return metadata_of(record) if record is not None else {}


def _ref(run: dg.DagsterRun) -> RunRef:
    assets = {k.to_user_string() for k in run.asset_selection} if run.asset_selection else None
    return RunRef(run.run_id, run.job_name, assets, dict(run.tags), run.status.value)


def _events(instance: dg.DagsterInstance, run_id: str) -> list[tuple[int, EventRec]]:
    out = []
    for n, entry in enumerate(instance.all_logs(run_id)):
        level = entry.level if isinstance(entry.level, int) else logging.getLevelName(entry.level)
        milestone = entry.is_dagster_event and entry.dagster_event_type is not None \
            and entry.dagster_event_type.value in MILESTONES
        if not entry.message or not (milestone or (isinstance(level, int) and level >= logging.INFO)):
            continue
        out.append((n, EventRec(entry.timestamp, entry.step_key, entry.message)))
    return out


def _runs(instance: dg.DagsterInstance, phase: PhaseRef) -> list[dg.DagsterRun]:
    if phase.shard is None:
        return list(instance.get_runs(limit=_RECENT_RUNS))
    by_key = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": phase.shard}))
    by_range = instance.get_runs(filters=dg.RunsFilter(tags={RANGE_START_TAG: phase.shard,
                                                             RANGE_END_TAG: phase.shard}))
    return [*by_key, *by_range]


def phase_log_lines(instance: dg.DagsterInstance, phase: PhaseRef, limit: int) -> list[tuple[str, str]]:
    """(unique id, line) of the phase's run events, oldest first."""
    lines: list[tuple[float, str, str]] = []
    for run in _runs(instance, phase):
        ref = _ref(run)
        if (phase.shard is not None or ref.assets is not None) and not run_in_phase(ref, phase):
            continue
        events = _events(instance, run.run_id)
        if ref.assets is None and not run_in_phase(ref, phase, [e for _, e in events]):
            continue
        lines += [(e.timestamp, f"{run.run_id}:{n}", event_line(ref, e)) for n, e in events
                  if event_in_phase(phase, e)]
    lines.sort()
    return [(i, line) for _, i, line in lines[-limit:]]


def shard_log(key: str, cursor: int = 0) -> LogChunk:
    """New lines of the shard worker's log file since ``cursor``."""
    path = shard_log_path(key)
    if not path.is_file():
        return LogChunk([], cursor, str(path), f"no worker log at {path} yet: shard {key} has not run in this "
                                               "Dagster home (its run events: `workflow log " + key + "`)")
    lines, new_cursor = read_log_file(path, cursor)
    return LogChunk(lines, new_cursor, str(path))
