"""What a set of tuple files says: counts per endpoint (method and path pattern) and comparison kind.

``summarize`` reads only the three columns it needs from each file, so it stays quick on large tuple sets.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from workers.replay.tuples.location import TupleStoreError, open_location
from workers.replay.tuples.patterns import path_pattern

__all__ = ["TupleSummary", "path_pattern", "read_tuples", "summarize"]

_SUMMARY_COLUMNS = ("method", "path_pattern", "kind")
_BATCH_ROWS = 1024


@dataclass
class TupleSummary:
    """Counts of tuples per (method, path pattern) and comparison kind."""

    counts: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)

    def add(self, method: str, pattern: str, kind: str, n: int = 1) -> None:
        """Count ``n`` tuples of this endpoint and kind."""
        self.counts.setdefault((method, pattern), Counter())[kind] += n

    def add_row(self, row: dict[str, Any]) -> None:
        """Count one tuple row (as :func:`read_tuples` gives it)."""
        pattern = row.get("path_pattern") or (path_pattern(row["path"]) if row.get("path") else "?")
        self.add(row.get("method") or "?", pattern, row.get("kind") or "?")

    def merge(self, other: TupleSummary) -> None:
        """Add another summary's counts to this one's (several replayers, several locations)."""
        for (method, pattern), kinds in other.counts.items():
            self.counts.setdefault((method, pattern), Counter()).update(kinds)

    @property
    def total(self) -> int:
        """Every tuple counted."""
        return sum(sum(kinds.values()) for kinds in self.counts.values())

    @property
    def kinds(self) -> Counter[str]:
        """Tuples per comparison kind, over all endpoints."""
        out: Counter[str] = Counter()
        for kinds in self.counts.values():
            out.update(kinds)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: totals, then one entry per endpoint, the busiest first."""
        endpoints = sorted(self.counts.items(), key=lambda item: (-sum(item[1].values()), item[0]))
        return {
            "total": self.total,
            "kinds": dict(self.kinds.most_common()),
            "endpoints": [{"method": method, "pattern": pattern, "total": sum(kinds.values()),
                           "kinds": dict(kinds.most_common())} for (method, pattern), kinds in endpoints],
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TupleSummary:
        """The summary :meth:`to_dict` described."""
        summary = cls()
        for e in data.get("endpoints", []):
            for kind, n in e["kinds"].items():
                summary.add(e["method"], e["pattern"], kind, int(n))
        return summary


def read_tuples(location: str | Path, *, columns: Sequence[str] | None = None, s3_endpoint: str | None = None,
                s3_region: str | None = None) -> Iterator[dict[str, Any]]:
    """Every tuple row under ``location`` (a folder, one Parquet file, or ``s3://bucket/prefix``), file by file in
    time order; ``columns`` reads only those. Rows are read lazily, a batch at a time."""
    store = open_location(location, s3_endpoint=s3_endpoint, s3_region=s3_region)
    for name in store.names():
        with store.open(name) as source:
            try:
                parquet = pq.ParquetFile(source)
                wanted = [c for c in columns if c in parquet.schema_arrow.names] if columns is not None else None
                for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=wanted):
                    yield from batch.to_pylist()
            except (pa.ArrowInvalid, OSError) as exc:
                raise TupleStoreError(f"tuple file {name} in {store.uri} is not readable Parquet: {exc}") from None


def summarize(location: str | Path, *, s3_endpoint: str | None = None, s3_region: str | None = None) -> TupleSummary:
    """The :class:`TupleSummary` of every tuple under ``location``."""
    summary = TupleSummary()
    for row in read_tuples(location, columns=_SUMMARY_COLUMNS, s3_endpoint=s3_endpoint, s3_region=s3_region):
        summary.add_row(row)
    return summary
