"""Rename rules reach indices, aliases and template patterns alike."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx, index
from workers.metadata import objects
from workers.metadata.transforms.rename import RenameIndices

RULE = RenameIndices()
RULES = ["regex:logs-(\\d{4})\\.(\\d{2})=logs-v2-$1-$2", "products=catalog", "regex:logs-(.*)=logs-v2-$1"]


def test_applies_only_with_rules() -> None:
    assert not RULE.applies(ctx("es:7.10.2"))
    assert RULE.applies(ctx("es:7.10.2", rename=RULES))


def test_index_and_its_aliases() -> None:
    obj = index("logs-2024.05", {}, aliases={"logs-current": {"is_write_index": True}, "all-logs": {}})
    RULE.apply(obj, ctx("es:7.10.2", rename=RULES))
    assert obj.name == "logs-v2-2024-05" and obj.source_name == "logs-2024.05"
    assert obj.aliases == {"logs-v2-current": {"is_write_index": True}, "all-logs": {}}
    assert obj.warnings == ["renamed: index logs-2024.05 → logs-v2-2024-05; alias logs-current → logs-v2-current"]


def test_template_patterns_follow() -> None:
    obj = objects.index_template("logs", {"index_patterns": ["logs-*", "products"], "template": {}})
    RULE.apply(obj, ctx("es:7.10.2", rename=RULES))
    assert obj.extra["index_patterns"] == ["logs-v2-*", "catalog"]
    assert obj.name == "logs"  # templates keep their names
