"""Typed and multi-type mappings (Elasticsearch 6 and older) become one typeless mapping, or one index per type."""

from __future__ import annotations

import json
from typing import Any

from workers.common.index_names import DEFAULT_TYPE, split_index_name, split_types
from workers.metadata.mappings import TYPELESS
from workers.metadata.model import MetadataObject
from workers.metadata.transforms.base import Context, Transform


def _is_object(field: dict[str, Any]) -> bool:
    return field.get("type", "object") in ("object", "nested") and "fields" not in field


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _describe(a: dict[str, Any], b: dict[str, Any]) -> str:
    ta, tb = a.get("type", "object"), b.get("type", "object")
    if ta != tb:
        return f"{ta} vs {tb}"
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return f"{ta}, differing in " + ", ".join(f"{k} ({_show(a.get(k))} vs {_show(b.get(k))})" for k in keys)


class _Union:
    """Accumulates the union of several types' mappings, remembering which type defined each field."""

    def __init__(self) -> None:
        self.body: dict[str, Any] = {}
        self.owner: dict[str, str] = {}
        self.conflicts: list[str] = []

    def add(self, type_name: str, body: dict[str, Any]) -> None:
        for key, value in body.items():
            if key == "properties":
                self._properties(self.body.setdefault("properties", {}), value or {}, "", type_name)
            elif key == "dynamic_templates":
                self._dynamic_templates(value or [], type_name)
            elif key == "_meta" and isinstance(value, dict):
                self.body.setdefault("_meta", {}).update(value)
            elif key not in self.body:
                self.body[key] = value
                self.owner[f"<root>.{key}"] = type_name
            elif self.body[key] != value:
                self.conflicts.append(f"mapping parameter {key} is {_show(self.body[key])} in type "
                                      f"{self.owner[f'<root>.{key}']} and {_show(value)} in type {type_name}")

    def _dynamic_templates(self, entries: list[Any], type_name: str) -> None:
        existing = self.body.setdefault("dynamic_templates", [])
        by_name = {next(iter(e)): e for e in existing if isinstance(e, dict) and e}
        for entry in entries:
            name = next(iter(entry)) if isinstance(entry, dict) and entry else None
            if name is None or name not in by_name:
                existing.append(entry)
                if name is not None:
                    by_name[name] = entry
                    self.owner[f"<dynamic>.{name}"] = type_name
            elif by_name[name] != entry:
                self.conflicts.append(f"dynamic template {name} differs between types "
                                      f"{self.owner[f'<dynamic>.{name}']} and {type_name}")

    def _properties(self, into: dict[str, Any], props: dict[str, Any], prefix: str, type_name: str) -> None:
        for name, field in props.items():
            path = f"{prefix}{name}"
            if name not in into:
                into[name] = field
                self._own(path, field, type_name)
                continue
            mine = into[name]
            if isinstance(mine, dict) and isinstance(field, dict) and _is_object(mine) and _is_object(field):
                rest_a = {k: v for k, v in mine.items() if k != "properties"}
                rest_b = {k: v for k, v in field.items() if k != "properties"}
                if rest_a != rest_b:
                    self.conflicts.append(f"field {path} is {_describe(mine, field)} (types "
                                          f"{self.owner[path]} and {type_name})")
                    continue
                self._properties(mine.setdefault("properties", {}), field.get("properties") or {}, f"{path}.",
                                 type_name)
            elif mine != field:
                self.conflicts.append(f"field {path} is {_describe(mine, field)} (type {self.owner[path]}: "
                                      f"{mine.get('type', 'object')}, type {type_name}: "
                                      f"{field.get('type', 'object')})")

    def _own(self, path: str, field: Any, type_name: str) -> None:
        self.owner[path] = type_name
        if isinstance(field, dict):
            for sub, sub_field in (field.get("properties") or {}).items():
                self._own(f"{path}.{sub}", sub_field, type_name)


def merge_types(types: dict[str, dict[str, Any]], base: dict[str, Any] | None = None
                ) -> tuple[dict[str, Any], list[str]]:
    """The union of several types' mappings (``base`` first) and the conflicts that prevent it."""
    union = _Union()
    if base:
        union.add(DEFAULT_TYPE, base)
    for type_name in sorted(types):
        union.add(type_name, types[type_name])
    return union.body, union.conflicts


def split_by_type(obj: MetadataObject) -> list[MetadataObject]:
    """One index per mapping type, named ``INDEX_TYPE`` (lower case); other objects are returned as they are."""
    types = split_types(obj.mappings)
    if obj.kind != "index" or not types:
        return [obj]
    out = []
    for type_name in sorted(types):
        body = obj.mappings[type_name]
        part = obj.copy()
        part.name = split_index_name(obj.name, type_name)
        part.source_type = type_name
        part.mappings = {TYPELESS: body}
        part.note("split-by-type")
        part.warn(f"type {type_name} of {obj.source_name} becomes its own index; aliases are copied to every part")
        out.append(part)
    return out


class MergeMappingTypes(Transform):
    """Unwrap a single type; merge several into their union; a conflicting field blocks, naming field and types."""

    name = "merge-mapping-types"
    summary = ("turns typed mappings into one typeless mapping: a single type is unwrapped, several are merged "
               "when compatible; a field defined differently in two types is a blocking issue")

    def applies(self, ctx: Context) -> bool:
        """Elasticsearch 7 and older (7 keeps the type name of indices created in 6)."""
        return ctx.source.es_at_most(7)

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Reduce ``obj.mappings`` to ``{"_doc": body}``."""
        types = dict(obj.mappings)
        default = types.pop(DEFAULT_TYPE, None)
        if default is not None:
            obj.note(self.name)
            if obj.kind == "index":
                # An index's types already hold what _default_ gave them when they were created.
                default = None
            else:
                obj.warn("the _default_ mapping is merged into the template's mapping")
        if set(types) == {TYPELESS} and default is None:
            return
        for type_name, body in types.items():
            if "_parent" in body:
                obj.block(f"mapping type {type_name} has a _parent ({body['_parent'].get('type')}): parent/child "
                          "between types must be rewritten as a join field")
        if len(types) <= 1 and default is None:
            if types:
                name, body = next(iter(types.items()))
                obj.mappings = {TYPELESS: body}
                obj.note(self.name)
                if obj.kind == "index":
                    obj.warn(f"mapping type {name} removed: documents lose their _type")
            return
        merged, conflicts = merge_types(types, default)
        obj.mappings = {TYPELESS: merged}
        obj.note(self.name)
        if len(types) > 1:
            obj.warn(f"mapping types {', '.join(sorted(types))} merged into one mapping")
        for conflict in conflicts:
            obj.block(f"cannot merge mapping types: {conflict}; use multi-type split, or exclude the object")
