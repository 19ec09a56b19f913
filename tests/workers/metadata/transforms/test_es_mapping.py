"""Runtime fields, synthetic source and TSDB markers of Elasticsearch 7.11+ mappings."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx, field, index
from workers.metadata import objects
from workers.metadata.transforms.es_mapping import DropElasticsearchOnlyMapping

RULE = DropElasticsearchOnlyMapping()


def test_applies_from_elasticsearch_7_11() -> None:
    assert RULE.applies(ctx("es:7.11.0")) and not RULE.applies(ctx("es:7.10.2"))


def test_runtime_fields_and_tsdb_markers_go() -> None:
    obj = index("metrics", {"_doc": {
        "runtime": {"day": {"type": "keyword", "script": "emit('x')"}},
        "properties": {"host": {"type": "keyword", "time_series_dimension": True},
                       "cpu": {"type": "double", "time_series_metric": "gauge"}}}})
    RULE.apply(obj, ctx("es:8.19.21"))
    assert "runtime" not in obj.mappings["_doc"]
    assert field(obj, "host") == {"type": "keyword"} and field(obj, "cpu") == {"type": "double"}
    assert obj.warnings == ["runtime fields day removed (OpenSearch has no runtime fields)",
                            "removed Elasticsearch-only field parameters: host.time_series_dimension, "
                            "cpu.time_series_metric"]


def test_synthetic_source_blocks_an_index_but_not_a_template() -> None:
    mapping = {"_doc": {"_source": {"mode": "synthetic"}, "properties": {"a": {"type": "keyword"}}}}
    obj = index("synth", mapping)
    RULE.apply(obj, ctx("es:8.19.21"))
    assert obj.blockers == ["_source is synthetic: documents have no stored source to copy"]
    template = objects.component_template("synth", {"template": {"mappings": mapping["_doc"]}})
    RULE.apply(template, ctx("es:8.19.21"))
    assert "_source" not in template.mappings["_doc"] and not template.blockers
