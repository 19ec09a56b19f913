"""Settings and template fields of Elasticsearch-only features are removed with a warning."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx
from workers.metadata import objects
from workers.metadata.transforms.es_settings import DropElasticsearchOnlySettings

RULE = DropElasticsearchOnlySettings()


def test_applies_from_elasticsearch_to_opensearch() -> None:
    assert RULE.applies(ctx("es:6.8.23")) and RULE.applies(ctx("es:9.2.0", "os:3.8.0"))
    assert not RULE.applies(ctx("os:2.19.6", "os:3.8.0"))


def test_ilm_and_tsdb() -> None:
    obj = objects.index("metrics-1", {
        "index.lifecycle.name": "metrics", "index.lifecycle.rollover_alias": "metrics",
        "index.mode": "time_series", "index.routing_path": ["host"], "index.number_of_shards": "1"}, {}, {})
    RULE.apply(obj, ctx("es:8.19.21"))
    assert obj.settings == {"index.number_of_shards": "1"}
    assert "removed index.lifecycle.name=metrics: ILM is not migrated: recreate the policy with ISM on the " \
           "target" in obj.warnings
    assert any(w.startswith("removed index.mode=time_series") for w in obj.warnings)
    assert not obj.blockers


# Settings an Elasticsearch 8.19 or 9.2 index accepts and OpenSearch 2.19/3.8 refuse (each checked on both sides).
ES8_AND_9_ONLY = {
    "index.mapping.dimension_fields.limit": "16", "index.mapping.total_fields.ignore_dynamic_beyond_limit": "true",
    "index.mapping.synthetic_source_keep": "arrays", "index.bloom_filter_for_id_field.enabled": "false",
    "index.recovery.use_synthetic_source": "false", "index.fast_refresh": "false",
    "index.search.slowlog.include.user": "true", "index.indexing.slowlog.include.user": "true",
    "index.mapping.source.mode": "stored", "index.merge.policy.merge_factor": "16",
    "index.merge.policy.type": "tiered", "index.mapping.ignore_above": "100",
    "index.highlight.weight_matches_mode.enabled": "false", "index.translog.flush_threshold_age": "30m",
    "index.mapping.semantic_text.use_legacy_format": "false",
    "index.mapping.synthetic_source.skip_ignored_source_read": "false",
    "index.dense_vector.hnsw_filter_heuristic": "fanout", "index.logsdb.sort_on_host_name": "true",
    "index.source_only": "true", "index.shard_limit.group": "normal", "index.verified_read_only": "true",
    "index.routing.allocation.disk.watermark.ignore": "true", "index.failure_store.version": "1",
}


def test_elasticsearch_8_and_9_index_options_are_removed_each_with_its_reason() -> None:
    obj = objects.index("logs", {**ES8_AND_9_ONLY, "index.number_of_shards": "1"}, {}, {})
    RULE.apply(obj, ctx("es:9.2.0", "os:3.8.0"))
    assert obj.settings == {"index.number_of_shards": "1"}
    assert len(obj.warnings) == len(ES8_AND_9_ONLY)
    assert "removed index.mapping.ignore_above=100: Elasticsearch 8.19+ index-wide ignore_above: on the target " \
           "keyword values of any length are indexed unless a field sets ignore_above" in obj.warnings
    assert "removed index.search.slowlog.include.user=true: Elasticsearch slow log option: the target's slow log " \
           "records no user" in obj.warnings
    assert obj.transformations == ["drop-elasticsearch-only-settings"] and not obj.blockers


def test_synthetic_source_setting_blocks_an_index_and_leaves_a_template() -> None:
    index = objects.index("logs", {"index.mapping.source.mode": "synthetic"}, {}, {})
    RULE.apply(index, ctx("es:8.19.21"))
    assert index.blockers == ["index.mapping.source.mode is synthetic: documents have no stored source to copy"]
    template = objects.legacy_template("logs", {"index_patterns": ["logs-*"],
                                                "settings": {"index.mapping.source.mode": "synthetic"}})
    RULE.apply(template, ctx("es:8.19.21"))
    assert template.settings == {} and not template.blockers


def test_composable_template_fields() -> None:
    obj = objects.index_template("logs", {
        "index_patterns": ["logs-*-*"], "data_stream": {"hidden": False, "allow_custom_routing": False},
        "allow_auto_create": True, "composed_of": ["logs-mappings"], "priority": 100,
        "ignore_missing_component_templates": ["logs@custom"]})
    RULE.apply(obj, ctx("es:8.19.21"))
    assert obj.extra == {"index_patterns": ["logs-*-*"], "data_stream": {}, "composed_of": ["logs-mappings"],
                         "priority": 100}
    assert len(obj.warnings) == 3
