"""dense_vector → knn_vector, on mappings as Elasticsearch 7.10 and 8.19 store them."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx, field, index
from workers.metadata.transforms.dense_vector import DenseVectorToKnn

RULE = DenseVectorToKnn()
# What Elasticsearch 8.19 answers for a mapping created with dims and similarity only (defaults filled in).
ES_8_19 = {"_doc": {"properties": {
    "f": {"type": "flattened"}, "k": {"type": "keyword"},
    "v": {"type": "dense_vector", "dims": 3, "index": True, "similarity": "dot_product",
          "index_options": {"type": "int8_hnsw", "m": 16, "ef_construction": 100}},
    "v2": {"type": "dense_vector", "dims": 4, "index": True, "similarity": "cosine",
           "index_options": {"type": "hnsw", "m": 32, "ef_construction": 200}},
    "v3": {"type": "dense_vector", "dims": 4, "index": False},
}}}


def test_applies_from_elasticsearch_7_to_opensearch() -> None:
    assert RULE.applies(ctx("es:7.10.2")) and RULE.applies(ctx("es:8.19.21", "os:3.8.0"))
    assert not RULE.applies(ctx("es:6.8.23")) and not RULE.applies(ctx("os:2.19.6", "os:3.8.0"))


def test_elasticsearch_8_vectors() -> None:
    obj = index("embeddings", ES_8_19)
    RULE.apply(obj, ctx("es:8.19.21", "os:3.8.0"))
    assert field(obj, "v") == {"type": "knn_vector", "dimension": 3, "method": {
        "name": "hnsw", "engine": "lucene", "space_type": "innerproduct",
        "parameters": {"m": 16, "ef_construction": 100}}}
    assert field(obj, "v2")["method"]["space_type"] == "cosinesimil"
    assert field(obj, "v2")["method"]["parameters"] == {"m": 32, "ef_construction": 200}
    assert field(obj, "v3") == {"type": "knn_vector", "dimension": 4}
    assert obj.settings["index.knn"] == "true"
    assert field(obj, "k") == {"type": "keyword"} and field(obj, "f") == {"type": "flattened"}
    assert any("field v: index_options.type int8_hnsw" in w for w in obj.warnings)
    assert any(w.startswith("field v3: not indexed") for w in obj.warnings)


def test_elasticsearch_7_vectors_are_not_indexed() -> None:
    obj = index("e7", {"_doc": {"properties": {"emb": {"type": "dense_vector", "dims": 128}}}})
    RULE.apply(obj, ctx("es:7.10.2"))
    assert field(obj, "emb") == {"type": "knn_vector", "dimension": 128}
    assert "index.knn" not in obj.settings


def test_byte_and_bit_vectors() -> None:
    obj = index("e8", {"_doc": {"properties": {
        "b": {"type": "dense_vector", "dims": 8, "element_type": "byte", "index": True, "similarity": "l2_norm"},
        "h": {"type": "dense_vector", "dims": 64, "element_type": "bit", "index": True}}}})
    RULE.apply(obj, ctx("es:8.19.21"))
    assert field(obj, "b")["data_type"] == "byte" and field(obj, "b")["method"]["space_type"] == "l2"
    assert field(obj, "h")["data_type"] == "binary"
    assert field(obj, "h")["method"] == {"name": "hnsw", "engine": "faiss", "space_type": "hamming"}


def test_old_targets_get_an_engine_they_have() -> None:
    obj = index("e", {"_doc": {"properties": {"v": {"type": "dense_vector", "dims": 2, "index": True,
                                                     "similarity": "cosine"}}}})
    RULE.apply(obj, ctx("es:8.19.21", "os:1.3.20"))
    assert field(obj, "v")["method"]["engine"] == "nmslib"


def test_vector_without_dims_blocks() -> None:
    obj = index("e", {"_doc": {"properties": {"v": {"type": "dense_vector", "index": True}}}})
    RULE.apply(obj, ctx("es:8.19.21"))
    assert obj.blockers == ["field v: dense_vector without dims (set on the first document): give the mapping its "
                            "dimension before migrating"]
