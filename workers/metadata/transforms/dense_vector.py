"""Elasticsearch ``dense_vector`` becomes OpenSearch ``knn_vector`` (dimension, space type, HNSW, ``index.knn``)."""

from __future__ import annotations

from typing import Any

from workers.metadata.mappings import visit_fields
from workers.metadata.model import MetadataObject
from workers.metadata.transforms.base import Context, Transform

SPACE_TYPES = {"l2_norm": "l2", "cosine": "cosinesimil", "dot_product": "innerproduct",
               "max_inner_product": "innerproduct"}


def _truthy(value: Any) -> bool:
    return str(value).lower() == "true"


def _engine(ctx: Context, space: str, binary: bool) -> str:
    # Lucene's HNSW is in the k-NN plugin from OpenSearch 2.2 (inner product from 2.13); binary vectors need faiss;
    # OpenSearch 1.x has nmslib and faiss only.
    if binary:
        return "faiss"
    if ctx.target.os_below(2, 2):
        return "nmslib"
    if space == "innerproduct" and ctx.target.os_below(2, 13):
        return "faiss"
    return "lucene"


def convert_dense_vector(field: dict[str, Any], ctx: Context) -> tuple[dict[str, Any], list[str], bool]:
    """The ``knn_vector`` for one ``dense_vector``: (new field, warnings, whether it needs ``index.knn``)."""
    warnings: list[str] = []
    new: dict[str, Any] = {"type": "knn_vector", "dimension": field["dims"]}
    element = field.get("element_type", "float")
    if element == "byte":
        new["data_type"] = "byte"
    elif element == "bit":
        new["data_type"] = "binary"
    # Elasticsearch 7 vectors are never indexed; 8.11+ index them unless told not to.
    indexed = _truthy(field.get("index", ctx.source.es_at_least(8, 11)))
    if not indexed:
        warnings.append("not indexed for kNN on the source: kept without an ANN graph (exact search only)")
        return new, warnings, False
    similarity = field.get("similarity") or ("l2_norm" if element == "bit" else "cosine")
    space = "hamming" if element == "bit" else SPACE_TYPES.get(similarity, "l2")
    if similarity == "max_inner_product":
        warnings.append("max_inner_product scores differ from innerproduct for non-normalised vectors")
    options = field.get("index_options") or {}
    kind = options.get("type", "hnsw")
    if kind != "hnsw":
        warnings.append(f"index_options.type {kind} (quantised or flat) is not carried over: full-precision HNSW")
    method: dict[str, Any] = {"name": "hnsw", "engine": _engine(ctx, space, element == "bit"), "space_type": space}
    params = {k: options[k] for k in ("m", "ef_construction") if k in options}
    if params:
        method["parameters"] = params
    new["method"] = method
    return new, warnings, True


class DenseVectorToKnn(Transform):
    """``dense_vector`` → ``knn_vector`` with ``dims`` → ``dimension`` and similarity → space type."""

    name = "dense-vector-to-knn"
    summary = ("rewrites dense_vector as knn_vector: dims → dimension, similarity → space type (cosine → "
               "cosinesimil, dot_product → innerproduct, l2_norm → l2), HNSW parameters, and sets index.knn")

    def applies(self, ctx: Context) -> bool:
        """Elasticsearch 7+ source (dense_vector appeared in 7.0), OpenSearch target."""
        return ctx.source.es_at_least(7) and ctx.target.is_opensearch

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Convert every dense_vector field; set ``index.knn`` when one is indexed."""
        knn = False

        def visit(path: str, field: dict[str, Any]) -> None:
            nonlocal knn
            if field.get("type") != "dense_vector":
                return
            obj.note(self.name)
            if "dims" not in field:
                obj.block(f"field {path}: dense_vector without dims (set on the first document): give the mapping "
                          "its dimension before migrating")
                return
            new, warnings, indexed = convert_dense_vector(field, ctx)
            field.clear()
            field.update(new)
            knn = knn or indexed
            for warning in warnings:
                obj.warn(f"field {path}: {warning}")

        for body in obj.mappings.values():
            visit_fields(body, visit)
        if knn and obj.settings.get("index.knn") != "true":
            obj.settings["index.knn"] = "true"
