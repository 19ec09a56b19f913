"""Drop index settings of Elasticsearch features OpenSearch does not have (ILM, CCR, frozen, TSDB, X-Pack, and the
settings of Elasticsearch 7.16+, 8.x and 9.x OpenSearch refuses as unknown or private)."""

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
    "index.mapping.source.mode": "Elasticsearch source mode (the target stores _source)",
    "index.downsample": "Elasticsearch downsampling",
    "index.rollup": "Elasticsearch rollup/downsampling marker",
    # Elasticsearch 7.16+/8.x/9.x index settings OpenSearch does not have (each refused as unknown or private).
    "index.mapping.dimension_fields.limit": "Elasticsearch time series dimension limit",
    "index.mapping.total_fields.ignore_dynamic_beyond_limit": "Elasticsearch only: on the target a document that "
    "would add fields beyond index.mapping.total_fields.limit is refused instead of keeping them unmapped",
    "index.mapping.synthetic_source_keep": "Elasticsearch synthetic source",
    "index.mapping.synthetic_source": "Elasticsearch synthetic source",
    "index.recovery.use_synthetic_source": "Elasticsearch synthetic source",
    "index.mapping.ignore_above": "Elasticsearch 8.19+ index-wide ignore_above: on the target keyword values of "
    "any length are indexed unless a field sets ignore_above",
    "index.mapping.semantic_text": "Elasticsearch semantic_text",
    "index.bloom_filter_for_id_field": "Elasticsearch _id bloom filter (the target uses its own)",
    "index.logsdb": "Elasticsearch logsdb index mode",
    "index.dense_vector": "Elasticsearch dense_vector search tuning (the target's k-NN settings apply)",
    "index.fast_refresh": "Elasticsearch internal refresh setting",
    "index.search.slowlog.include": "Elasticsearch slow log option: the target's slow log records no user",
    "index.indexing.slowlog.include": "Elasticsearch slow log option: the target's slow log records no user",
    "index.highlight.weight_matches_mode": "Elasticsearch highlighter option",
    "index.translog.flush_threshold_age": "Elasticsearch flush by age: the target flushes by translog size "
    "(index.translog.flush_threshold_size)",
    "index.merge.policy.merge_factor": "Elasticsearch log-byte-size merge policy: the target uses its tiered policy",
    "index.merge.policy.type": "Elasticsearch merge policy choice: the target uses its tiered policy",
    "index.failure_store": "Elasticsearch failure store",
    "index.verified_read_only": "Elasticsearch read-only verification marker",
    "index.source_only": "Elasticsearch source-only snapshot marker",
    "index.shard_limit": "Elasticsearch shard limit group",
    "index.routing.allocation.disk.watermark.ignore": "Elasticsearch frozen-tier allocation marker",
}
_SOURCE_MODE = "index.mapping.source.mode"

# Fields of composable and component templates that only Elasticsearch knows.
_TEMPLATE_FIELDS = ("allow_auto_create", "ignore_missing_component_templates", "deprecated")


class DropElasticsearchOnlySettings(Transform):
    """Remove settings of ILM, CCR, frozen and searchable-snapshot indices, TSDB, X-Pack; ES-only template fields."""

    name = "drop-elasticsearch-only-settings"
    summary = ("removes settings of Elasticsearch-only features (ILM, CCR, frozen, TSDB, logsdb, synthetic source, "
               "X-Pack, Elasticsearch 8/9 index options) with a warning; an index with synthetic source is blocked")

    def applies(self, ctx: Context) -> bool:
        """Elasticsearch source, OpenSearch target."""
        return ctx.source.is_elasticsearch and ctx.target.is_opensearch

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Drop each such setting and say which feature it belonged to."""
        if obj.kind == "index" and obj.settings.get(_SOURCE_MODE) == "synthetic":
            obj.block(f"{_SOURCE_MODE} is synthetic: documents have no stored source to copy")
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
