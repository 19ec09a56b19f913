"""Drop index settings of Elasticsearch features OpenSearch does not have (ILM, CCR, frozen, TSDB, X-Pack)."""

from __future__ import annotations

from workers.metadata.model import MetadataObject
from workers.metadata.settings import matches_prefix
from workers.metadata.transforms.base import Context, Transform

_FEATURES = {
    "index.lifecycle": "ILM is not migrated: recreate the policy with ISM on the target",
    "index.xpack": "X-Pack setting",
    "index.ccr": "cross-cluster replication setting",
    "index.frozen": "frozen indices do not exist in OpenSearch",
    "index.search.throttled": "frozen indices do not exist in OpenSearch",
    "index.store.snapshot": "searchable snapshot of Elasticsearch",
    "index.mode": "Elasticsearch index mode (time_series, logsdb)",
    "index.time_series": "Elasticsearch time series data stream setting",
    "index.routing_path": "Elasticsearch time series data stream setting",
    "index.look_ahead_time": "Elasticsearch time series data stream setting",
    "index.look_back_time": "Elasticsearch time series data stream setting",
    "index.mapping.source.mode": "Elasticsearch synthetic source",
    "index.mapper.dynamic": "removed in Elasticsearch 7; use the mapping's dynamic parameter",
    "index.downsample": "Elasticsearch downsampling",
}

# Fields of composable and component templates that only Elasticsearch knows.
_TEMPLATE_FIELDS = ("allow_auto_create", "ignore_missing_component_templates", "deprecated")


class DropElasticsearchOnlySettings(Transform):
    """Remove settings of ILM, CCR, frozen and searchable-snapshot indices, TSDB, X-Pack; ES-only template fields."""

    name = "drop-elasticsearch-only-settings"
    summary = "removes settings of Elasticsearch-only features (ILM, CCR, frozen, TSDB, X-Pack) with a warning"

    def applies(self, ctx: Context) -> bool:
        """Elasticsearch source, OpenSearch target."""
        return ctx.source.is_elasticsearch and ctx.target.is_opensearch

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Drop each such setting and say which feature it belonged to."""
        for key in list(obj.settings):
            prefix = next((p for p in _FEATURES if matches_prefix(key, (p,))), None)
            if prefix is not None:
                value = obj.settings.pop(key)
                obj.note(self.name)
                obj.warn(f"removed {key}={value}: {_FEATURES[prefix]}")
        for key in _TEMPLATE_FIELDS:
            if key in obj.extra:
                obj.warn(f"removed template field {key}={obj.extra.pop(key)} (Elasticsearch only)")
                obj.note(self.name)
        stream = obj.extra.get("data_stream")
        if isinstance(stream, dict) and set(stream) - {"timestamp_field"}:
            dropped = sorted(set(stream) - {"timestamp_field"})
            obj.extra["data_stream"] = {k: v for k, v in stream.items() if k == "timestamp_field"}
            obj.note(self.name)
            obj.warn(f"removed data_stream options {', '.join(dropped)} (Elasticsearch only)")
        # OpenSearch deprecates indices without soft deletes; Elasticsearch 6 indices may carry them off.
        if obj.settings.get("index.soft_deletes.enabled") == "false":
            del obj.settings["index.soft_deletes.enabled"]
            obj.note(self.name)
            obj.warn("removed index.soft_deletes.enabled=false: the target keeps soft deletes on")
