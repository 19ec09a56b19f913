"""Checks across planned objects: valid and unique index names, alias clashes, component templates present."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from workers.metadata.model import MetadataObject
from workers.metadata.target import TargetState

_FORBIDDEN = set('\\/*?"<>| ,#:')


def index_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid OpenSearch index name, or None."""
    if not name:
        return "the name is empty"
    if name != name.lower():
        return "index names must be lower case"
    bad = sorted({c for c in name if c in _FORBIDDEN})
    if bad:
        return f"index names must not contain {' '.join(repr(c) for c in bad)}"
    if name[0] in "_-+":
        return f"index names must not start with {name[0]!r}"
    if name in (".", ".."):
        return "index names cannot be '.' or '..'"
    if len(name.encode()) > 255:
        return "index names are at most 255 bytes"
    return None


def check_mapping_types(objects: Iterable[MetadataObject]) -> None:
    """An object still holding several mapping types cannot go to a typeless target."""
    for obj in objects:
        if len([t for t in obj.mappings if obj.mappings[t]]) > 1:
            obj.block(f"still has mapping types {', '.join(sorted(obj.mappings))}")


def check_index_names(indices: list[MetadataObject]) -> None:
    """Block invalid names and indices that end up with the same name (e.g. through rename rules)."""
    by_name: dict[str, list[MetadataObject]] = defaultdict(list)
    for obj in indices:
        problem = index_name_problem(obj.name)
        if problem:
            obj.block(f"target name {obj.name!r} is invalid: {problem}")
        by_name[obj.name].append(obj)
    for name, group in by_name.items():
        if len(group) > 1:
            sources = ", ".join(sorted(f"{o.source_name}" + (f" (type {o.source_type})" if o.source_type else "")
                                       for o in group))
            for obj in group:
                obj.block(f"name collision: {sources} would all become index {name}")


def check_aliases(indices: list[MetadataObject], target: TargetState) -> None:
    """Block an index whose name is an alias, or whose alias is an index name, here or on the target."""
    planned = {o.name for o in indices}
    for obj in indices:
        if obj.name in target.aliases and obj.name not in target.index_names:
            owners = ", ".join(target.aliases[obj.name])
            obj.block(f"the target has an alias named {obj.name} (on {owners})")
        for alias in obj.aliases:
            if alias in planned:
                obj.block(f"alias {alias} has the name of an index of the plan")
            elif alias in target.index_names:
                obj.block(f"alias {alias} has the name of an index on the target")


def check_components(templates: list[MetadataObject], components: dict[str, MetadataObject],
                     target: TargetState) -> None:
    """Block an index template whose component templates are neither migrated nor on the target."""
    for obj in templates:
        for name in obj.extra.get("composed_of", []):
            planned = components.get(name)
            if planned is not None and planned.blockers:
                obj.block(f"component template {name} is blocked")
            elif planned is None and target.existing("component_template", name) is None:
                obj.block(f"component template {name} is neither migrated (allow list) nor on the target")
