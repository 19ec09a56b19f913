"""Mappings in one shape (type name to mapping, ``_doc`` when typeless) and a walk over their fields."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

TYPELESS = "_doc"

# Keys that only appear at the root of a mapping: a dict holding one of them is a typeless mapping, not a
# {type: mapping} wrapper. Type names cannot start with "_" except "_doc" and "_default_".
ROOT_KEYS = frozenset({
    "properties", "dynamic", "dynamic_templates", "date_detection", "numeric_detection", "dynamic_date_formats",
    "enabled", "runtime", "subobjects", "include_in_all",
})
FieldVisitor = Callable[[str, dict[str, Any]], None]


def is_typeless(mapping: Mapping[str, Any]) -> bool:
    """True when ``mapping`` is a mapping body rather than ``{type_name: body}``."""
    return any(k in ROOT_KEYS or (k.startswith("_") and k not in (TYPELESS, "_default_")) for k in mapping)


def by_type(raw: Any) -> dict[str, dict[str, Any]]:
    """A mapping as ``{type: body}``; a typeless body goes under ``_doc``; a list of one-key objects is merged."""
    if raw is None:
        return {}
    if isinstance(raw, list):
        merged: dict[str, Any] = {}
        for item in raw:
            merged.update(by_type(item))
        return merged
    if not isinstance(raw, Mapping) or not raw:
        return {}
    if is_typeless(raw):
        return {TYPELESS: dict(raw)}
    return {str(k): dict(v) if isinstance(v, Mapping) else {} for k, v in raw.items()}


def single_body(types: Mapping[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The one mapping body to send to a typeless target, or None when there is none."""
    bodies = [v for v in types.values() if v]
    return bodies[0] if bodies else None


def visit_fields(body: dict[str, Any], visit: FieldVisitor, prefix: str = "") -> None:
    """Call ``visit(path, field)`` for every field: properties, multi-fields and dynamic-template mappings.

    ``visit`` may change ``field`` in place; sub-fields are visited after their parent was changed.
    """
    for name, field in list((body.get("properties") or {}).items()):
        if isinstance(field, dict):
            _visit_one(f"{prefix}{name}", field, visit)
    if not prefix:
        for entry in body.get("dynamic_templates") or []:
            for name, spec in (entry.items() if isinstance(entry, dict) else []):
                mapping = spec.get("mapping") if isinstance(spec, dict) else None
                if isinstance(mapping, dict):
                    _visit_one(f"dynamic_templates.{name}", mapping, visit)


def _visit_one(path: str, field: dict[str, Any], visit: FieldVisitor) -> None:
    visit(path, field)
    for sub, sub_field in list((field.get("fields") or {}).items()):
        if isinstance(sub_field, dict):
            visit(f"{path}.{sub}", sub_field)
    if "properties" in field:
        visit_fields(field, visit, prefix=f"{path}.")


def iter_fields(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (path, field) of a mapping body, as :func:`visit_fields` walks them."""
    found: list[tuple[str, dict[str, Any]]] = []
    visit_fields(body, lambda path, field: found.append((path, field)))
    return iter(found)
