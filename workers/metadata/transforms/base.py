"""What every transformation is: a named rule, chosen by source and target versions, that rewrites one object."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from workers.metadata.capabilities import AnalysisCapabilities, KnownAnalysis, KnownSettings, SettingCapabilities
from workers.metadata.model import MetadataObject
from workers.metadata.options import MigrationOptions
from workers.metadata.versions import EngineVersion


@dataclass(frozen=True)
class Context:
    """The version pair, the user's options and what the target offers (analysis components, setting values)."""

    source: EngineVersion
    target: EngineVersion
    options: MigrationOptions = field(default_factory=MigrationOptions)
    analysis: AnalysisCapabilities = field(default_factory=KnownAnalysis)
    settings: SettingCapabilities = field(default_factory=KnownSettings)


class Transform(ABC):
    """One rule. ``applies`` picks it for a version pair; ``apply`` changes an object in place.

    ``apply`` records what it did on the object: ``obj.note(name)`` when it changed something, ``obj.warn``
    for a loss the user should know about, ``obj.block`` when the object cannot be created as it is.
    """

    name: ClassVar[str]
    summary: ClassVar[str]

    @abstractmethod
    def applies(self, ctx: Context) -> bool:
        """True when this rule is needed for ``ctx``'s source and target versions (and options)."""

    @abstractmethod
    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Rewrite ``obj`` in place."""
