"""Documents as JSON lines: ``{"_index", "_id", "_routing"?, "_type"?, "_source"}``, the source as a JSON value."""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from workers.common.errors import MigrationError
from workers.documents.reader import SnapshotDocument
from workers.snapshot import smile


class SourceFormatError(MigrationError):
    """A stored ``_source`` could not be turned into JSON; the message names the document."""


def source_value(doc: SnapshotDocument) -> Any:
    """The document's source as a JSON value, whatever XContent type the client stored it in."""
    raw = doc.source
    try:
        if smile.is_smile(raw):
            return smile.decode(raw)
        stripped = raw.lstrip()
        if stripped[:1] in (b"{", b"["):
            return orjson.loads(raw)
        if stripped.startswith(b"---") or stripped[:1].isalpha():
            return yaml.safe_load(raw)
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, smile.SmileError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SourceFormatError(f"document {doc.index}/{doc.id}: _source is not JSON, SMILE or YAML ({exc})") from None


def to_json_line(doc: SnapshotDocument) -> bytes:
    """One output line, newline-terminated."""
    out: dict[str, Any] = {"_index": doc.index, "_id": doc.id}
    if doc.routing is not None:
        out["_routing"] = doc.routing
    if doc.type is not None and doc.type != "_doc":
        out["_type"] = doc.type
    out["_source"] = source_value(doc)
    return orjson.dumps(out, default=_binary) + b"\n"


def _binary(value: object) -> object:
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
