"""A document transformation used by the tests (loaded by import path, as users' hooks are)."""

from __future__ import annotations

from typing import Any


def tag_migrated(doc: dict[str, Any]) -> dict[str, Any] | None:
    """Mark every document; drop the big one (a transform may filter)."""
    if doc["_id"] == "big-doc":
        return None
    doc["_source"]["migrated"] = True
    return doc
