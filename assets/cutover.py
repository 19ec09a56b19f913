"""The cutover: live traffic moved from the source to the target by the capture proxies' switch, once the replayer
has applied every captured write; and the back-out job that moves it back.

Before switching, the reverse replayer group starts on the reverse topic (what clients will send to the target),
pointed at the source: after the cutover it keeps the source current, so that a back-out loses no write. The switch's
state is this asset's newest materialization: the cutover's (``side: target``) or the back-out's (``side: source``;
the ``backout`` job, ``jobs/backout.py``, records one too).
"""

# No "from __future__ import annotations": Dagster inspects the context annotation at definition time.
import dagster as dg

from assets.approvals import GATE_ASSETS, gated, releasing, require_approval
from assets.partitions import GROUP
from resources.cutover import proxy_admins, switch_metadata
from resources.replayer import kafka_security, reverse_replayer_args, reverse_replayer_group
from resources.workflow import WorkflowResource
from workers.common.clusters import build_client
from workers.common.errors import MigrationError
from workflow_model.steps import Step

_GATE = releasing(Step.CUTOVER)


@dg.asset(name=Step.CUTOVER.value, group_name=GROUP, deps=[GATE_ASSETS[_GATE.step]],
          automation_condition=gated(_GATE), kinds={"kafka"},
          description="Live traffic switched to the target by the capture proxies once the replayer applied every "
                      "captured write (writes held meanwhile, reads flowing); the reverse replayer then keeps the "
                      "source current for a back-out. Nothing to do without capture and replay.")
def cutover(context: dg.AssetExecutionContext, workflow: WorkflowResource) -> dg.MaterializeResult:
    """Start the reverse replayers, then run the switch sequence (``workers.cutover.sequence``)."""
    from workers.cutover.sequence import CutoverAborted
    from workers.cutover.sequence import cutover as switch_to_target
    from workers.cutover.source_side import ensure_reverse_topic, restore_types

    require_approval(context.instance, _GATE)
    config = workflow.load()
    if not config.cutover_enabled:
        context.log.info("cutover is off (replay.enabled false or no cutover.proxy_admin_urls): point the clients "
                         "at the target yourself (docs/cutover.md)")
        return dg.MaterializeResult(metadata={"switch": dg.MetadataValue.text("off"),
                                              "side": dg.MetadataValue.text("source")})
    config.require_secrets()
    replay, settings = config.replay, config.cutover
    security = kafka_security(config)
    proxies = proxy_admins(config)
    reverse_topic = settings.reverse_topic_of(replay.topic)
    try:
        if ensure_reverse_topic(replay.kafka_brokers, security, replay.topic, reverse_topic):
            context.log.info(f"created the reverse topic {reverse_topic}")
        types = restore_types(build_client(config.source.connection()))
        group = reverse_replayer_group(config, workflow)
        members = group.start(replay.replicas, reverse_replayer_args(config, workflow, types))
        context.log.info(f"reverse replayer group {settings.reverse_group_id}: {len(members)} member(s) on "
                         f"{reverse_topic} -> the source")
        result = switch_to_target(proxies, brokers=replay.kafka_brokers, group=replay.group_id, topic=replay.topic,
                                  kafka_config=security, drain_timeout_s=settings.drain_timeout_s,
                                  max_hold_s=settings.max_hold_s, progress=context.log.info)
    except CutoverAborted as exc:
        raise dg.Failure(f"cutover aborted, traffic stays on the source: {exc}") from None
    except MigrationError as exc:
        raise dg.Failure(f"cutover: {exc}") from None
    context.log.info(f"cutover done: writes held {result.hold_s:.2f}s (drain {result.drain_s:.2f}s)")
    return dg.MaterializeResult(metadata={**switch_metadata(result),
                                          "reverse_topic": dg.MetadataValue.text(reverse_topic),
                                          "reverse_group": dg.MetadataValue.text(settings.reverse_group_id),
                                          "restored_types": dg.MetadataValue.json(types)})
