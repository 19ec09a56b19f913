"""Build model objects from the bodies engines return (snapshot metadata or REST answers alike)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workers.metadata.mappings import by_type
from workers.metadata.model import MetadataObject
from workers.metadata.settings import flatten_settings

_LEGACY_EXTRA = ("index_patterns", "template", "order", "version")
_COMPOSABLE_EXTRA = ("index_patterns", "composed_of", "priority", "version", "_meta", "data_stream",
                     "allow_auto_create", "ignore_missing_component_templates", "deprecated")
_COMPONENT_EXTRA = ("version", "_meta", "deprecated")


def _aliases(raw: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(name): dict(spec) if isinstance(spec, Mapping) else {} for name, spec in raw.items()}


def _extra(body: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: body[k] for k in keys if body.get(k) is not None}


def legacy_template(name: str, body: Mapping[str, Any]) -> MetadataObject:
    """A legacy (``_template``) template: patterns, order, settings, typed or typeless mappings, aliases."""
    return MetadataObject(
        "legacy_template", name, flatten_settings(body.get("settings")), by_type(body.get("mappings")),
        _aliases(body.get("aliases")), _extra(body, _LEGACY_EXTRA),
    )


def index_template(name: str, body: Mapping[str, Any]) -> MetadataObject:
    """A composable (``_index_template``) template."""
    inner = body.get("template") or {}
    return MetadataObject(
        "index_template", name, flatten_settings(inner.get("settings")), by_type(inner.get("mappings")),
        _aliases(inner.get("aliases")), _extra(body, _COMPOSABLE_EXTRA),
    )


def component_template(name: str, body: Mapping[str, Any]) -> MetadataObject:
    """A component (``_component_template``) template."""
    inner = body.get("template") or {}
    return MetadataObject(
        "component_template", name, flatten_settings(inner.get("settings")), by_type(inner.get("mappings")),
        _aliases(inner.get("aliases")), _extra(body, _COMPONENT_EXTRA),
    )


def index(name: str, settings: Mapping[str, Any] | None, mappings: Any, aliases: Any) -> MetadataObject:
    """An index: its settings, mappings (by type) and aliases."""
    return MetadataObject("index", name, flatten_settings(settings), by_type(mappings), _aliases(aliases))
