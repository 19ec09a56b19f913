"""The replay's lag over time, as Dagster recorded it: the catch-up's own observations (``lag_history`` of the
newest ``replay_catchup`` materialization) and the ``replay_lag_sensor``'s observations since then."""

import dagster as dg

from workflow_model.steps import Step

# Enough for a day of the sensor's 30-second observations.
MAX_OBSERVATIONS = 3000


def replay_lag_history(instance: dg.DagsterInstance) -> list[tuple[float, float]]:
    """(epoch seconds, lag in records), oldest first; empty when replay never ran."""
    key = dg.AssetKey(Step.REPLAY_CATCHUP.value)
    points: list[tuple[float, float]] = []
    since = 0.0
    materialized = instance.fetch_materializations(key, limit=1).records
    if materialized:
        event = materialized[0].asset_materialization
        history = event.metadata.get("lag_history") if event is not None else None
        items = history.value if history is not None else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, list) and len(item) == 2:
                points.append((float(item[0]), float(item[1])))
        since = materialized[0].timestamp
    observed = instance.fetch_observations(key, limit=MAX_OBSERVATIONS).records  # newest first
    for record in reversed(observed):
        observation = record.asset_observation
        if record.timestamp <= since or observation is None:
            continue
        lag = observation.metadata.get("lag_records")
        if lag is not None and isinstance(lag.value, int | float):
            points.append((record.timestamp, float(lag.value)))
    points.sort()
    return points
