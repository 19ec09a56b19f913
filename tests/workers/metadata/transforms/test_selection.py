"""Each version pair gets the rules it needs, in order."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx
from workers.metadata.transforms import select


def names(source: str, target: str, **options: object) -> list[str]:
    return [t.name for t in select(ctx(source, target, **options))]  # type: ignore[arg-type]


def test_elasticsearch_5_to_opensearch_2() -> None:
    assert names("es:5.6.16", "os:2.19.6") == [
        "template-to-index-patterns", "strip-internal-settings", "drop-elasticsearch-only-settings",
        "drop-removed-settings", "rewrite-refused-values", "string-to-text-keyword", "remove-all-field",
        "classic-similarity-to-bm25", "merge-mapping-types", "analysis-components"]


def test_elasticsearch_8_to_opensearch_3() -> None:
    assert names("es:8.19.21", "os:3.8.0") == [
        "strip-internal-settings", "drop-elasticsearch-only-settings", "drop-removed-settings",
        "rewrite-refused-values", "classic-similarity-to-bm25", "drop-elasticsearch-only-mapping",
        "dense-vector-to-knn", "flattened-to-flat-object", "analysis-components"]


def test_opensearch_1_to_3_with_options() -> None:
    assert names("os:1.3.20", "os:3.8.0", rename=["a=b"], replicas=1) == [
        "strip-internal-settings", "drop-removed-settings", "rewrite-refused-values", "classic-similarity-to-bm25",
        "knn-nmslib-to-faiss", "analysis-components", "rename", "replica-override"]
