"""Analysis components: renamed ones are renamed, removed ones dropped, those the target lacks block."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx, index
from workers.metadata import objects
from workers.metadata.settings import flatten_settings
from workers.metadata.transforms.analysis import AnalysisComponents

RULE = AnalysisComponents()
# Analysis of an Elasticsearch 6 index: camel-case names (deprecated in 6.4), a standard filter, ICU folding.
ES6_ANALYSIS = flatten_settings({"index": {"number_of_shards": "1", "analysis": {
    "tokenizer": {"grams": {"type": "nGram", "min_gram": "2", "max_gram": "3"}},
    "filter": {"prefixes": {"type": "edgeNGram", "min_gram": "1", "max_gram": "10"},
               "payloads": {"type": "delimited_payload_filter"},
               "my_stop": {"type": "stop", "stopwords": "_english_"}},
    "analyzer": {
        "autocomplete": {"type": "custom", "tokenizer": "standard",
                         "filter": ["standard", "lowercase", "prefixes", "my_stop"]},
        "grams": {"type": "custom", "tokenizer": "grams", "filter": ["lowercase"]},
        "folding": {"type": "custom", "tokenizer": "icu_tokenizer", "filter": ["icu_folding", "lowercase"]},
        "snow": {"type": "snowball", "language": "English"},
    },
}}})
MISSING = {("tokenizer", "icu_tokenizer"), ("filter", "icu_folding"), ("analyzer", "kuromoji")}


def test_applies_to_opensearch_targets() -> None:
    assert RULE.applies(ctx("es:6.8.23")) and RULE.applies(ctx("os:1.3.20", "os:3.8.0"))


def test_renames_and_the_standard_filter() -> None:
    obj = objects.index("suggest", ES6_ANALYSIS, {}, {})
    RULE.apply(obj, ctx("es:6.8.23", missing=MISSING))
    s = obj.settings
    assert s["index.analysis.tokenizer.grams.type"] == "ngram"
    assert s["index.analysis.filter.prefixes.type"] == "edge_ngram"
    assert s["index.analysis.filter.payloads.type"] == "delimited_payload"
    assert s["index.analysis.analyzer.autocomplete.filter"] == ["lowercase", "prefixes", "my_stop"]
    assert any("standard token filter" in w for w in obj.warnings)


def test_components_the_target_lacks_block_with_a_plugin_hint() -> None:
    obj = objects.index("suggest", ES6_ANALYSIS, {}, {})
    RULE.apply(obj, ctx("es:6.8.23", missing=MISSING))
    assert obj.blockers == [
        "analysis: the target lacks tokenizer icu_tokenizer (analyzer folding) (install the analysis-icu plugin "
        "on the target)",
        "analysis: the target lacks token filter icu_folding (analyzer folding) (install the analysis-icu plugin "
        "on the target)",
    ]


def test_builtin_analyzer_used_by_a_field() -> None:
    obj = index("ja", {"_doc": {"properties": {"title": {"type": "text", "analyzer": "kuromoji"},
                                               "body": {"type": "text", "analyzer": "english"}}}})
    RULE.apply(obj, ctx("es:7.10.2", missing=MISSING))
    assert obj.blockers == ["analysis: the target lacks analyzer kuromoji (field title) (install the "
                            "analysis-kuromoji plugin on the target)"]


def test_index_template_fields_may_use_analyzers_of_their_components() -> None:
    obj = objects.index_template("t", {"index_patterns": ["t-*"], "composed_of": ["analysis"], "template": {
        "mappings": {"properties": {"title": {"type": "text", "analyzer": "kuromoji"}}}}})
    RULE.apply(obj, ctx("es:7.10.2", missing=MISSING))
    assert obj.blockers == []
