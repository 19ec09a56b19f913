"""Setting values OpenSearch 2.x/3.x refuse: rewritten to the target's equivalent, or removed when there is none.

Checked against real OpenSearch 2.19 and 3.8 targets. Values a target plugin may provide (zstd and QAT codecs of
custom-codecs, the SMB store types of store-smb) are rewritten only when this target refuses them.
"""

from __future__ import annotations

from workers.metadata.model import MetadataObject
from workers.metadata.settings import matches_prefix
from workers.metadata.transforms.base import Context, Transform

CODEC = "index.codec"
CHECK_ON_STARTUP = "index.shard.check_on_startup"
STORE_TYPE = "index.store.type"
# Elasticsearch 8.x names for the codecs every OpenSearch has under their old names: the same stored fields.
_LEGACY_CODECS = {"legacy_default": "default", "legacy_best_compression": "best_compression"}
# Codecs of OpenSearch's custom-codecs plugin: replaced, when the target lacks them, by the built-in codec nearest
# in purpose (zstd and DEFLATE both favour size; QAT LZ4 is LZ4 in hardware).
_PLUGIN_CODECS = {"zstd": "best_compression", "zstd_no_dict": "best_compression",
                  "qat_deflate": "best_compression", "qat_lz4": "default"}
# Store types of the store-smb plugin (Windows shares) and the plain store each wraps.
_SMB_STORES = {"smb_mmap_fs": "mmapfs", "smb_nio_fs": "niofs", "smb_simple_fs": "niofs"}
# Store types no OpenSearch accepts at creation, and what each meant.
_REMOVED_STORES = {
    "default": "the Elasticsearch 5 default store (memory-mapped and NIO files); the target's default store, fs, "
               "is the same mix",
    "snapshot": "an Elasticsearch searchable snapshot index; the target creates a regular index that holds its "
                "documents on its own disks",
    "remote_snapshot": "an OpenSearch searchable snapshot index; the target creates a regular index that holds its "
                       "documents on its own disks",
}
# Settings that describe the snapshot a searchable snapshot index was mounted from.
_SEARCHABLE_SNAPSHOT = ("index.searchable_snapshot",)


class RewriteRefusedValues(Transform):
    """Legacy and plugin codecs, ``check_on_startup: fix``, store types the target lacks."""

    name = "rewrite-refused-values"
    summary = ("rewrites setting values OpenSearch refuses: codec legacy_default → default, legacy_best_compression "
               "→ best_compression, zstd/zstd_no_dict/qat_* → a built-in codec when the target lacks them, "
               "shard.check_on_startup fix → true, SMB store types → their plain store when the target lacks them; "
               "removes the default, snapshot and remote_snapshot store types")

    def applies(self, ctx: Context) -> bool:
        """Every pair with an OpenSearch target."""
        return ctx.target.is_opensearch

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Rewrite or remove each refused value, with a warning saying what changes."""
        self._codec(obj, ctx)
        if obj.settings.get(CHECK_ON_STARTUP) == "fix":
            self._rewrite(obj, CHECK_ON_STARTUP, "true", "a shard found corrupt when it opens now fails instead of "
                          "being repaired by dropping its damaged segments (Elasticsearch 7 removed fix)")
        self._store(obj, ctx)

    def _codec(self, obj: MetadataObject, ctx: Context) -> None:
        codec = obj.settings.get(CODEC)
        if not isinstance(codec, str):
            return
        if codec in _LEGACY_CODECS:
            self._rewrite(obj, CODEC, _LEGACY_CODECS[codec], "the same stored-fields compression under the name "
                          "OpenSearch uses")
        elif codec in _PLUGIN_CODECS and ctx.settings.refuses(CODEC, codec):
            self._rewrite(obj, CODEC, _PLUGIN_CODECS[codec], "the target lacks this codec (the custom-codecs plugin "
                          "or the QAT hardware); index size and indexing speed differ, the documents do not")

    def _store(self, obj: MetadataObject, ctx: Context) -> None:
        store = obj.settings.get(STORE_TYPE)
        if not isinstance(store, str):
            return
        if store in _REMOVED_STORES:
            removed = [f"{STORE_TYPE}={obj.settings.pop(STORE_TYPE)}"]
            if store in ("snapshot", "remote_snapshot"):
                removed += [f"{k}={obj.settings.pop(k)}" for k in list(obj.settings)
                            if matches_prefix(k, _SEARCHABLE_SNAPSHOT)]
            obj.note(self.name)
            obj.warn(f"removed {', '.join(removed)}: {_REMOVED_STORES[store]}")
        elif store in _SMB_STORES and ctx.settings.refuses(STORE_TYPE, store):
            self._rewrite(obj, STORE_TYPE, _SMB_STORES[store], "the target lacks the store-smb plugin; the plain "
                          "store reads and writes files the same way")

    def _rewrite(self, obj: MetadataObject, key: str, value: str, why: str) -> None:
        old = obj.settings[key]
        obj.settings[key] = value
        obj.note(self.name)
        obj.warn(f"{key} {old} rewritten {value}: {why}")
