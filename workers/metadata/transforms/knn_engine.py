"""k-NN fields on the nmslib engine (OpenSearch before 3) move to faiss, which OpenSearch 3 keeps."""

from __future__ import annotations

from typing import Any

from workers.metadata.mappings import visit_fields
from workers.metadata.model import MetadataObject
from workers.metadata.transforms.base import Context, Transform

# Space types faiss supports; nmslib also had l1 and linf.
FAISS_SPACES = {"l2", "innerproduct", "cosinesimil", "hamming"}


class NmslibToFaiss(Transform):
    """``method.engine: nmslib`` → ``faiss`` (same HNSW parameters); l1/linf spaces block."""

    name = "knn-nmslib-to-faiss"
    summary = "moves knn_vector fields from the nmslib engine (deprecated in OpenSearch 3) to faiss"

    def applies(self, ctx: Context) -> bool:
        """OpenSearch 1.x/2.x source, OpenSearch 3+ target."""
        return ctx.source.os_below(3) and ctx.target.os_at_least(3)

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Rewrite the engine of every nmslib knn_vector field."""
        def visit(path: str, field: dict[str, Any]) -> None:
            method = field.get("method")
            if field.get("type") != "knn_vector" or not isinstance(method, dict) or method.get("engine") != "nmslib":
                return
            obj.note(self.name)
            space = method.get("space_type", "l2")
            if space not in FAISS_SPACES:
                obj.block(f"field {path}: space type {space} of nmslib has no faiss equivalent")
                return
            method["engine"] = "faiss"
            obj.warn(f"field {path}: k-NN engine nmslib replaced by faiss (graphs are rebuilt by the backfill)")

        for body in obj.mappings.values():
            visit_fields(body, visit)
