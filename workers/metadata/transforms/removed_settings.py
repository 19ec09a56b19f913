"""Settings OpenSearch 2.x/3.x refuse at index creation whichever engine wrote them: removed, saying what changes.

Every entry was checked against real OpenSearch 2.19 and 3.8 targets (see docs/metadata-migration.md). Templates
lose them too: a template's settings are applied to each index it creates, and the target would refuse those.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.metadata.model import MetadataObject
from workers.metadata.settings import matches_prefix
from workers.metadata.transforms.base import Context, Transform
from workers.metadata.versions import EngineVersion


@dataclass(frozen=True)
class Removed:
    """Settings under ``prefix`` are removed on targets from ``since`` on, with ``why`` in the warning."""

    prefix: str
    why: str
    since: tuple[int, int] = (0, 0)

    def refused_by(self, target: EngineVersion) -> bool:
        """True when ``target`` refuses the setting."""
        return target.os_at_least(*self.since)


_REMOVED = (
    Removed("index.mapper.dynamic", "it only switched off automatic creation of mapping types, which no longer "
            "exist (removed in Elasticsearch 7); new fields still follow the mapping's dynamic parameter"),
    Removed("index.store.throttle", "store throttling was removed from the engine (Elasticsearch 2.0); merges are "
            "throttled automatically"),
    # Archived settings are settings the source no longer knew after an upgrade or a plugin's removal: they did
    # nothing there either. Snapshots hold them as archived.index.*, which settings flattening puts under index.
    Removed("index.archived", "the source had archived it (it no longer knew it after an upgrade or a plugin's "
            "removal), so it had no effect there either"),
    Removed("archived", "the source had archived it (it no longer knew it after an upgrade or a plugin's "
            "removal), so it had no effect there either"),
    Removed("index.shadow_replicas", "shadow replicas were removed in Elasticsearch 6; the target's replicas hold "
            "their own copy"),
    Removed("index.shared_filesystem", "shadow replicas were removed in Elasticsearch 6; the target's replicas "
            "hold their own copy"),
    Removed("index.merge.policy.max_merge_at_once_explicit", "Lucene 9 removed this limit on forced merges; the "
            "target merges as its tiered merge policy decides", (2, 0)),
    Removed("index.store.hybrid.mmap.extensions", "OpenSearch 3 replaced it with index.store.hybrid.nio.extensions "
            "(the files not memory-mapped); the target's default split between mmap and NIO applies", (3, 0)),
    Removed("index.number_of_search_replicas", "search replicas need a target with remote store and segment "
            "replication; set it again if the target has them"),
)
_SOFT_DELETES = "index.soft_deletes.enabled"
_PRIMARY_SHARDS_PER_NODE = "index.routing.allocation.total_primary_shards_per_node"


class DropRemovedSettings(Transform):
    """Remove soft_deletes off, mapper.dynamic, store throttling, archived settings and other removed settings."""

    name = "drop-removed-settings"
    summary = ("removes, with a warning saying what changes, settings OpenSearch 2.x/3.x refuse whichever engine "
               "wrote them: soft_deletes.enabled=false, mapper.dynamic, store.throttle.*, archived settings, "
               "shadow replicas, merge.policy.max_merge_at_once_explicit, store.hybrid.mmap.extensions (3.x), "
               "search replicas, total_primary_shards_per_node on a target without remote store")

    def applies(self, ctx: Context) -> bool:
        """Every pair with an OpenSearch target."""
        return ctx.target.is_opensearch

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Drop each refused setting and warn, once per reason, naming the settings."""
        warned: dict[str, list[str]] = {}
        for key in list(obj.settings):
            rule = next((r for r in _REMOVED if matches_prefix(key, (r.prefix,))), None)
            if rule is None or not rule.refused_by(ctx.target):
                continue
            if rule.prefix == "index.number_of_search_replicas" and obj.settings[key] == "0" \
                    and ctx.target.os_at_least(3):
                continue  # 0 is the default, and OpenSearch 3 knows the setting
            warned.setdefault(rule.why, []).append(f"{key}={obj.settings.pop(key)}")
        # OpenSearch 2.0 refuses to create an index without soft deletes (1.x and Elasticsearch 6/7 only
        # deprecated it); the simulation does not check it, so nothing else would predict the failure.
        if str(obj.settings.get(_SOFT_DELETES)).lower() == "false" and ctx.target.os_at_least(2):
            del obj.settings[_SOFT_DELETES]
            warned.setdefault("OpenSearch 2 and later always keep soft deletes and refuse to create an index "
                              "without them; deleted and updated documents are purged by merges, after the "
                              "retention that peer recovery needs", []).append(f"{_SOFT_DELETES}=false")
        value = obj.settings.get(_PRIMARY_SHARDS_PER_NODE)
        if value is not None and ctx.settings.refuses(_PRIMARY_SHARDS_PER_NODE, str(value)):
            del obj.settings[_PRIMARY_SHARDS_PER_NODE]
            warned.setdefault("the target refuses it (OpenSearch takes it only on clusters with remote store); "
                              "index.routing.allocation.total_shards_per_node still limits shards per node",
                              []).append(f"{_PRIMARY_SHARDS_PER_NODE}={value}")
        for why, dropped in warned.items():
            obj.note(self.name)
            obj.warn(f"removed {', '.join(dropped)}: {why}")
