"""Settings OpenSearch 2.x/3.x refuse whichever engine wrote them are removed, each with what it changes."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx
from workers.metadata import objects
from workers.metadata.transforms.removed_settings import DropRemovedSettings

RULE = DropRemovedSettings()
SOFT_DELETES_WARNING = (
    "removed index.soft_deletes.enabled=false: OpenSearch 2 and later always keep soft deletes and refuse to create "
    "an index without them; deleted and updated documents are purged by merges, after the retention that peer "
    "recovery needs")


def test_applies_to_every_opensearch_target() -> None:
    assert RULE.applies(ctx("es:6.8.23")) and RULE.applies(ctx("os:1.3.20", "os:3.8.0"))
    assert RULE.applies(ctx("os:2.19.6", "os:3.8.0"))


def test_soft_deletes_off_from_every_source_and_in_templates() -> None:
    for source in ("es:6.8.23", "es:7.10.2", "es:7.17.29", "os:1.3.20"):
        obj = objects.index("old", {"index.soft_deletes.enabled": "false", "index.number_of_shards": "1"}, {}, {})
        RULE.apply(obj, ctx(source))
        assert obj.settings == {"index.number_of_shards": "1"}, source
        assert obj.warnings == [SOFT_DELETES_WARNING] and obj.transformations == [RULE.name]
    # A template's settings end up on the indices it creates: the target would refuse those.
    template = objects.legacy_template("t", {"index_patterns": ["x-*"],
                                             "settings": {"soft_deletes": {"enabled": False}}})
    RULE.apply(template, ctx("os:1.3.20", "os:3.8.0"))
    assert template.settings == {} and template.warnings == [SOFT_DELETES_WARNING]


def test_soft_deletes_on_is_kept() -> None:
    obj = objects.index("new", {"index.soft_deletes.enabled": "true"}, {}, {})
    RULE.apply(obj, ctx("os:1.3.20"))
    assert obj.settings == {"index.soft_deletes.enabled": "true"} and not obj.warnings


def test_removed_settings_of_older_engines() -> None:
    obj = objects.index("old", {
        "index.mapper.dynamic": "false", "index.store.throttle.type": "merge",
        "index.store.throttle.max_bytes_per_sec": "10mb", "archived.index.foo": "bar",
        "index.shadow_replicas": "true", "index.shared_filesystem.recover_on_any_node": "true",
        "index.merge.policy.max_merge_at_once_explicit": "30", "index.refresh_interval": "5s"}, {}, {})
    assert "index.archived.index.foo" in obj.settings  # snapshots hold archived.*; settings are read under index.
    RULE.apply(obj, ctx("es:6.8.23"))
    assert obj.settings == {"index.refresh_interval": "5s"}
    assert sorted(obj.warnings) == [
        "removed index.archived.index.foo=bar: the source had archived it (it no longer knew it after an upgrade or "
        "a plugin's removal), so it had no effect there either",
        "removed index.mapper.dynamic=false: it only switched off automatic creation of mapping types, which no "
        "longer exist (removed in Elasticsearch 7); new fields still follow the mapping's dynamic parameter",
        "removed index.merge.policy.max_merge_at_once_explicit=30: Lucene 9 removed this limit on forced merges; the "
        "target merges as its tiered merge policy decides",
        "removed index.shadow_replicas=true, index.shared_filesystem.recover_on_any_node=true: shadow replicas were "
        "removed in Elasticsearch 6; the target's replicas hold their own copy",
        "removed index.store.throttle.max_bytes_per_sec=10mb, index.store.throttle.type=merge: store throttling was "
        "removed from the engine (Elasticsearch 2.0); merges are throttled automatically",
    ]


def test_hybrid_mmap_extensions_only_for_opensearch_3() -> None:
    settings = {"index.store.hybrid.mmap.extensions": ["nvd", "dvd"]}
    on_2 = objects.index("i", settings, {}, {})
    RULE.apply(on_2, ctx("os:1.3.20", "os:2.19.6"))
    assert on_2.settings == {"index.store.hybrid.mmap.extensions": ["nvd", "dvd"]} and not on_2.warnings
    on_3 = objects.index("i", settings, {}, {})
    RULE.apply(on_3, ctx("os:2.19.6", "os:3.8.0"))
    assert on_3.settings == {} and on_3.warnings[0].startswith(
        "removed index.store.hybrid.mmap.extensions=['nvd', 'dvd']: OpenSearch 3 replaced it")


def test_search_replicas_and_primary_shards_per_node() -> None:
    key = "index.routing.allocation.total_primary_shards_per_node"
    obj = objects.index("i", {"index.number_of_search_replicas": "1", key: "2"}, {}, {})
    RULE.apply(obj, ctx("os:3.8.0", "os:3.8.0", refused={(key, "2")}))
    assert obj.settings == {} and len(obj.warnings) == 2
    # Zero search replicas is OpenSearch 3's default; a target with remote store takes primary shards per node.
    kept = objects.index("i", {"index.number_of_search_replicas": "0", key: "2"}, {}, {})
    RULE.apply(kept, ctx("os:3.8.0", "os:3.8.0"))
    assert kept.settings == {"index.number_of_search_replicas": "0", key: "2"} and not kept.warnings
    # OpenSearch 2.19 does not know search replicas at all.
    old = objects.index("i", {"index.number_of_search_replicas": "0"}, {}, {})
    RULE.apply(old, ctx("os:3.8.0", "os:2.19.6"))
    assert old.settings == {}
