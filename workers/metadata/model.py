"""The source's metadata as one model, whichever way it was read: templates of three kinds and indices."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from workers.metadata.versions import EngineVersion

Kind = Literal["component_template", "index_template", "legacy_template", "index"]

# The order in which migrate creates objects: a composable template needs its component templates, an index
# should find its templates in place (OpenSearch applies matching templates when the index is created).
KIND_ORDER: tuple[Kind, ...] = ("component_template", "index_template", "legacy_template", "index")
KIND_LABELS: dict[Kind, str] = {
    "component_template": "component template",
    "index_template": "index template",
    "legacy_template": "legacy template",
    "index": "index",
}


@dataclass
class MetadataObject:
    """One template or index: flat ``index.*`` settings, mappings by type, aliases, and kind-specific fields.

    ``extra`` holds what only templates have: ``index_patterns`` (or a legacy ``template``), ``order``,
    ``priority``, ``composed_of``, ``version``, ``_meta``, ``data_stream``. ``source_name`` is the name on
    the source; ``name`` becomes the target's name once rename rules ran.
    """

    kind: Kind
    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    mappings: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    source_name: str = ""
    source_type: str | None = None
    transformations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.source_name:
            self.source_name = self.name

    @property
    def label(self) -> str:
        """``index logs-1``, ``legacy template base`` (for messages)."""
        return f"{KIND_LABELS[self.kind]} {self.name}"

    def copy(self) -> MetadataObject:
        """A deep copy that transformations may change freely."""
        return copy.deepcopy(self)

    def note(self, transformation: str) -> None:
        """Record that a transformation changed this object (once per name)."""
        if transformation not in self.transformations:
            self.transformations.append(transformation)

    def warn(self, message: str) -> None:
        """Record a warning (kept once)."""
        if message not in self.warnings:
            self.warnings.append(message)

    def block(self, message: str) -> None:
        """Record a problem that stops this object from being created (kept once)."""
        if message not in self.blockers:
            self.blockers.append(message)


@dataclass
class SourceMetadata:
    """Everything read from the source: its version, where it came from, and its objects."""

    version: EngineVersion
    origin: str
    objects: list[MetadataObject] = field(default_factory=list)

    def of_kind(self, kind: Kind) -> list[MetadataObject]:
        """The objects of one kind, by name."""
        return sorted((o for o in self.objects if o.kind == kind), key=lambda o: o.name)

    def find(self, kind: Kind, name: str) -> MetadataObject | None:
        """The object of ``kind`` called ``name`` on the source, if any."""
        return next((o for o in self.objects if o.kind == kind and o.source_name == name), None)
