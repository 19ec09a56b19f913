"""Migrate: create what evaluate planned, in dependency order, one object at a time; failures don't stop the rest."""

from __future__ import annotations

from collections.abc import Callable

from opensearchpy import OpenSearch

from workers.metadata.bodies import object_path
from workers.metadata.http import RequestRejected, request
from workers.metadata.model import KIND_ORDER
from workers.metadata.report import Report, Row

Progress = Callable[[Row], None]


def _put(client: OpenSearch, where: str, row: Row, overwrite: bool) -> None:
    params = None if row.kind == "index" or overwrite else {"create": "true"}
    request(client, "PUT", object_path(row.kind, row.name), where=where, params=params, body=row.body)


def _apply_row(client: OpenSearch, where: str, row: Row, allow_existing: bool) -> None:
    if row.action in ("excluded", "blocked"):
        row.result = row.action
        return
    if row.action == "exists-identical":
        row.result = "unchanged"
        return
    if row.action == "exists-different":
        if not allow_existing:
            row.result = "skipped"
            row.reason = "exists on the target with differences; not overwritten (use --allow-existing)"
            return
        if row.kind == "index":
            # An index cannot be replaced without losing its documents: it is kept as it is.
            row.result = "kept-existing"
            return
    try:
        _put(client, where, row, overwrite=row.action == "exists-different")
    except RequestRejected as exc:
        row.result, row.reason = "failed", exc.reason
        return
    row.result = "overwritten" if row.action == "exists-different" else "created"


def migrate(report: Report, client: OpenSearch, where: str, allow_existing: bool = False,
            progress: Progress | None = None) -> Report:
    """Apply ``report`` (from evaluate) to the target; each row gets a ``result`` (and a ``reason`` on failure)."""
    report.mode = "migrate"
    for kind in KIND_ORDER:
        for row in (r for r in report.rows if r.kind == kind):
            _apply_row(client, where, row, allow_existing)
            if progress:
                progress(row)
    return report
