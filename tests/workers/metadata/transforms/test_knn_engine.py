"""k-NN fields on nmslib move to faiss for OpenSearch 3 targets."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx, field, index
from workers.metadata.transforms.knn_engine import NmslibToFaiss

RULE = NmslibToFaiss()
OS_2_MAPPING = {"_doc": {"properties": {
    "a": {"type": "knn_vector", "dimension": 4, "method": {"name": "hnsw", "engine": "nmslib",
                                                            "space_type": "cosinesimil",
                                                            "parameters": {"m": 16, "ef_construction": 128}}},
    "b": {"type": "knn_vector", "dimension": 4, "method": {"name": "hnsw", "engine": "lucene", "space_type": "l2"}},
    "c": {"type": "knn_vector", "dimension": 4, "method": {"name": "hnsw", "engine": "nmslib", "space_type": "l1"}},
}}}


def test_applies_from_opensearch_before_3_to_3() -> None:
    assert RULE.applies(ctx("os:2.19.6", "os:3.8.0")) and RULE.applies(ctx("os:1.3.20", "os:3.8.0"))
    assert not RULE.applies(ctx("os:2.19.6", "os:2.19.6")) and not RULE.applies(ctx("es:7.10.2", "os:3.8.0"))


def test_nmslib_becomes_faiss_and_l1_blocks() -> None:
    obj = index("vectors", OS_2_MAPPING)
    RULE.apply(obj, ctx("os:2.19.6", "os:3.8.0"))
    assert field(obj, "a")["method"] == {"name": "hnsw", "engine": "faiss", "space_type": "cosinesimil",
                                         "parameters": {"m": 16, "ef_construction": 128}}
    assert field(obj, "b")["method"]["engine"] == "lucene"
    assert obj.blockers == ["field c: space type l1 of nmslib has no faiss equivalent"]
