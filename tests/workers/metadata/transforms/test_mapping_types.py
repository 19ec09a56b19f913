"""Typed and multi-type mappings become one typeless mapping; conflicts block, naming field and types."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx, field, index
from workers.metadata import objects
from workers.metadata.transforms.mapping_types import MergeMappingTypes, split_by_type

RULE = MergeMappingTypes()
# The two types of the Elasticsearch 5.6 fixture index test_updates_deletes.
FIXTURE_TYPES = {
    "type2": {"properties": {"content": {"type": "text", "fields": {"keyword": {"type": "keyword",
                                                                                 "ignore_above": 256}}},
                             "contents": {"type": "text"}}},
    "type1": {"properties": {"title": {"type": "text"}}},
}


def test_applies_to_elasticsearch_up_to_7() -> None:
    assert RULE.applies(ctx("es:5.6.16")) and RULE.applies(ctx("es:6.8.23")) and RULE.applies(ctx("es:7.10.2"))
    assert not RULE.applies(ctx("es:8.19.21")) and not RULE.applies(ctx("os:2.19.6", "os:3.8.0"))


def test_compatible_types_are_merged() -> None:
    obj = index("test_updates_deletes", FIXTURE_TYPES)
    RULE.apply(obj, ctx("es:5.6.16"))
    assert list(obj.mappings) == ["_doc"]
    assert sorted(obj.mappings["_doc"]["properties"]) == ["content", "contents", "title"]
    assert field(obj, "content")["fields"]["keyword"]["ignore_above"] == 256
    assert obj.blockers == [] and "mapping types type1, type2 merged into one mapping" in obj.warnings


def test_object_fields_are_merged_recursively() -> None:
    obj = index("blog", {
        "post": {"properties": {"author": {"properties": {"name": {"type": "keyword"}}}, "body": {"type": "text"}}},
        "comment": {"properties": {"author": {"properties": {"email": {"type": "keyword"}}},
                                   "body": {"type": "text"}}},
    })
    RULE.apply(obj, ctx("es:5.6.16"))
    assert sorted(field(obj, "author")["properties"]) == ["email", "name"]
    assert obj.blockers == []


def test_a_conflicting_field_blocks_naming_field_and_types() -> None:
    obj = index("mixed", {"a": {"properties": {"user": {"type": "keyword"}}},
                          "b": {"properties": {"user": {"type": "text"}}}})
    RULE.apply(obj, ctx("es:5.6.16"))
    assert len(obj.blockers) == 1
    message = obj.blockers[0]
    assert "field user is keyword vs text" in message and "type a: keyword, type b: text" in message


def test_differing_parameters_of_the_same_type_block() -> None:
    obj = index("mixed", {"a": {"properties": {"tag": {"type": "keyword", "ignore_above": 10}}},
                          "b": {"properties": {"tag": {"type": "keyword"}}}})
    RULE.apply(obj, ctx("es:6.8.23"))
    assert "ignore_above (10 vs null)" in obj.blockers[0]


def test_root_parameter_conflict_blocks() -> None:
    obj = index("strictness", {"a": {"dynamic": "strict", "properties": {}}, "b": {"dynamic": True}})
    RULE.apply(obj, ctx("es:5.6.16"))
    assert obj.blockers and "mapping parameter dynamic" in obj.blockers[0]


def test_single_custom_type_is_unwrapped_with_a_warning() -> None:
    obj = index("logstash-2019.01.01", {"doc": {"properties": {"message": {"type": "text"}}}})
    RULE.apply(obj, ctx("es:6.8.23"))
    assert obj.mappings == {"_doc": {"properties": {"message": {"type": "text"}}}}
    assert obj.warnings == ["mapping type doc removed: documents lose their _type"]


def test_doc_type_needs_nothing() -> None:
    obj = index("posts", {"_doc": {"properties": {"author": {"type": "keyword"}}}})
    RULE.apply(obj, ctx("es:6.8.23"))
    assert obj.transformations == [] and obj.warnings == []


def test_default_mapping_of_a_template_is_the_base() -> None:
    template = objects.legacy_template("logs", {"index_patterns": ["logs-*"], "mappings": {
        "_default_": {"dynamic_templates": [{"strings": {"match_mapping_type": "string",
                                                          "mapping": {"type": "keyword"}}}]},
        "log": {"properties": {"msg": {"type": "text"}}}}})
    RULE.apply(template, ctx("es:6.8.23"))
    body = template.mappings["_doc"]
    assert body["dynamic_templates"][0]["strings"]["mapping"] == {"type": "keyword"}
    assert body["properties"] == {"msg": {"type": "text"}}
    assert "the _default_ mapping is merged into the template's mapping" in template.warnings


def test_parent_child_between_types_blocks() -> None:
    obj = index("qa", {"question": {"properties": {"t": {"type": "text"}}},
                       "answer": {"_parent": {"type": "question"}, "properties": {"t": {"type": "text"}}}})
    RULE.apply(obj, ctx("es:5.6.16"))
    assert any("has a _parent (question)" in b for b in obj.blockers)


def test_split_by_type_makes_one_index_per_type() -> None:
    obj = index("test_updates_deletes", FIXTURE_TYPES, aliases={"all": {}})
    parts = split_by_type(obj)
    assert [(p.name, p.source_type, p.source_name) for p in parts] == [
        ("test_updates_deletes_type1", "type1", "test_updates_deletes"),
        ("test_updates_deletes_type2", "type2", "test_updates_deletes")]
    assert parts[0].mappings == {"_doc": FIXTURE_TYPES["type1"]} and parts[1].aliases == {"all": {}}
    assert split_by_type(index("one", {"_doc": {}})) == [index("one", {"_doc": {}})]
