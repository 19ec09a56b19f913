"""Settings and template fields of Elasticsearch-only features are removed with a warning."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx
from workers.metadata import objects
from workers.metadata.transforms.es_settings import DropElasticsearchOnlySettings

RULE = DropElasticsearchOnlySettings()


def test_applies_from_elasticsearch_to_opensearch() -> None:
    assert RULE.applies(ctx("es:6.8.23")) and RULE.applies(ctx("es:9.2.0", "os:3.8.0"))
    assert not RULE.applies(ctx("os:2.19.6", "os:3.8.0"))


def test_ilm_tsdb_and_soft_deletes() -> None:
    obj = objects.index("metrics-1", {
        "index.lifecycle.name": "metrics", "index.lifecycle.rollover_alias": "metrics",
        "index.mode": "time_series", "index.routing_path": ["host"], "index.soft_deletes.enabled": "false",
        "index.number_of_shards": "1"}, {}, {})
    RULE.apply(obj, ctx("es:8.19.21"))
    assert obj.settings == {"index.number_of_shards": "1"}
    assert "removed index.lifecycle.name=metrics: ILM is not migrated: recreate the policy with ISM on the " \
           "target" in obj.warnings
    assert any(w.startswith("removed index.mode=time_series") for w in obj.warnings)
    assert "removed index.soft_deletes.enabled=false: the target keeps soft deletes on" in obj.warnings


def test_composable_template_fields() -> None:
    obj = objects.index_template("logs", {
        "index_patterns": ["logs-*-*"], "data_stream": {"hidden": False, "allow_custom_routing": False},
        "allow_auto_create": True, "composed_of": ["logs-mappings"], "priority": 100,
        "ignore_missing_component_templates": ["logs@custom"]})
    RULE.apply(obj, ctx("es:8.19.21"))
    assert obj.extra == {"index_patterns": ["logs-*-*"], "data_stream": {}, "composed_of": ["logs-mappings"],
                         "priority": 100}
    assert len(obj.warnings) == 3
