"""Migrate: create what evaluate planned, in dependency order, one object at a time; failures don't stop the rest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opensearchpy import OpenSearch

from workers.metadata import unknown_settings
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
    overwrite = row.action == "exists-different"
    try:
        _put(client, where, row, overwrite)
    except RequestRejected as exc:
        # Evaluate already dropped what the simulation named; a target that still refuses a setting at creation
        # (or changed since) gets the same fallback, once.
        dropped = unknown_settings.drop_named(_settings(row), exc.reason)
        if not dropped:
            row.result, row.reason = "failed", exc.reason
            return
        _record(row, dropped)
        try:
            _put(client, where, row, overwrite)
        except RequestRejected as again:
            row.result, row.reason = "failed", again.reason
            return
    row.result = "overwritten" if overwrite else "created"


def _settings(row: Row) -> dict[str, Any]:
    """The settings inside the row's request body, changed in place by the fallback (empty when it has none)."""
    body = row.body if row.body is not None else {}
    holder = body.get("template", {}) if row.kind in ("component_template", "index_template") else body
    settings = holder.get("settings")
    return settings if isinstance(settings, dict) else {}


def _record(row: Row, dropped: dict[str, tuple[Any, str]]) -> None:
    if unknown_settings.NAME not in row.transformations:
        row.transformations.append(unknown_settings.NAME)
    for key, (value, how) in dropped.items():
        message = unknown_settings.warning(key, value, how)
        if message not in row.warnings:
            row.warnings.append(message)


def migrate(report: Report, client: OpenSearch, where: str, allow_existing: bool = False,
            progress: Progress | None = None) -> Report:
    """Apply ``report`` (from evaluate) to the target; each row gets a ``result`` (and a ``reason`` on failure)."""
    report.mode = "migrate"
    for kind in KIND_ORDER:
        for row in (r for r in report.rows if r.kind == kind):
            _apply_row(client, where, row, allow_existing)
            if progress:
                progress(row)
    if any(unknown_settings.NAME in r.transformations for r in report.rows):
        report.transformations[unknown_settings.NAME] = unknown_settings.SUMMARY
    return report
