"""Setting values OpenSearch refuses: legacy and plugin codecs, check_on_startup fix, store types."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx
from workers.metadata import objects
from workers.metadata.transforms.setting_values import RewriteRefusedValues

RULE = RewriteRefusedValues()


def _apply(settings: dict[str, object], source: str = "es:8.19.21", target: str = "os:2.19.6",
           refused: set[tuple[str, str]] | None = None) -> objects.MetadataObject:
    obj = objects.index("i", settings, {}, {})
    RULE.apply(obj, ctx(source, target, refused=refused))
    return obj


def test_applies_to_every_opensearch_target() -> None:
    assert RULE.applies(ctx("es:5.6.16")) and RULE.applies(ctx("os:2.19.6", "os:3.8.0"))


def test_elasticsearch_legacy_codecs_become_their_opensearch_names() -> None:
    obj = _apply({"index.codec": "legacy_best_compression"})
    assert obj.settings == {"index.codec": "best_compression"}
    assert obj.warnings == ["index.codec legacy_best_compression rewritten best_compression: the same stored-fields "
                            "compression under the name OpenSearch uses"]
    assert _apply({"index.codec": "legacy_default"}).settings == {"index.codec": "default"}
    assert _apply({"index.codec": "best_compression"}).warnings == []


def test_plugin_codecs_only_when_the_target_lacks_them() -> None:
    refused = {("index.codec", c) for c in ("zstd", "zstd_no_dict", "qat_lz4", "qat_deflate")}
    for codec, built_in in (("zstd", "best_compression"), ("zstd_no_dict", "best_compression"),
                            ("qat_deflate", "best_compression"), ("qat_lz4", "default")):
        obj = _apply({"index.codec": codec}, "os:2.19.6", "os:3.8.0", refused)
        assert obj.settings == {"index.codec": built_in}
        assert obj.warnings[0].startswith(f"index.codec {codec} rewritten {built_in}: the target lacks this codec")
        # A target with the custom-codecs plugin keeps it.
        assert _apply({"index.codec": codec}, "os:2.19.6", "os:3.8.0").settings == {"index.codec": codec}


def test_check_on_startup_fix() -> None:
    obj = _apply({"index.shard.check_on_startup": "fix"}, "es:6.8.23")
    assert obj.settings == {"index.shard.check_on_startup": "true"}
    assert obj.warnings[0].startswith("index.shard.check_on_startup fix rewritten true: a shard found corrupt")
    assert _apply({"index.shard.check_on_startup": "checksum"}, "es:6.8.23").warnings == []


def test_store_types() -> None:
    obj = _apply({"index.store.type": "default", "index.number_of_shards": "1"}, "es:5.6.16")
    assert obj.settings == {"index.number_of_shards": "1"}
    assert obj.warnings == ["removed index.store.type=default: the Elasticsearch 5 default store (memory-mapped and "
                            "NIO files); the target's default store, fs, is the same mix"]
    mounted = _apply({"index.store.type": "remote_snapshot", "index.searchable_snapshot.repository": "r",
                      "index.searchable_snapshot.snapshot_id.name": "s1"}, "os:2.19.6", "os:3.8.0")
    assert mounted.settings == {}
    assert mounted.warnings[0].startswith("removed index.store.type=remote_snapshot, "
                                          "index.searchable_snapshot.repository=r, ")
    assert _apply({"index.store.type": "snapshot"}).settings == {}
    smb = {("index.store.type", "smb_mmap_fs"), ("index.store.type", "smb_simple_fs")}
    assert _apply({"index.store.type": "smb_mmap_fs"}, refused=smb).settings == {"index.store.type": "mmapfs"}
    assert _apply({"index.store.type": "smb_simple_fs"}, refused=smb).settings == {"index.store.type": "niofs"}
    assert _apply({"index.store.type": "smb_nio_fs"}).settings == {"index.store.type": "smb_nio_fs"}
    for kept in ("fs", "niofs", "mmapfs", "hybridfs", "simplefs"):
        assert _apply({"index.store.type": kept}).warnings == []
