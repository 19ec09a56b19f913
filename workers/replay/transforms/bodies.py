"""Editing the index-naming parts of ``_bulk``, ``_msearch`` and ``_mget`` bodies, touching nothing else.

``_bulk`` and ``_msearch`` are newline-delimited JSON: only their action (header) lines are parsed; document and
query lines are copied through as the bytes they are, never re-serialised. An edited action line is written back
compact; the body is rebuilt with one join, and returned as the same object when nothing changed. A body whose
action lines cannot be parsed is returned unchanged: the target rejects it as the source did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

# Edits one action's metadata (``{"_index": ..., "_id": ...}``) or one search header in place; True when it changed.
Edit = Callable[[dict[str, Any]], bool]


def _next_line(body: bytes, pos: int) -> int:
    end = body.find(b"\n", pos)
    return len(body) if end < 0 else end


def rewrite_bulk(body: bytes, edit: Edit) -> bytes:
    """A ``_bulk`` body with ``edit`` applied to every action's metadata.

    Each action line is followed by its document line, except ``delete``'s. Blank lines between actions are kept.
    """
    # The hot loop of a replayed bulk: locals for what it calls, slices only of action lines, no per-byte work.
    find, loads, dumps = body.find, orjson.loads, orjson.dumps
    view = memoryview(body)
    parts: list[bytes | memoryview] = []
    copied = pos = 0
    size = len(body)
    while pos < size:
        end = find(b"\n", pos)
        if end < 0:
            end = size
        line = body[pos:end]
        try:
            action = loads(line)
        except orjson.JSONDecodeError:
            if line.strip():
                return body
            pos = end + 1
            continue
        if type(action) is not dict or len(action) != 1:
            return body
        ((op, meta),) = action.items()
        if type(meta) is dict and edit(meta):
            parts += (view[copied:pos], dumps(action))
            copied = end
        pos = end + 1
        if op != "delete":
            end = find(b"\n", pos)
            pos = size if end < 0 else end + 1
    if not parts:
        return body
    parts.append(view[copied:])
    return b"".join(parts)


def rewrite_msearch(body: bytes, edit: Edit) -> bytes:
    """An ``_msearch`` body with ``edit`` applied to every header (each header line is followed by its query).

    An empty header line stands for ``{}``: the edit sees an empty header, and an edited one is written out.
    """
    view = memoryview(body)
    parts: list[bytes | memoryview] = []
    copied = pos = 0
    size = len(body)
    # Elasticsearch skips a leading empty line.
    if body.startswith(b"\n"):
        pos = 1
    while pos < size:
        end = _next_line(body, pos)
        line = bytes(view[pos:end])
        try:
            header = orjson.loads(line) if line.strip() else {}
        except orjson.JSONDecodeError:
            return body
        if not isinstance(header, dict):
            return body
        if edit(header):
            parts += (view[copied:pos], orjson.dumps(header))
            copied = end
        pos = _next_line(body, end + 1) + 1
    if not parts:
        return body
    parts.append(view[copied:])
    return b"".join(parts)


def rewrite_mget(body: bytes, edit: Edit) -> bytes:
    """An ``_mget`` body with ``edit`` applied to every entry of ``docs`` (a small JSON document: re-serialised only
    when an entry changed)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    docs = doc.get("docs") if isinstance(doc, dict) else None
    if not isinstance(docs, list):
        return body
    changed = False
    for entry in docs:
        if isinstance(entry, dict) and edit(entry):
            changed = True
    return orjson.dumps(doc) if changed else body


def rewrite_body(api: str | None, body: bytes, edit: Edit) -> bytes:
    """The body of a call to ``api`` with ``edit`` applied to its index-naming parts (other APIs: unchanged)."""
    if not body:
        return body
    if api == "_bulk":
        return rewrite_bulk(body, edit)
    if api == "_msearch":
        return rewrite_msearch(body, edit)
    if api == "_mget":
        return rewrite_mget(body, edit)
    return body
