"""Legacy template ``template`` patterns of Elasticsearch 5 become ``index_patterns``."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx
from workers.metadata import objects
from workers.metadata.transforms.template_patterns import TemplateToIndexPatterns

RULE = TemplateToIndexPatterns()


def test_applies_to_elasticsearch_5_and_older() -> None:
    assert RULE.applies(ctx("es:5.6.16")) and not RULE.applies(ctx("es:6.8.23"))


def test_template_becomes_index_patterns() -> None:
    obj = objects.legacy_template("logstash", {"template": "logstash-*", "order": 0, "settings": {}})
    RULE.apply(obj, ctx("es:5.6.16"))
    assert obj.extra == {"index_patterns": ["logstash-*"], "order": 0}
    assert obj.transformations == ["template-to-index-patterns"]
