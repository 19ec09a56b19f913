"""Comparing a planned object with the target's: identical, or the differences named."""

from __future__ import annotations

from workers.metadata import objects
from workers.metadata.compare import differences


def test_target_defaults_and_string_forms_are_identical() -> None:
    planned = objects.index("a", {"index.number_of_shards": 1, "index.refresh_interval": "5s"},
                            {"properties": {"n": {"type": "keyword", "index": False}}}, {"r": {"index_routing": "1"}})
    existing = objects.index("a", {"index.number_of_shards": "1", "index.refresh_interval": "5s",
                                   "index.uuid": "x", "index.replication.type": "DOCUMENT"},
                             {"properties": {"n": {"type": "keyword", "index": "false"}}},
                             {"r": {"index_routing": "1"}})
    assert differences(planned, existing) == []


def test_differences_are_named() -> None:
    planned = objects.index("a", {"index.number_of_shards": "1"}, {"properties": {"n": {"type": "keyword"}}},
                            {"r": {}})
    existing = objects.index("a", {"index.number_of_shards": "3"},
                             {"properties": {"n": {"type": "text"}, "extra": {"type": "long"}}}, {"other": {}})
    assert differences(planned, existing) == [
        'settings.index.number_of_shards: plan "1", target "3"',
        'mappings.properties.n.type: plan "keyword", target "text"',
        "mappings.properties.extra: on the target only",
        "aliases.r: missing on the target (plan {})",
        "aliases on the target only: other",
    ]
