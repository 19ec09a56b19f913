"""The snapshot phase's pure parts: the shards in scope, their keys, the asset's value (no cluster needed)."""

from __future__ import annotations

from workers.common.shard_key import ShardKey
from workers.prepare.snapshot import PreparedSnapshot, RepositorySpec, in_scope


def test_shard_keys_are_the_shards_in_scope_by_index_then_number() -> None:
    prepared = PreparedSnapshot(RepositorySpec("repo", "file:///tmp/repo"), "snap-1", created=True,
                                indices={"products": 2, "logs-2024.01": 1})
    assert prepared.shards == [ShardKey("logs-2024.01", 0), ShardKey("products", 0), ShardKey("products", 1)]
    assert prepared.shard_keys == ["logs-2024.01:0", "products:0", "products:1"]
    assert prepared.to_dict()["shard_keys"] == prepared.shard_keys
    assert [ShardKey.parse(k) for k in prepared.to_dict()["shard_keys"]] == prepared.shards


def test_scope_is_the_allow_list_or_every_index_not_starting_with_a_dot() -> None:
    names = [".kibana_1", "logs-1", "logs-2", "products"]
    assert in_scope(names, []) == ["logs-1", "logs-2", "products"]
    assert in_scope(names, ["regex:logs-.*", ".kibana_1"]) == [".kibana_1", "logs-1", "logs-2"]
