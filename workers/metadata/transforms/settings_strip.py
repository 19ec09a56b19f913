"""Drop settings that belong to the source cluster or to one index's history, keeping the user's own."""

from __future__ import annotations

from workers.metadata.model import MetadataObject
from workers.metadata.settings import matches_prefix
from workers.metadata.transforms.base import Context, Transform

# Written by the engine for one index on one cluster; a target sets its own (or refuses them as private).
_SILENT = (
    "index.uuid", "index.creation_date", "index.creation_date_string", "index.provided_name", "index.version",
    "index.history.uuid", "index.resize", "index.shrink.source", "index.verified_before_close",
    "index.routing.allocation.initial_recovery", "index.routing.allocation.include._tier_preference",
    "index.replication.type", "index.remote_store", "index.mapping.single_type", "index.format",
)
# Per-cluster choices of the user: they name the source's nodes or state, so they are dropped with a warning.
_WARNED = {
    "index.blocks": "write/read blocks are not copied: the backfill must write; set them again after cutover",
    "index.routing.allocation.include": "allocation filters name the source's nodes",
    "index.routing.allocation.require": "allocation filters name the source's nodes",
    "index.routing.allocation.exclude": "allocation filters name the source's nodes",
    "index.plugins.index_state_management.policy_id": "attach the ISM policy on the target",
    "index.opendistro.index_state_management.policy_id": "attach the ISM policy on the target",
}


class StripInternalSettings(Transform):
    """Remove uuid, creation date, version markers, provided name, history uuid, blocks, resize and allocation."""

    name = "strip-internal-settings"
    summary = ("removes per-index and per-cluster settings (uuid, creation_date, version.*, provided_name, "
               "history.uuid, blocks, resize, allocation filters); keeps the user's")

    def applies(self, ctx: Context) -> bool:
        """Every version pair."""
        return True

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Drop the internal keys; warn about the user choices that cannot carry over."""
        warned: dict[str, list[str]] = {}
        for key in list(obj.settings):
            if matches_prefix(key, _SILENT):
                del obj.settings[key]
                obj.note(self.name)
                continue
            prefix = next((p for p in _WARNED if matches_prefix(key, (p,))), None)
            if prefix is not None:
                warned.setdefault(prefix, []).append(f"{key}={obj.settings.pop(key)}")
                obj.note(self.name)
        for prefix, dropped in warned.items():
            obj.warn(f"removed {', '.join(dropped)}: {_WARNED[prefix]}")
