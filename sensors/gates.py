"""The gates' sensors: the automation sensor that releases gated assets, and auto-approval of skipped gates."""

from __future__ import annotations

import os

import dagster as dg

from assets.approvals import AUTO_APPROVER, latest_record
from jobs import APPROVAL_JOBS, AUTOMATED_JOBS
from resources.workflow import WorkflowResource
from workers.common.errors import ConfigurationError
from workflow_model import WorkflowConfig
from workflow_model.steps import GATES

# How often (seconds) the daemon evaluates the gates' sensors, read when the code location loads. Each gate costs
# up to one interval after its approval (and the parity check one after the last shard), so the end-to-end tests
# of `dagster dev` set it lower; users keep the default. Dagster's daemon loops check at most every 5 seconds.
GATES_INTERVAL_ENV = "MIGRATION_GATES_SENSOR_INTERVAL_S"
DEFAULT_GATES_INTERVAL_S = 15


def gates_sensor_interval() -> int:
    """``$MIGRATION_GATES_SENSOR_INTERVAL_S`` (a whole number of seconds, at least 1), else 15."""
    raw = os.environ.get(GATES_INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_GATES_INTERVAL_S
    try:
        seconds = int(raw)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise ConfigurationError(f"{GATES_INTERVAL_ENV}={raw!r}: expected a whole number of seconds, at least 1")
    return seconds


# Only the gated assets and the parity check carry automation conditions; everything else is started by a person
# (workflow submit / approve) so that nothing moves without them.
migration_gates = dg.AutomationConditionSensorDefinition(
    "migration_gates",
    target=dg.AssetSelection.assets(*(step.value for step in AUTOMATED_JOBS)),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=gates_sensor_interval(),
    description="Starts each gated asset once its gate is approved, and the parity check once every shard is done.",
)


def due_auto_approvals(instance: dg.DagsterInstance, config: WorkflowConfig) -> list[tuple[str, int]]:
    """(gate, storage id to approve) for each gate the workflow approves itself (``approves_itself``: skipped by
    the config, or nothing to decide) whose subject changed since its last approval."""
    due = []
    for gate in GATES:
        if not config.approves_itself(gate.name):
            continue
        subject = latest_record(instance, gate.approves)
        if subject is None:
            continue
        last = latest_record(instance, gate.name)
        approved = None
        if last is not None and last.asset_materialization is not None:
            entry = last.asset_materialization.metadata.get("approves_storage_id")
            approved = entry.value if entry is not None else None
        if approved != subject.storage_id:
            due.append((gate.name, subject.storage_id))
    return due


def approval_run_config(gate: str, approved_by: str, ticket: str | None = None,
                        decision: str = "approve") -> dict[str, object]:
    """Run config of a gate job."""
    return {"ops": {gate: {"config": {"approved_by": approved_by, "ticket": ticket, "decision": decision}}}}


@dg.sensor(jobs=list(APPROVAL_JOBS.values()), default_status=dg.DefaultSensorStatus.RUNNING,
           minimum_interval_seconds=gates_sensor_interval(),
           description="Approves the gates the workflow config skips (approvals.skip / skip_all), on the record.")
def auto_approvals(context: dg.SensorEvaluationContext, workflow: WorkflowResource) -> dg.SensorResult | dg.SkipReason:
    """One approval run per new subject of a skipped gate."""
    path = workflow.path()
    if not path.is_file():
        return dg.SkipReason(f"no workflow config at {path}")
    requests = [
        dg.RunRequest(run_key=f"{gate}:{storage_id}", job_name=APPROVAL_JOBS[gate].name,
                      run_config=approval_run_config(gate, AUTO_APPROVER),
                      tags={"migration/approved_by": AUTO_APPROVER})
        for gate, storage_id in due_auto_approvals(context.instance, workflow.load())
    ]
    return dg.SensorResult(run_requests=requests) if requests else dg.SkipReason("no skipped gate is due")
