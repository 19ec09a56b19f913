"""The back-out: live traffic moved back to the source, the cutover's sequence the other way."""

# No "from __future__ import annotations": Dagster inspects the context annotation at definition time.
import dagster as dg

from resources.cutover import proxy_admins, switch_metadata
from resources.replayer import kafka_security
from resources.workflow import WorkflowResource
from workers.common.errors import MigrationError
from workflow_model.steps import Step


@dg.op(description="Traffic moved back to the source once the reverse replayer applied every write made on the "
                   "target; recorded as a materialization of the cutover asset (side: source).")
def backout_traffic(context: dg.OpExecutionContext, workflow: WorkflowResource) -> None:
    """The switch sequence the other way."""
    from workers.cutover.sequence import CutoverAborted, backout

    config = workflow.load()
    if not config.cutover_enabled:
        raise dg.Failure("nothing to back out: the cutover is off (replay.enabled false or no "
                         "cutover.proxy_admin_urls)")
    replay, settings = config.replay, config.cutover
    try:
        result = backout(proxy_admins(config), brokers=replay.kafka_brokers, group=settings.reverse_group_id,
                         topic=settings.reverse_topic_of(replay.topic), kafka_config=kafka_security(config),
                         drain_timeout_s=settings.drain_timeout_s, max_hold_s=settings.max_hold_s,
                         progress=context.log.info)
    except CutoverAborted as exc:
        raise dg.Failure(f"back-out aborted, traffic stays on the target: {exc}") from None
    except MigrationError as exc:
        raise dg.Failure(f"back-out: {exc}") from None
    context.log.info(f"back-out done: writes held {result.hold_s:.2f}s (drain {result.drain_s:.2f}s)")
    # Recorded on the cutover asset: its newest materialization is the switch's state, whichever way it went.
    context.log_event(dg.AssetMaterialization(asset_key=Step.CUTOVER.value, metadata=switch_metadata(result)))


@dg.job(name="backout", tags={"migration/phase": "backout"},
        description="Move live traffic back to the source (the cutover's sequence the other way); the forward "
                    "replayers carry on from where they were for a later cutover.")
def backout_job() -> None:
    """One op."""
    backout_traffic()
