"""_all and include_in_all are removed, with a warning when queries may have relied on them."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx, field, index
from workers.metadata import objects
from workers.metadata.transforms.all_field import RemoveAllField

RULE = RemoveAllField()


def test_applies_up_to_elasticsearch_6() -> None:
    assert RULE.applies(ctx("es:5.6.16")) and RULE.applies(ctx("es:6.8.23"))
    assert not RULE.applies(ctx("es:7.10.2")) and not RULE.applies(ctx("os:1.3.20"))


def test_disabled_all_and_excluded_fields_go_silently() -> None:
    obj = index("logs", {"doc": {"_all": {"enabled": False}, "properties": {
        "message": {"type": "text", "include_in_all": False}, "host": {"type": "keyword"}}}})
    RULE.apply(obj, ctx("es:6.8.23"))
    assert "_all" not in obj.mappings["doc"]
    assert field(obj, "message") == {"type": "text"}
    assert obj.transformations == ["remove-all-field"] and obj.warnings == []


def test_enabled_all_and_included_fields_are_warned_about() -> None:
    template = objects.legacy_template("base", {"template": "app-*", "mappings": {"event": {
        "_all": {"enabled": True, "analyzer": "english"},
        "properties": {"title": {"type": "text", "include_in_all": True},
                       "meta": {"properties": {"note": {"type": "text", "include_in_all": "true"}}}}}}})
    RULE.apply(template, ctx("es:5.6.16"))
    assert "_all" not in template.mappings["event"]
    assert any("_all was on (mapping type event)" in w for w in template.warnings)
    assert "include_in_all removed from title, meta.note" in template.warnings


def test_elasticsearch_5_index_without_all_settings_had_it_on() -> None:
    obj = index("test_updates_deletes", {"type1": {"properties": {"title": {"type": "text"}}},
                                         "type2": {"properties": {"content": {"type": "text"}}}})
    RULE.apply(obj, ctx("es:5.6.16"))
    assert obj.warnings == ["_all was on (mapping type type1, type2) and does not exist on the target: queries on "
                            "_all need a copy_to field"]
    assert obj.transformations == []
