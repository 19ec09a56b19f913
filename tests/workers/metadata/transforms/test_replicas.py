"""The replica override reaches indices and the templates that set a replica count."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx
from workers.metadata import objects
from workers.metadata.transforms.replicas import ReplicaOverride

RULE = ReplicaOverride()


def test_applies_only_when_given() -> None:
    assert not RULE.applies(ctx("es:7.10.2")) and RULE.applies(ctx("es:7.10.2", replicas=0))


def test_indices_and_templates() -> None:
    obj = objects.index("a", {"index.number_of_replicas": "2", "index.auto_expand_replicas": "0-1"}, {}, {})
    RULE.apply(obj, ctx("es:7.10.2", replicas=0))
    assert obj.settings["index.number_of_replicas"] == "0"
    assert obj.warnings == ["index.auto_expand_replicas=0-1 takes precedence over the replica override"]
    bare = objects.legacy_template("t", {"index_patterns": ["t-*"], "settings": {"number_of_shards": 1}})
    RULE.apply(bare, ctx("es:7.10.2", replicas=0))
    assert "index.number_of_replicas" not in bare.settings
    explicit = objects.legacy_template("u", {"index_patterns": ["u-*"], "settings": {"number_of_replicas": 3}})
    RULE.apply(explicit, ctx("es:7.10.2", replicas=0))
    assert explicit.settings["index.number_of_replicas"] == "0"
