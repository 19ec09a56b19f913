"""Elasticsearch ``flattened`` becomes OpenSearch ``flat_object`` (OpenSearch 2.7+)."""

from __future__ import annotations

from typing import Any

from workers.metadata.mappings import visit_fields
from workers.metadata.model import MetadataObject
from workers.metadata.transforms.base import Context, Transform


class FlattenedToFlatObject(Transform):
    """``flattened`` → ``flat_object``; its parameters have no equivalent and are dropped with a warning."""

    name = "flattened-to-flat-object"
    summary = "rewrites flattened as flat_object (OpenSearch 2.7+; blocked on older targets)"

    def applies(self, ctx: Context) -> bool:
        """Elasticsearch 7.3+ source (flattened appeared in 7.3), OpenSearch target."""
        return ctx.source.es_at_least(7, 3) and ctx.target.is_opensearch

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Convert every flattened field, or block when the target predates flat_object."""
        def visit(path: str, field: dict[str, Any]) -> None:
            if field.get("type") != "flattened":
                return
            obj.note(self.name)
            if ctx.target.os_below(2, 7):
                obj.block(f"field {path}: flattened has no equivalent before OpenSearch 2.7 (flat_object); "
                          f"the target is {ctx.target}")
                return
            dropped = sorted(k for k in field if k != "type")
            field.clear()
            field["type"] = "flat_object"
            if dropped:
                obj.warn(f"field {path}: flattened became flat_object; dropped {', '.join(dropped)}")

        for body in obj.mappings.values():
            visit_fields(body, visit)
