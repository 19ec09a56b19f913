"""The REST requests that create each kind of object on an OpenSearch target."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from workers.metadata.mappings import single_body
from workers.metadata.model import Kind, MetadataObject

_PATHS: dict[Kind, str] = {
    "component_template": "/_component_template/{}",
    "index_template": "/_index_template/{}",
    "legacy_template": "/_template/{}",
    "index": "/{}",
}
_TEMPLATE_FIELDS: dict[Kind, tuple[str, ...]] = {
    "component_template": ("version", "_meta"),
    "index_template": ("index_patterns", "composed_of", "priority", "version", "_meta", "data_stream"),
    "legacy_template": ("index_patterns", "order", "version"),
    "index": (),
}


def inner_body(obj: MetadataObject) -> dict[str, Any]:
    """``settings``, ``mappings`` (typeless) and ``aliases``, each only when not empty."""
    out: dict[str, Any] = {}
    if obj.settings:
        out["settings"] = dict(obj.settings)
    mapping = single_body(obj.mappings)
    if mapping:
        out["mappings"] = mapping
    if obj.aliases:
        out["aliases"] = obj.aliases
    return out


def request_body(obj: MetadataObject) -> dict[str, Any]:
    """The JSON body that creates ``obj`` on the target."""
    fields = {k: obj.extra[k] for k in _TEMPLATE_FIELDS[obj.kind] if k in obj.extra}
    if obj.kind in ("component_template", "index_template"):
        return {**fields, "template": inner_body(obj)}
    return {**fields, **inner_body(obj)}


def object_path(kind: Kind, name: str) -> str:
    """The REST path of an object (name URL-encoded)."""
    return _PATHS[kind].format(quote(name, safe=""))
