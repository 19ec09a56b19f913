"""A ``_bulk`` body as items (action line plus source line, none for a delete) and the merge of partial retries."""

from __future__ import annotations

from typing import Any

import orjson


def split_items(body: bytes) -> list[bytes]:
    """Each item's lines, newline-terminated, in order."""
    lines = body.split(b"\n")
    items: list[bytes] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        try:
            action = orjson.loads(line)
        except orjson.JSONDecodeError:
            action = {}
        op = next(iter(action), "") if isinstance(action, dict) else ""
        if op == "delete" or i + 1 >= len(lines):
            items.append(line + b"\n")
            i += 1
        else:
            items.append(line + b"\n" + lines[i + 1] + b"\n")
            i += 2
    return items


def item_results(body: bytes) -> list[dict[str, Any]] | None:
    """The per-item results of a bulk response (each ``{status, error?, _id?}``), None when not a bulk response."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return None
    out = []
    for item in items:
        result: Any = next(iter(item.values()), {}) if isinstance(item, dict) and item else {}
        out.append(result if isinstance(result, dict) else {})
    return out


def merge_response(first: bytes, retried_positions: list[int], retried: bytes) -> bytes:
    """``first``'s bulk response with the items at ``retried_positions`` replaced by ``retried``'s items."""
    doc = orjson.loads(first)
    again = orjson.loads(retried)
    items = doc["items"]
    for position, item in zip(retried_positions, again.get("items", []), strict=False):
        items[position] = item
    doc["errors"] = any(isinstance(next(iter(i.values()), {}), dict) and "error" in next(iter(i.values()), {})
                        for i in items if isinstance(i, dict) and i)
    return orjson.dumps(doc)
