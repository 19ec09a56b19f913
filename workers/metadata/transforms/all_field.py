"""Remove ``_all`` and ``include_in_all`` (Elasticsearch 6 and older); OpenSearch has no ``_all`` field."""

from __future__ import annotations

from typing import Any

from workers.metadata.mappings import visit_fields
from workers.metadata.model import MetadataObject
from workers.metadata.transforms.base import Context, Transform


class RemoveAllField(Transform):
    """Drop ``_all`` from mapping roots and ``include_in_all`` from fields, with a warning."""

    name = "remove-all-field"
    summary = "removes _all and include_in_all, warning that queries on _all need a copy_to field"

    def applies(self, ctx: Context) -> bool:
        """Elasticsearch 6 and older (``_all`` was removed in 7)."""
        return ctx.source.es_at_most(6)

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Remove ``_all`` (warning when it was on) and every ``include_in_all``."""
        enabled: list[str] = []
        included: list[str] = []

        def visit(path: str, field: dict[str, Any]) -> None:
            if "include_in_all" in field:
                if str(field.pop("include_in_all")).lower() == "true":
                    included.append(path)
                obj.note(self.name)

        for type_name, body in sorted(obj.mappings.items()):
            all_field = body.pop("_all", None)
            if isinstance(all_field, dict):
                obj.note(self.name)
                if str(all_field.get("enabled", True)).lower() != "false":
                    enabled.append(type_name)
            elif obj.kind == "index" and ctx.source.es_at_most(5) and body.get("properties"):
                # Elasticsearch 5 indices have _all on unless their mapping turned it off.
                enabled.append(type_name)
            if body.pop("include_in_all", None) is not None:
                obj.note(self.name)
            visit_fields(body, visit)
        if enabled:
            obj.warn(f"_all was on (mapping type {', '.join(enabled)}) and does not exist on the target: "
                     "queries on _all need a copy_to field")
        if included:
            obj.warn(f"include_in_all removed from {', '.join(included)}")
