"""The replay's consumer lag, recorded as observations of the ``replay_catchup`` asset while replayers run."""


import dagster as dg

from resources.workflow import WorkflowResource
from workers.common.errors import MigrationError
from workflow_model.steps import Step


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Records the replayer group's consumer lag on the capture topic (records and seconds behind) "
                       "as observations of replay_catchup, while replay is enabled.")
def replay_lag_sensor(context: dg.SensorEvaluationContext, workflow: WorkflowResource) -> dg.SensorResult:
    """One observation per evaluation; nothing when replay is off or the config cannot be read."""
    from resources.replayer import kafka_security
    from workers.capture.topic_admin import consumer_lag

    try:
        config = workflow.load()
    except MigrationError as exc:
        return dg.SensorResult(skip_reason=f"no workflow config: {exc}")
    replay = config.replay
    if not replay.enabled:
        return dg.SensorResult(skip_reason="replay is off")
    try:
        lag = consumer_lag(replay.kafka_brokers, replay.topic, replay.group_id, kafka_security(config))
    except Exception as exc:  # an unreachable Kafka is worth a line in the sensor's log, not a failed tick
        return dg.SensorResult(skip_reason=f"lag of {replay.group_id} on {replay.topic} unreadable: {exc}")
    observation = dg.AssetObservation(asset_key=Step.REPLAY_CATCHUP.value, metadata={
        "lag_records": dg.MetadataValue.int(lag.total_lag),
        "time_lag_s": dg.MetadataValue.float(float(lag.time_lag_s or 0.0)),
        "partitions": dg.MetadataValue.int(len(lag.partitions)),
    })
    return dg.SensorResult(asset_events=[observation])
