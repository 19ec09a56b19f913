"""Rename rules applied consistently: index names, alias names, and template index patterns and aliases."""

from __future__ import annotations

from workers.metadata.model import MetadataObject
from workers.metadata.transforms.base import Context, Transform


class RenameIndices(Transform):
    """Rename indices, aliases and template patterns with the user's rules (first matching rule wins)."""

    name = "rename"
    summary = "renames indices, their aliases and template index patterns with the --rename rules"

    def applies(self, ctx: Context) -> bool:
        """Whenever rename rules were given."""
        return bool(ctx.options.rename)

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Rename ``obj`` (an index), its aliases, and a template's patterns."""
        rules = ctx.options.rename
        changes: list[str] = []
        if obj.kind == "index":
            new = rules.apply(obj.name)
            if new != obj.name:
                changes.append(f"index {obj.name} → {new}")
                obj.name = new
        renamed_aliases = {}
        for alias, spec in obj.aliases.items():
            new = rules.apply(alias)
            if new != alias:
                changes.append(f"alias {alias} → {new}")
            renamed_aliases[new] = spec
        obj.aliases = renamed_aliases
        patterns = obj.extra.get("index_patterns")
        if isinstance(patterns, list):
            renamed = [rules.apply(p) for p in patterns]
            if renamed != patterns:
                changes.append(f"patterns {', '.join(patterns)} → {', '.join(renamed)}")
                obj.extra["index_patterns"] = renamed
        if changes:
            obj.note(self.name)
            obj.warn("renamed: " + "; ".join(changes))
