"""The workflow run in this process against ``$DAGSTER_HOME``, with no webserver or daemon.

The daemon's two sensors are stood in for by ``advance``: it makes the approvals the config skips and then asks
the same automation conditions the ``migration_gates`` sensor evaluates what to run, so both modes follow one rule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from assets.approvals import AUTO_APPROVAL_REASON, AUTO_APPROVER, metadata_of
from jobs import AUTOMATED_JOBS
from migration_pipeline.workflow import local_outputs
from migration_pipeline.workflow.instance import runs_configure_logging
from migration_pipeline.workflow.logs import shard_log_path, shard_logs_dir
from migration_pipeline.workflow.observer import SayObserver, ShardRunEnd, WorkflowObserver
from migration_pipeline.workflow.outputs import LogChunk, ShardFacts
from migration_pipeline.workflow.phases import PhaseRef
from migration_pipeline.workflow.resume import plan_submit
from migration_pipeline.workflow.status import AssetFacts, Facts, WorkflowStatus, summarize
from migration_pipeline.workflow.target_state import remove_workflow_state
from sensors.gates import approval_run_config, due_auto_approvals
from workers.common.errors import MigrationError
from workflow_model import active_config_path, load_active
from workflow_model.steps import PHASES, Step

Say = Callable[[str], None]
# The CLI reports a failed step in one line of its own; Dagster's console logger would add the traceback.
_QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
_SHARD_JOB = AUTOMATED_JOBS[Step.SHARD_BACKFILL].name


class WorkflowError(MigrationError):
    """A phase of the workflow failed; the message names it."""


def _definitions() -> dg.Definitions:
    from migration_pipeline.definitions import defs

    return defs


class LocalWorkflow:
    """Submit, approve, advance and inspect the workflow in-process."""

    def __init__(self, instance: dg.DagsterInstance, say: Say = print, observer: WorkflowObserver | None = None,
                 worker_logs_on_stderr: bool = False) -> None:
        self.instance = instance
        self.say = say
        self.observer = observer or SayObserver(say)
        self.defs = _definitions()
        # Each shard worker writes its log file (`workflow output SHARD` reads it); on stderr only when asked, since
        # its lines would interleave with the CLI's own.
        self._worker_resource = {"shard_worker": {"config": {"log_dir": str(shard_logs_dir()),
                                                             "log_stderr": worker_logs_on_stderr}}}

    @property
    def _cursor_path(self) -> Path:
        return active_config_path().parent / "automation.cursor"

    def _execute(self, job: str, *, run_config: dict[str, Any] | None = None, partition_key: str | None = None,
                 tags: dict[str, str] | None = None) -> dg.ExecuteInProcessResult:
        config: dict[str, Any] = {**_QUIET, **(run_config or {})}
        job_def = self.defs.resolve_job_def(job)
        if "shard_worker" in job_def.resource_defs:
            config["resources"] = self._worker_resource
        result = job_def.execute_in_process(
            instance=self.instance, run_config=config, partition_key=partition_key, tags=tags, raise_on_error=False)
        if partition_key is None:
            self._report_steps(result)
        if not result.success:
            failure = next((e for e in result.all_events if e.is_step_failure), None)
            reason = _failure_reason(failure.step_failure_data.error) if failure and failure.step_failure_data \
                and failure.step_failure_data.error else "see the run's logs"
            if job_def.name == _SHARD_JOB and partition_key:
                reason += f"; the worker's log: {shard_log_path(partition_key)}"
            where = f" [{partition_key}]" if partition_key else ""
            raise WorkflowError(f"{job}{where} failed (run {result.run_id}): {reason}")
        return result

    def submit(self, new_snapshot: bool = False) -> None:
        """Take the snapshot and evaluate the metadata (or resume what is left), then go as far as approvals allow."""
        config = load_active()
        config.require_secrets()
        plan = plan_submit(self.facts(), config, new_snapshot)
        if plan.prepare:
            self.say(f"prepare: snapshot and metadata evaluation ({plan.reason}) ...")
            self._execute("prepare_migration")
        else:
            self.say(f"resume: {plan.reason}")
            if plan.shards:
                self._backfill(list(plan.shards))
        self.advance()

    def approve(self, gate: str, approved_by: str, ticket: str | None = None, decision: str = "approve") -> None:
        """Record a decision on ``gate`` and continue the workflow."""
        from jobs import APPROVAL_JOBS

        if gate not in APPROVAL_JOBS:
            raise WorkflowError(f"unknown gate {gate!r}; gates: {', '.join(APPROVAL_JOBS)}")
        self._execute(APPROVAL_JOBS[gate].name, run_config=approval_run_config(gate, approved_by, ticket, decision),
                      tags={"migration/approved_by": approved_by})
        self.say(f"{gate}: {decision} recorded for {approved_by}")
        self.advance()

    def run_job(self, job: str) -> None:
        """Run ``job`` in this process (a WorkflowError when it fails)."""
        self._execute(job)
        self.say(f"{job}: done")

    def _load_cursor(self) -> Any:
        path = self._cursor_path
        return dg.deserialize_value(path.read_text()) if path.is_file() else None

    def _save_cursor(self, cursor: Any) -> None:
        path = self._cursor_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dg.serialize_value(cursor))

    def advance(self) -> None:
        """Run whatever the approvals and automation conditions allow now, until nothing more is due."""
        from jobs import APPROVAL_JOBS

        while True:
            # Evaluate first: the first evaluation is the baseline "updated" is measured from, so it must come
            # before the approvals it is meant to notice.
            result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance,
                                                       cursor=self._load_cursor())
            self._save_cursor(result.cursor)
            try:
                self._run_requested(result)
            except WorkflowError:
                # One more evaluation consumes "requested last time"; left pending it would also mask (as already
                # handled) the next approval, which the next command's first evaluation would see with it.
                self._save_cursor(dg.evaluate_automation_conditions(
                    defs=self.defs, instance=self.instance, cursor=self._load_cursor()).cursor)
                raise
            due = due_auto_approvals(self.instance, load_active())
            for gate, _ in due:
                self.say(f"{gate}: approved by the workflow config ({AUTO_APPROVAL_REASON})")
                self._execute(APPROVAL_JOBS[gate].name, run_config=approval_run_config(gate, AUTO_APPROVER),
                              tags={"migration/approved_by": AUTO_APPROVER})
            if not result.total_requested and not due:
                return

    def _run_requested(self, result: Any) -> None:
        for step, job in AUTOMATED_JOBS.items():
            key = dg.AssetKey(step.value)
            if step == Step.SHARD_BACKFILL:
                partitions = sorted(k for k in result.get_requested_partitions(key) if k)
                if partitions:
                    self._backfill(partitions)
            elif result.get_num_requested(key):
                self.say(f"{step} ...")
                self._execute(job.name)

    def _report_steps(self, result: dg.ExecuteInProcessResult) -> None:
        metadata = {event.step_key: {k: v.value for k, v in
                                     event.step_materialization_data.materialization.metadata.items()}
                    for event in result.get_asset_materialization_events()}
        for stat in self.instance.get_run_step_stats(result.run_id):
            if stat.start_time and stat.end_time:
                self.observer.step_finished(stat.step_key, stat.end_time - stat.start_time,
                                            metadata.get(stat.step_key, {}))

    def shard_parallelism(self) -> int:
        """Shard runs at once: the limit of the shard asset's pool, as ``dagster dev``'s run queue applies it."""
        if runs_configure_logging(self.instance):
            return 1
        pool = self.defs.resolve_assets_def(Step.SHARD_BACKFILL.value).op.pool
        if pool and pool in self.instance.event_log_storage.get_concurrency_keys():
            return max(1, self.instance.event_log_storage.get_concurrency_info(pool).slot_count)
        return max(1, self.instance.get_concurrency_config().pool_config.default_pool_limit or 1)

    def _backfill_one(self, key: str) -> ShardRunEnd:
        self.observer.shard_started(key)
        try:
            run = self._execute(_SHARD_JOB, partition_key=key)
            outcome = ShardRunEnd(key, _materialization_metadata(run, Step.SHARD_BACKFILL.value))
        except WorkflowError as exc:
            outcome = ShardRunEnd(key, {}, str(exc))
        self.observer.shard_finished(outcome)
        return outcome

    def _backfill(self, partitions: list[str]) -> None:
        parallel = min(self.shard_parallelism(), len(partitions))
        self.observer.backfill_started(partitions, parallel)
        try:
            # Threads, not processes: each shard's work is its worker subprocess; a run's own bookkeeping is small.
            with ThreadPoolExecutor(parallel, thread_name_prefix="shard") as pool:
                outcomes = list(pool.map(self._backfill_one, partitions))
        finally:
            self.observer.backfill_finished()
        failed = [o.key for o in outcomes if o.error]
        if failed:
            raise WorkflowError(f"{len(failed)} shard(s) failed: {', '.join(failed)}; "
                                "`workflow submit` again runs the missing ones")

    def facts(self) -> Facts:
        """What the instance records of every phase."""
        facts = Facts()
        records = {r.asset_entry.asset_key.to_user_string(): r.asset_entry
                   for r in self.instance.get_asset_records([dg.AssetKey(p.value) for p in PHASES])}
        for step in PHASES:
            name = step.value
            entry = records.get(name)
            asset = AssetFacts()
            if entry is not None:
                mat = entry.last_materialization_record
                if mat is not None and mat.asset_materialization is not None and step != Step.SHARD_BACKFILL:
                    asset.materialized_at = mat.timestamp
                    asset.metadata = metadata_of(mat)
                run_id = entry.last_planned_materialization_run_id or entry.last_run_id
                run = self.instance.get_run_by_id(run_id) if run_id else None
                if run is not None and step != Step.SHARD_BACKFILL:
                    asset.latest_run_id, asset.latest_run_status = run.run_id, run.status.value
            facts.assets[name] = asset
        keys = self.instance.get_dynamic_partitions("shards")
        from assets.partitions import SHARDS

        shard_key = dg.AssetKey(Step.SHARD_BACKFILL.value)
        statuses = self.instance.get_status_by_partition(shard_key, keys, SHARDS) or {}
        names = {"MATERIALIZED": "done", "FAILED": "failed", "IN_PROGRESS": "running"}
        for key in keys:
            status = statuses.get(key)
            facts.partitions[key] = names.get(status.value, "pending") if status is not None else "pending"
        for key in (k for k, state in facts.partitions.items() if state == "failed"):
            error = self._last_error(key)
            if error:
                facts.shard_errors[key] = error
        for key in keys:
            records_ = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=shard_key, asset_partitions=[key]),
                limit=1).records
            if records_ and records_[0].asset_materialization is not None:
                docs = records_[0].asset_materialization.metadata.get("documents")
                facts.shard_documents[key] = int(docs.value) if docs is not None else 0  # type: ignore[arg-type]
        return facts

    def status(self) -> WorkflowStatus:
        """The workflow's status."""
        return summarize(self.facts())

    def _last_error(self, key: str) -> str | None:
        """The error of the last failed step of the shard's newest run."""
        runs = self.instance.get_runs(dg.RunsFilter(job_name=_SHARD_JOB, tags={"dagster/partition": key}), limit=1)
        if not runs:
            return None
        failures = self.instance.all_logs(runs[0].run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        event = failures[-1].dagster_event if failures else None
        data = event.step_failure_data if event is not None else None
        return _failure_reason(data.error) if data is not None and data.error is not None else None

    def log_lines(self, limit: int) -> list[tuple[str, str]]:
        """Recent events of the recent runs, oldest first (debug events left out)."""
        lines: list[tuple[float, str, str]] = []
        for run in self.instance.get_runs(limit=10):
            for n, entry in enumerate(self.instance.all_logs(run.run_id)):
                level = entry.level if isinstance(entry.level, int) else logging.getLevelName(entry.level)
                if not isinstance(level, int) or level < logging.INFO or not entry.message:
                    continue
                when = datetime.fromtimestamp(entry.timestamp, UTC).strftime("%H:%M:%S")
                lines.append((entry.timestamp, f"{run.run_id}:{n}",
                              f"{when} {run.job_name} {entry.step_key or ''} {entry.message}".strip()))
        lines.sort()
        return [(i, line) for _, i, line in lines[-limit:]]

    def reset(self, clean_target: bool = True) -> str:
        """Forget the workflow's runs and shard partitions, after removing its state on the clusters (unless
        ``clean_target`` is False) as the cleanup step does; a summary of what was removed."""
        summary = "the clusters' state kept"
        if clean_target:
            running = sorted(k for k, s in self.facts().partitions.items() if s == "running")
            summary = remove_workflow_state(self.phase_metadata(Step.SOURCE_SNAPSHOT.value),
                                            self.phase_metadata(Step.SNAPSHOT_REGISTRATION.value), running)
        for key in self.instance.get_dynamic_partitions("shards"):
            self.instance.delete_dynamic_partition("shards", key)
        for step in PHASES:
            self.instance.wipe_assets([dg.AssetKey(step.value)])
        self._cursor_path.unlink(missing_ok=True)
        return summary

    # What `workflow output`/`log PHASE` and `workflow manage` read (migration_pipeline/workflow/local_outputs.py).

    def shards(self, keys: list[str] | None = None) -> list[ShardFacts]:
        """Each shard (or those of ``keys``): state, documents, documents/s."""
        return local_outputs.shards(self.instance, keys)

    def phase_metadata(self, phase: str) -> dict[str, Any]:
        """The metadata of the phase's last materialization ({} when it has none)."""
        return local_outputs.phase_metadata(self.instance, phase)

    def phase_log_lines(self, phase: PhaseRef, limit: int) -> list[tuple[str, str]]:
        """(unique id, line) of the phase's (or one shard's) run events, oldest first."""
        return local_outputs.phase_log_lines(self.instance, phase, limit)

    def shard_log(self, key: str, cursor: int = 0) -> LogChunk:
        """New lines of the shard worker's log file since ``cursor``."""
        return local_outputs.shard_log(key, cursor)


def _failure_reason(error: Any) -> str:
    """The innermost message of a step failure's error chain: Dagster wraps the asset's own error in its own."""
    while error.cause is not None and error.message.startswith("dagster._core.errors.DagsterExecutionStep"):
        error = error.cause
    return str(error.message).strip().removeprefix("dagster._core.errors.")


def _materialization_metadata(run: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    for event in run.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        if mat.asset_key == dg.AssetKey(asset):
            return {k: v.value for k, v in mat.metadata.items()}
    return {}
