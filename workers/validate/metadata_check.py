"""Metadata comparison: the target's indices (mappings, settings, aliases) against what the metadata evaluation
plans for them now, re-derived from the snapshot with the workflow's own options (the evaluation keeps no bodies).

The plan already has the transformations applied, so what they change (a dropped type, a renamed index, a setting
OpenSearch refuses) is not a difference; each index's transformations are listed as expected changes beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch

from workers.metadata.options import MigrationOptions
from workers.metadata.plan import evaluate
from workers.metadata.source import SnapshotLocation, read_source
from workers.metadata.versions import EngineVersion

# The evaluation's action for an index on the target, as the report states it.
_STATUS = {"exists-identical": "as planned", "exists-different": "differs", "create": "missing on the target",
           "blocked": "not migrated (blocked)", "excluded": "not migrated (excluded)"}


@dataclass(frozen=True)
class MetadataRow:
    """One target index's metadata against the plan."""

    index: str
    source_index: str
    status: str  # "as planned", "differs", "missing on the target", "not migrated (…)"
    differences: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)  # transformations applied: differences from the source

    @property
    def ok(self) -> bool:
        """True unless the target differs from the plan or lacks the index."""
        return self.status not in ("differs", "missing on the target")

    def to_dict(self) -> dict[str, Any]:
        """Plain values."""
        return {"index": self.index, "source_index": self.source_index, "status": self.status,
                "differences": self.differences, "expected": self.expected}


def compare_metadata(location: SnapshotLocation, target: OpenSearch, where: str, options: MigrationOptions,
                     target_indices: set[str], version: EngineVersion | None = None) -> list[MetadataRow]:
    """A row per planned index among ``target_indices``."""
    report = evaluate(read_source(snapshot=location, version=version), target, where, options)
    rows = []
    for row in report.rows:
        if row.kind != "index" or row.name not in target_indices:
            continue
        rows.append(MetadataRow(row.name, row.source_name, _STATUS.get(row.action, row.action),
                                list(row.differences) if row.action == "exists-different" else [],
                                list(row.transformations)))
    return sorted(rows, key=lambda r: r.index)
