"""The tuple's columns: one Parquet row per replayed transaction, built from it and its comparison.

Requests and responses are structs (headers as a list of name/value structs, the body as bytes cut to a maximum with
its full size and a ``body_truncated`` flag); the target's exchanges are a list of structs, as a transform may fan
one request out to several. Times are nanoseconds since the epoch (int64), as recorded.

Credentials are never written: the values of :data:`REDACTED_HEADERS` are replaced.
A target request whose body equals the source request's keeps no body of its own (``body_as_source``), as the two
are the same in the common case and a bulk body is the largest part of a tuple.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from workers.replay.compare import Comparison, target_status
from workers.replay.messages import HttpRequest, HttpResponse, ReplayedTransaction
from workers.replay.tuples.patterns import path_pattern

DEFAULT_MAX_BODY_BYTES = 64 * 1024
REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie",
                              "x-amz-security-token", "x-api-key"})
REDACTED = "<redacted>"

HEADER = pa.struct([("name", pa.string()), ("value", pa.string())])
REQUEST = pa.struct([
    ("method", pa.string()), ("path", pa.string()), ("query", pa.string()), ("headers", pa.list_(HEADER)),
    ("body", pa.binary()), ("body_size", pa.int64()), ("body_truncated", pa.bool_()), ("body_as_source", pa.bool_()),
])
RESPONSE = pa.struct([
    ("status", pa.int32()), ("headers", pa.list_(HEADER)),
    ("body", pa.binary()), ("body_size", pa.int64()), ("body_truncated", pa.bool_()),
])
EXCHANGE = pa.struct([
    ("request", REQUEST), ("response", RESPONSE), ("started_ns", pa.int64()), ("finished_ns", pa.int64()),
    ("attempts", pa.int32()), ("error", pa.string()),
])
SCHEMA = pa.schema([
    ("conn", pa.string()), ("seq", pa.int64()), ("partition", pa.int32()), ("offset", pa.int64()),
    ("method", pa.string()), ("path", pa.string()), ("query", pa.string()), ("path_pattern", pa.string()),
    ("source_status", pa.int32()), ("target_status", pa.int32()),
    ("kind", pa.string()), ("detail", pa.string()), ("items_compared", pa.int32()), ("items_mismatched", pa.int32()),
    ("source_request", REQUEST), ("source_response", RESPONSE), ("target", pa.list_(EXCHANGE)),
    ("source_received_ns", pa.int64()), ("source_finished_ns", pa.int64()),
    ("target_started_ns", pa.int64()), ("target_finished_ns", pa.int64()), ("attempts", pa.int32()),
    ("error", pa.string()), ("dead_lettered", pa.bool_()),
])
# What a row costs beyond its bodies and headers, for the writer's estimate of the bytes it buffers.
_ROW_OVERHEAD = 256


def _headers(headers: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"name": k, "value": REDACTED if k.lower() in REDACTED_HEADERS else v} for k, v in headers]


def _body(body: bytes, limit: int) -> dict[str, Any]:
    return {"body": body[:limit], "body_size": len(body), "body_truncated": len(body) > limit}


def _request(r: HttpRequest, limit: int, source_body: bytes | None = None) -> dict[str, Any]:
    as_source = source_body is not None and r.body == source_body
    body = {"body": None, "body_size": len(r.body), "body_truncated": False} if as_source else _body(r.body, limit)
    return {"method": r.method, "path": r.path, "query": r.query, "headers": _headers(r.headers), **body,
            "body_as_source": as_source}


def _response(r: HttpResponse | None, limit: int) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"status": r.status, "headers": _headers(r.headers), **_body(r.body, limit)}


def tuple_row(tx: ReplayedTransaction, comparison: Comparison,
              max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> dict[str, Any]:
    """The row of one replayed transaction (a dict of :data:`SCHEMA`'s columns)."""
    request = tx.source_request or (tx.exchanges[0].request if tx.exchanges else None)
    source_body = tx.source_request.body if tx.source_request else None
    exchanges = tx.exchanges
    return {
        "conn": tx.conn, "seq": tx.seq, "partition": tx.partition, "offset": tx.offset,
        "method": request.method if request else None, "path": request.path if request else None,
        "query": request.query if request else None,
        "path_pattern": path_pattern(request.path) if request else None,
        "source_status": tx.source_response.status if tx.source_response else None,
        "target_status": target_status(tx),
        "kind": comparison.kind, "detail": comparison.detail,
        "items_compared": comparison.items_compared, "items_mismatched": comparison.items_mismatched,
        "source_request": _request(tx.source_request, max_body_bytes) if tx.source_request else None,
        "source_response": _response(tx.source_response, max_body_bytes),
        "target": [{"request": _request(ex.request, max_body_bytes, source_body),
                    "response": _response(ex.response, max_body_bytes),
                    "started_ns": ex.started_ns, "finished_ns": ex.finished_ns, "attempts": ex.attempts,
                    "error": ex.error} for ex in exchanges],
        "source_received_ns": tx.source_received_ns, "source_finished_ns": tx.source_finished_ns,
        "target_started_ns": min(ex.started_ns for ex in exchanges) if exchanges else None,
        "target_finished_ns": max(ex.finished_ns for ex in exchanges) if exchanges else None,
        "attempts": sum(ex.attempts for ex in exchanges),
        "error": tx.error, "dead_lettered": tx.dead_lettered,
    }


def row_bytes(row: dict[str, Any]) -> int:
    """About how many bytes ``row`` takes once in a record batch: its bodies and header text plus a fixed part."""
    size = _ROW_OVERHEAD + len(row["detail"] or "") + len(row["path"] or "")
    messages = [row["source_request"], row["source_response"]]
    for ex in row["target"]:
        messages += [ex["request"], ex["response"]]
    for m in messages:
        if m is not None:
            size += len(m["body"] or b"") + sum(len(h["name"]) + len(h["value"]) + 16 for h in m["headers"])
    return size
