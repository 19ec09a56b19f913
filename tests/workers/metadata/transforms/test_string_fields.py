"""string → text/keyword with Elasticsearch 5 semantics, on a Logstash 2.x template and index mappings."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx, field, index
from workers.metadata import objects
from workers.metadata.transforms.string_fields import StringToTextKeyword

RULE = StringToTextKeyword()

# The template Logstash 2.x installed (logstash-*), as an Elasticsearch 2/5 cluster stores it.
LOGSTASH_2_TEMPLATE = {
    "template": "logstash-*",
    "order": 0,
    "settings": {"index": {"refresh_interval": "5s"}},
    "mappings": {"_default_": {
        "_all": {"enabled": True, "omit_norms": True},
        "dynamic_templates": [
            {"message_field": {"match": "message", "match_mapping_type": "string", "mapping": {
                "type": "string", "index": "analyzed", "omit_norms": True, "fielddata": {"format": "disabled"}}}},
            {"string_fields": {"match": "*", "match_mapping_type": "string", "mapping": {
                "type": "string", "index": "analyzed", "omit_norms": True, "fielddata": {"format": "disabled"},
                "fields": {"raw": {"type": "string", "index": "not_analyzed", "doc_values": True,
                                   "ignore_above": 256}}}}},
        ],
        "properties": {
            "@timestamp": {"type": "date"},
            "@version": {"type": "string", "index": "not_analyzed"},
            "geoip": {"dynamic": True, "properties": {"ip": {"type": "ip"}, "location": {"type": "geo_point"},
                                                      "city_name": {"type": "string"}}},
        },
    }},
}


def test_applies_to_elasticsearch_5_and_older_only() -> None:
    assert RULE.applies(ctx("es:5.6.16"))
    assert RULE.applies(ctx("es:2.4.6"))
    assert not RULE.applies(ctx("es:6.8.23"))
    assert not RULE.applies(ctx("os:1.3.20"))


def test_logstash_template_strings_become_text_and_keyword() -> None:
    obj = objects.legacy_template("logstash", LOGSTASH_2_TEMPLATE)
    RULE.apply(obj, ctx("es:5.6.16"))
    body = obj.mappings["_default_"]
    message, strings = (next(iter(t.values()))["mapping"] for t in body["dynamic_templates"])
    assert message == {"type": "text", "norms": False, "fielddata": False}
    assert strings["type"] == "text" and strings["norms"] is False
    assert strings["fields"]["raw"] == {"type": "keyword", "doc_values": True, "ignore_above": 256}
    assert body["properties"]["@version"] == {"type": "keyword"}
    assert body["properties"]["geoip"]["properties"]["city_name"] == {"type": "text"}
    assert body["properties"]["@timestamp"] == {"type": "date"}
    assert obj.transformations == ["string-to-text-keyword"]
    assert obj.warnings == []


def test_index_no_becomes_unindexed_keyword() -> None:
    obj = index("orders", {"order": {"properties": {"sku": {"type": "string", "index": "no", "store": True}}}})
    RULE.apply(obj, ctx("es:5.6.16"))
    assert field(obj, "sku") == {"type": "keyword", "index": False, "store": True}


def test_parameters_the_new_type_refuses_are_dropped_with_a_warning() -> None:
    obj = index("users", {"user": {"properties": {
        "name": {"type": "string", "null_value": "n/a", "ignore_above": 100, "analyzer": "english"},
        "login": {"type": "string", "index": "not_analyzed", "analyzer": "standard", "term_vector": "yes",
                  "index_options": "offsets"},
    }}})
    RULE.apply(obj, ctx("es:5.6.16"))
    assert field(obj, "name") == {"type": "text", "analyzer": "english"}
    assert field(obj, "login") == {"type": "keyword"}
    assert "field name: string became text; dropped ignore_above, null_value (text does not take them)" \
        in obj.warnings
    assert any(w.startswith("field login: string became keyword; dropped analyzer, term_vector, index_options")
               for w in obj.warnings)


def test_fielddata_settings_are_upgraded() -> None:
    obj = index("tweets", {"tweet": {"properties": {"text": {
        "type": "string", "norms": {"enabled": False},
        "fielddata": {"format": "paged_bytes", "loading": "eager_global_ordinals",
                      "filter": {"frequency": {"min": 0.001, "max": 0.1, "min_segment_size": 500}}},
    }}}})
    RULE.apply(obj, ctx("es:5.6.16"))
    assert field(obj, "text") == {
        "type": "text", "norms": False, "fielddata": True, "eager_global_ordinals": True,
        "fielddata_frequency_filter": {"min": 0.001, "max": 0.1, "min_segment_size": 500},
    }


def test_multi_fields_of_an_analyzed_string() -> None:
    obj = index("products", {"product": {"properties": {"title": {
        "type": "string", "analyzer": "english",
        "fields": {"raw": {"type": "string", "index": "not_analyzed"},
                   "exact": {"type": "string", "analyzer": "standard"}},
    }}}})
    RULE.apply(obj, ctx("es:5.6.16"))
    title = field(obj, "title")
    assert title["type"] == "text" and title["analyzer"] == "english"
    assert title["fields"] == {"raw": {"type": "keyword"}, "exact": {"type": "text", "analyzer": "standard"}}


def test_nothing_to_do_without_string_fields() -> None:
    obj = index("modern", {"_doc": {"properties": {"a": {"type": "text"}, "b": {"type": "keyword"}}}})
    RULE.apply(obj, ctx("es:5.6.16"))
    assert obj.transformations == [] and field(obj, "a") == {"type": "text"}
