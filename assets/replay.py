"""The replay phase: the captured traffic applied to the target until it has caught up (``workers/replay/``)."""

# No "from __future__ import annotations": Dagster inspects the context annotation at definition time.

import base64
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg

from assets.partitions import GROUP
from resources.replayer import kafka_security, replayer_args, replayer_group
from resources.workflow import WorkflowResource
from workers.replay.catchup import CatchUpError, LagPoint, wait_for_catch_up
from workers.validate.plots import lag_plot
from workflow_model.steps import REPLAY_FOLLOWS, Step


def _lag_plot(points: list[LagPoint]) -> dg.MetadataValue:
    with tempfile.TemporaryDirectory() as folder:
        path = lag_plot([(p.time, float(p.lag)) for p in points], Path(folder) / "lag.png")
        data = base64.b64encode(path.read_bytes()).decode()
    return dg.MetadataValue.md(f"![replay lag (records)](data:image/png;base64,{data})")


@dg.asset(name=Step.REPLAY_CATCHUP.value, group_name=GROUP, deps=[dg.AssetKey(REPLAY_FOLLOWS.value)],
          kinds={"kafka"},
          automation_condition=(dg.AutomationCondition.any_deps_updated().since_last_handled()
                                & ~dg.AutomationCondition.any_deps_missing()
                                & ~dg.AutomationCondition.any_deps_in_progress()
                                & ~dg.AutomationCondition.in_progress()),
          description="The capture topic replayed onto the target by the replayer group until the lag has stayed "
                      "under the threshold; the replayers keep running afterwards (until the cutover).")
def replay_catchup(context: dg.AssetExecutionContext, source_snapshot: dict[str, Any],
                   workflow: WorkflowResource) -> dg.MaterializeResult:
    """Start (or keep) the replayer group and wait until the target has caught up with the captured traffic."""
    config = workflow.load()
    replay = config.replay
    if not replay.enabled:
        context.log.info("replay is off (replay.enabled is false): nothing to catch up")
        return dg.MaterializeResult(metadata={"replay": dg.MetadataValue.text("off")})
    args = replayer_args(config, source_snapshot, workflow)
    group = replayer_group(config, workflow)
    members = group.start(replay.replicas, args)
    context.log.info(f"replayer group {replay.group_id}: {len(members)} member(s) running, from "
                     f"{source_snapshot.get('start_time_ms') or 'the topic beginning'}")
    security = kafka_security(config)

    def progress(point: LagPoint) -> None:
        context.log.info(f"replay lag: {point.lag} records"
                         + (f" ({point.time_lag_s:.1f}s)" if point.time_lag_s is not None else "")
                         + f", {point.documents_per_s:.0f} docs/s, {point.alive} replayer(s)")

    try:
        caught = wait_for_catch_up(lambda: group.status(replay.kafka_brokers, replay.topic, security),
                                   threshold=replay.lag_threshold, steady_s=replay.steady_s,
                                   timeout_s=replay.timeout_s, progress=progress)
    except CatchUpError as exc:
        raise dg.Failure(str(exc)) from None
    totals = caught.last.get("totals", {})
    comparisons: dict[str, int] = {}
    for member in caught.last.get("members", []):
        for kind, count in (member.get("status") or {}).get("stats", {}).get("comparisons", {}).items():
            comparisons[kind] = comparisons.get(kind, 0) + int(count)
    metadata: dict[str, Any] = {
        "lag_records": dg.MetadataValue.int(int(totals.get("total_lag", 0))),
        "time_lag_s": dg.MetadataValue.float(float(totals.get("time_lag_s") or 0.0)),
        "transactions": dg.MetadataValue.int(int(totals.get("transactions", 0))),
        "documents": dg.MetadataValue.int(int(totals.get("documents", 0))),
        "documents_per_s": dg.MetadataValue.float(float(totals.get("documents_per_s", 0.0))),
        "dead_letters": dg.MetadataValue.int(int(totals.get("dead_letters", 0))),
        "comparisons": dg.MetadataValue.json(comparisons),
        "mismatches": dg.MetadataValue.int(sum(v for k, v in comparisons.items() if k != "match")),
        "replayers": dg.MetadataValue.int(int(totals.get("alive", 0))),
        "wait_s": dg.MetadataValue.float(round(caught.seconds, 1)),
        "lag_history": dg.MetadataValue.json([[round(p.time, 1), p.lag] for p in caught.points[-500:]]),
    }
    metadata["lag_plot"] = _lag_plot(caught.points)
    return dg.MaterializeResult(metadata=metadata)

