"""Legacy templates of Elasticsearch 5 and older have one ``template`` pattern; later ones ``index_patterns``."""

from __future__ import annotations

from workers.metadata.model import MetadataObject
from workers.metadata.transforms.base import Context, Transform


class TemplateToIndexPatterns(Transform):
    """``template: "logs-*"`` → ``index_patterns: ["logs-*"]``."""

    name = "template-to-index-patterns"
    summary = "rewrites a legacy template's template pattern as index_patterns"

    def applies(self, ctx: Context) -> bool:
        """Elasticsearch 5 and older (6.0 introduced index_patterns)."""
        return ctx.source.es_at_most(5)

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Move ``template`` into ``index_patterns``."""
        if obj.kind != "legacy_template" or "template" not in obj.extra:
            return
        pattern = obj.extra.pop("template")
        patterns = pattern if isinstance(pattern, list) else [pattern]
        obj.extra["index_patterns"] = [*obj.extra.get("index_patterns", []), *patterns]
        obj.note(self.name)
