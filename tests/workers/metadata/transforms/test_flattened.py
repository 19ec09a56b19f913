"""flattened → flat_object on OpenSearch 2.7+, blocked on older targets."""

from __future__ import annotations

import copy

from tests.workers.metadata.helpers import ctx, field
from workers.metadata import objects
from workers.metadata.transforms.flattened import FlattenedToFlatObject

RULE = FlattenedToFlatObject()
COMPONENT = {"template": {"mappings": {"properties": {
    "labels": {"type": "flattened", "depth_limit": 5, "ignore_above": 1024},
    "host": {"properties": {"tags": {"type": "flattened"}}}}}}}


def test_applies_from_elasticsearch_7_3() -> None:
    assert RULE.applies(ctx("es:7.3.0")) and RULE.applies(ctx("es:9.2.0", "os:3.8.0"))
    assert not RULE.applies(ctx("es:7.2.0")) and not RULE.applies(ctx("os:2.19.6", "os:3.8.0"))


def test_flattened_becomes_flat_object() -> None:
    obj = objects.component_template("labels", copy.deepcopy(COMPONENT))
    RULE.apply(obj, ctx("es:8.19.21", "os:2.19.6"))
    assert field(obj, "labels") == {"type": "flat_object"}
    assert field(obj, "host.tags") == {"type": "flat_object"}
    assert obj.warnings == ["field labels: flattened became flat_object; dropped depth_limit, ignore_above"]


def test_targets_before_2_7_block() -> None:
    obj = objects.component_template("labels", copy.deepcopy(COMPONENT))
    RULE.apply(obj, ctx("es:8.19.21", "os:1.3.20"))
    assert len(obj.blockers) == 2 and "flattened has no equivalent before OpenSearch 2.7" in obj.blockers[0]
