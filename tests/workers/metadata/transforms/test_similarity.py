"""The classic similarity becomes BM25, in settings and in field mappings."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx, field, index
from workers.metadata.transforms.similarity import ClassicSimilarityToBM25

RULE = ClassicSimilarityToBM25()


def test_applies_to_every_opensearch_target() -> None:
    assert RULE.applies(ctx("es:6.8.23")) and RULE.applies(ctx("os:1.3.20", "os:3.8.0"))


def test_custom_and_built_in_classic() -> None:
    obj = index("old", {"doc": {"properties": {
        "title": {"type": "text", "similarity": "classic", "fields": {"raw": {"type": "keyword",
                                                                               "similarity": "classic"}}},
        "body": {"type": "text", "similarity": "tfidf"}, "n": {"type": "long"}}}},
        {"index.similarity.tfidf.type": "classic", "index.similarity.tfidf.discount_overlaps": "false",
         "index.similarity.tuned.type": "BM25", "index.similarity.tuned.k1": "1.1"})
    RULE.apply(obj, ctx("es:6.8.23"))
    assert obj.settings == {"index.similarity.tfidf.type": "BM25", "index.similarity.tfidf.discount_overlaps": "false",
                            "index.similarity.tuned.type": "BM25", "index.similarity.tuned.k1": "1.1"}
    assert field(obj, "title")["similarity"] == "BM25" and field(obj, "title.raw")["similarity"] == "BM25"
    assert field(obj, "body")["similarity"] == "tfidf"
    assert obj.warnings == ["classic similarity rewritten BM25 (similarity tfidf, field title, field title.raw): the "
                            "target refuses classic (TF-IDF); scores and the order of results differ from the source"]


def test_nothing_to_do() -> None:
    obj = index("new", {"properties": {"t": {"type": "text", "similarity": "BM25"}}})
    RULE.apply(obj, ctx("es:7.10.2"))
    assert not obj.transformations and not obj.warnings
