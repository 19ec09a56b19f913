"""Replica count override: the target's replica count often differs from the source's (zones, node count)."""

from __future__ import annotations

from workers.metadata.model import MetadataObject
from workers.metadata.transforms.base import Context, Transform


class ReplicaOverride(Transform):
    """Set ``index.number_of_replicas`` on every index, and on templates that set it."""

    name = "replica-override"
    summary = "sets number_of_replicas to the chosen count on indices and on templates that set one"

    def applies(self, ctx: Context) -> bool:
        """Whenever a replica count was given."""
        return ctx.options.replicas is not None

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Override the replica count."""
        wanted = str(ctx.options.replicas)
        key = "index.number_of_replicas"
        if obj.kind != "index" and key not in obj.settings:
            return
        if obj.settings.get(key) != wanted:
            obj.settings[key] = wanted
            obj.note(self.name)
        if "index.auto_expand_replicas" in obj.settings:
            obj.warn(f"index.auto_expand_replicas={obj.settings['index.auto_expand_replicas']} takes precedence "
                     "over the replica override")
