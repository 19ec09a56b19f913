"""The snapshot phase's pure parts: the shards in scope, their keys, the asset's value (no cluster needed)."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from opensearchpy.exceptions import ConnectionError

from workers.common.shard_key import ShardKey
from workers.prepare.snapshot import PreparedSnapshot, RepositorySpec, in_scope, start_time


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


class _Snapshots:
    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer

    def get(self, repository: str, snapshot: str) -> dict[str, Any]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _client(answer: dict[str, Any] | Exception) -> Any:
    return SimpleNamespace(snapshot=_Snapshots(answer))


def test_start_time_comes_from_the_snapshot_api_and_is_none_when_the_source_cannot_tell(
        caplog: pytest.LogCaptureFixture) -> None:
    found = {"snapshots": [{"snapshot": "snap-1", "start_time_in_millis": 1700000000123}]}
    assert start_time(_client(found), "repo", "snap-1") == 1700000000123
    caplog.set_level(logging.WARNING, logger="workers.prepare.snapshot")
    for answer in ({"snapshots": [{"snapshot": "snap-1"}]}, ConnectionError("N/A", "refused", None)):
        assert start_time(_client(answer), "repo", "snap-1") is None
    assert caplog.text.count("snapshot repo/snap-1: its start time could not be read") == 2
    prepared = PreparedSnapshot(RepositorySpec("repo", "file:///tmp/repo"), "snap-1", created=True,
                                start_time_ms=1700000000123)
    assert prepared.to_dict()["start_time_ms"] == 1700000000123
