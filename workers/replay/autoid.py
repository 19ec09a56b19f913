"""Writes without an id, replayed with the id the source gave them.

A POST without an ``_id`` (``POST /index/_doc``, ``POST /index/type`` on Elasticsearch <= 6, a bulk ``index`` or
``create`` action without ``_id``) makes the source generate one, and its response says which. Sent as captured, the
target would generate another: the target would not hold the source's documents by id, and a replay repeated after
a crash would add the document twice. So the replayer pins each such write to the id in the source's response, as
an ``index`` of that id: the target ends with the source's ids, and replaying it again overwrites rather than
duplicates. A write whose source response is missing or unreadable cannot be pinned; it is sent as captured and
counted (``unpinned``): those are the only writes a repeated replay may duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlencode

import orjson

from workers.replay.messages import HttpRequest, HttpResponse, path_of


@dataclass(frozen=True)
class Pinned:
    """The request to replay and how many auto-id writes it pinned or could not pin."""

    request: HttpRequest
    pinned: int = 0
    unpinned: int = 0


def _without_op_type(query: str) -> str:
    if "op_type" not in query:
        return query
    return urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "op_type"])


def _is_single_auto_id(request: HttpRequest) -> bool:
    if request.method != "POST":
        return False
    segments = request.segments
    return (len(segments) == 2 and not segments[0].startswith("_")
            and (segments[1] == "_doc" or not segments[1].startswith("_")))


def _bulk_needs_pinning(body: bytes) -> bool:
    """False when every action line names an ``_id`` (the usual case for indexing tools), found without splitting
    or parsing the body: only the action lines are looked at, the documents are stepped over."""
    pos, size = 0, len(body)
    while pos < size:
        end = body.find(b"\n", pos)
        end = size if end < 0 else end
        line = body[pos:end]
        pos = end + 1
        if not line.strip():
            continue
        if b'"_id"' not in line:
            return True
        if b'"delete"' not in line[:24]:  # a delete action has no source line after it
            end = body.find(b"\n", pos)
            pos = size if end < 0 else end + 1
    return False


def pin_auto_ids(request: HttpRequest, source: HttpResponse | None) -> Pinned:
    """``request`` with every auto-id write given the id the source generated (see the module's docstring)."""
    if _is_single_auto_id(request):
        doc_id = _response_id(source)
        if doc_id is None:
            return Pinned(request, unpinned=1)
        index, kind = request.segments
        return Pinned(replace(request, method="PUT", path=path_of([index, kind, doc_id]),
                              query=_without_op_type(request.query)), pinned=1)
    if request.method in ("POST", "PUT") and request.segments and request.segments[-1] == "_bulk":
        if not _bulk_needs_pinning(request.body):
            return Pinned(request)
        return _pin_bulk(request, source)
    return Pinned(request)


def _successful_body(source: HttpResponse | None, key: str) -> object:
    """``key`` of the source's JSON answer when it succeeded, else None."""
    if source is None or source.status >= 300:
        return None
    try:
        doc = orjson.loads(source.body)
    except orjson.JSONDecodeError:
        return None
    return doc.get(key) if isinstance(doc, dict) else None


def _response_id(source: HttpResponse | None) -> str | None:
    value = _successful_body(source, "_id")
    return value if isinstance(value, str) and value else None


def _source_items(source: HttpResponse | None) -> list[dict[str, object]] | None:
    items = _successful_body(source, "items")
    return items if isinstance(items, list) else None


def _pin_bulk(request: HttpRequest, source: HttpResponse | None) -> Pinned:
    lines = request.body.split(b"\n")
    items = _source_items(source)
    out: list[bytes] = []
    pinned = unpinned = 0
    position = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            out.append(line)
            i += 1
            continue
        action = orjson.loads(line)
        op = next(iter(action)) if isinstance(action, dict) and action else ""
        meta = action.get(op) if op else None
        has_source = op != "delete"
        if op in ("index", "create") and isinstance(meta, dict) and not meta.get("_id"):
            item = items[position] if items is not None and position < len(items) else None
            result = item.get(op) if isinstance(item, dict) else None
            doc_id = result.get("_id") if isinstance(result, dict) and int(result.get("status", 500)) < 300 else None
            if isinstance(doc_id, str) and doc_id:
                out.append(orjson.dumps({"index": {**meta, "_id": doc_id}}))
                pinned += 1
            else:
                out.append(line)
                # An item the source refused wrote nothing there: sent as is, it cannot duplicate a document.
                refused = isinstance(result, dict) and int(result.get("status", 500)) >= 300
                unpinned += 0 if refused else 1
        else:
            out.append(line)
        position += 1
        if has_source and i + 1 < len(lines):
            out.append(lines[i + 1])
            i += 2
        else:
            i += 1
    if not pinned:
        return Pinned(request, unpinned=unpinned)
    return Pinned(replace(request, body=b"\n".join(out)), pinned, unpinned)
