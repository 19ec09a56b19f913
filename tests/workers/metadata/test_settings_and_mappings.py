"""Settings flattening and the typed/typeless mapping shape."""

from __future__ import annotations

from workers.metadata.mappings import by_type, iter_fields
from workers.metadata.settings import analysis_settings, flatten_settings


def test_nested_template_settings_become_flat_strings() -> None:
    nested = {"index": {"number_of_shards": 2, "mapping": {"total_fields": {"limit": "2000"}},
                        "query": {"default_field": ["message"]}, "hidden": True}, "refresh_interval": "5s"}
    assert flatten_settings(nested) == {
        "index.hidden": "true", "index.mapping.total_fields.limit": "2000", "index.number_of_shards": "2",
        "index.query.default_field": ["message"], "index.refresh_interval": "5s"}


def test_numbered_keys_become_lists() -> None:
    flat = {"index.analysis.analyzer.a.filter.0": "lowercase", "index.analysis.analyzer.a.filter.1": "stop",
            "index.analysis.analyzer.a.tokenizer": "standard"}
    assert flatten_settings(flat)["index.analysis.analyzer.a.filter"] == ["lowercase", "stop"]
    assert analysis_settings(flatten_settings(flat)) == {
        "analyzer": {"a": {"filter": ["lowercase", "stop"], "tokenizer": "standard"}}}


def test_typed_and_typeless_mappings() -> None:
    assert by_type({"properties": {"a": {"type": "text"}}}) == {"_doc": {"properties": {"a": {"type": "text"}}}}
    assert by_type({"_source": {"enabled": False}}) == {"_doc": {"_source": {"enabled": False}}}
    assert by_type({"doc": {"properties": {}}, "_default_": {}}) == {"doc": {"properties": {}}, "_default_": {}}
    assert by_type([{"type1": {"properties": {}}}, {"type2": {}}]) == {"type1": {"properties": {}}, "type2": {}}
    assert by_type({}) == {} and by_type(None) == {}


def test_field_walk_reaches_objects_multi_fields_and_dynamic_templates() -> None:
    body = {"dynamic_templates": [{"s": {"mapping": {"type": "keyword"}}}], "properties": {
        "a": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
        "o": {"properties": {"b": {"type": "long"}}}}}
    assert [p for p, _ in iter_fields(body)] == ["a", "a.raw", "o", "o.b", "dynamic_templates.s"]
