"""Shared helpers of the metadata tests: a transformation context for a version pair, objects from bodies."""

from __future__ import annotations

import copy
from typing import Any

from workers.metadata import objects
from workers.metadata.capabilities import KnownAnalysis, KnownSettings
from workers.metadata.model import MetadataObject
from workers.metadata.options import MigrationOptions
from workers.metadata.transforms.base import Context
from workers.metadata.versions import EngineVersion


def ctx(source: str, target: str = "os:2.19.6", missing: set[tuple[str, str]] | None = None,
        refused: set[tuple[str, str]] | None = None, **options: Any) -> Context:
    """A context for ``source`` → ``target`` with the given options; ``missing`` analysis components and
    ``refused`` (setting, value) pairs of the target."""
    return Context(EngineVersion.parse(source), EngineVersion.parse(target), MigrationOptions.build(**options),
                   KnownAnalysis(missing or set()), KnownSettings(refused or set()))


def index(name: str, mappings: Any, settings: dict[str, Any] | None = None,
          aliases: dict[str, Any] | None = None) -> MetadataObject:
    """An index object as a reader would build it."""
    return objects.index(name, settings or {"index.number_of_shards": "1"}, copy.deepcopy(mappings), aliases)


def field(obj: MetadataObject, path: str) -> dict[str, Any]:
    """The field at dotted ``path`` of the object's single mapping."""
    body = next(iter(obj.mappings.values()))
    node: dict[str, Any] = body
    for part in path.split("."):
        node = node["properties"][part] if "properties" in node and part in node["properties"] else node[
            "fields"][part]
    return node
