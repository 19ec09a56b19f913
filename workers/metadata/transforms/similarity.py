"""The ``classic`` (TF-IDF) similarity, refused since Elasticsearch 7 and by every OpenSearch, becomes ``BM25``."""

from __future__ import annotations

from typing import Any

from workers.metadata.mappings import visit_fields
from workers.metadata.model import MetadataObject
from workers.metadata.transforms.base import Context, Transform

CLASSIC = "classic"
BM25 = "BM25"
# Parameters of a classic similarity that BM25 also takes (it has k1 and b besides).
_SHARED_PARAMS = {"type", "discount_overlaps"}


class ClassicSimilarityToBM25(Transform):
    """``index.similarity.NAME.type: classic`` and a field's ``similarity: classic`` become BM25."""

    name = "classic-similarity-to-bm25"
    summary = ("rewrites the classic (TF-IDF) similarity, which OpenSearch refuses, as BM25: in index.similarity.* "
               "and in field mappings; scores and the order of results differ from the source")

    def applies(self, ctx: Context) -> bool:
        """Every pair with an OpenSearch target (Elasticsearch 6 indices, also when held by a later engine)."""
        return ctx.target.is_opensearch

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Rewrite custom similarities of type classic and fields that use the built-in classic similarity."""
        names: list[str] = []
        for key in list(obj.settings):
            parts = key.split(".")
            if len(parts) == 4 and parts[:2] == ["index", "similarity"] and parts[3] == "type" \
                    and str(obj.settings[key]).lower() == CLASSIC:
                obj.settings[key] = BM25
                names.append(parts[2])
                prefix = f"index.similarity.{parts[2]}."
                for other in [k for k in obj.settings if k.startswith(prefix)]:
                    if other[len(prefix):] not in _SHARED_PARAMS:
                        names[-1] += f" (dropped {other[len(prefix):]}={obj.settings.pop(other)})"
        fields: list[str] = []

        def visit(path: str, field: dict[str, Any]) -> None:
            if str(field.get("similarity", "")).lower() == CLASSIC:
                field["similarity"] = BM25
                fields.append(path)

        for body in obj.mappings.values():
            visit_fields(body, visit)
        if names or fields:
            obj.note(self.name)
            where = [f"similarity {n}" for n in names] + [f"field {f}" for f in fields]
            obj.warn(f"classic similarity rewritten BM25 ({', '.join(where)}): the target refuses classic (TF-IDF); "
                     "scores and the order of results differ from the source")
