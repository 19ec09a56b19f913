"""Engine versions of the source and target: parsed from text, from REST answers or from internal version ids."""

from __future__ import annotations

import re
from dataclasses import dataclass

from workers.common.errors import ConfigurationError
from workers.common.versions import Engine, decode_version_id, parse_engine

_TEXT = re.compile(r"^\s*([A-Za-z]+)\s*[: ]\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?")


@dataclass(frozen=True, order=True)
class EngineVersion:
    """An engine and its release number (``elasticsearch 7.10.2``)."""

    engine: Engine
    major: int
    minor: int = 0
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> EngineVersion:
        """Parse ``es:7.10.2``, ``opensearch 2.19`` or ``elasticsearch:5.6``."""
        m = _TEXT.match(text)
        if not m:
            raise ConfigurationError(f"not an engine version: {text!r} (expected e.g. es:7.10.2 or os:2.19.6)")
        engine = parse_engine(m.group(1))
        return cls(engine, int(m.group(2)), int(m.group(3) or 0), int(m.group(4) or 0))

    @classmethod
    def of(cls, engine: str, number: str) -> EngineVersion:
        """From an engine name and a version number as ``GET /`` reports them (``8.19.21``, ``3.0.0-SNAPSHOT``)."""
        return cls.parse(f"{engine}:{number}")

    @classmethod
    def from_id(cls, version_id: int) -> EngineVersion:
        """Decode an internal version id (``7100299`` is Elasticsearch 7.10.2; see ``decode_version_id``)."""
        return cls(*decode_version_id(version_id))

    @property
    def is_elasticsearch(self) -> bool:
        """True for Elasticsearch."""
        return self.engine == "elasticsearch"

    @property
    def is_opensearch(self) -> bool:
        """True for OpenSearch."""
        return self.engine == "opensearch"

    def es_at_most(self, major: int, minor: int = 99) -> bool:
        """True for Elasticsearch up to ``major.minor``."""
        return self.is_elasticsearch and (self.major, self.minor) <= (major, minor)

    def es_at_least(self, major: int, minor: int = 0) -> bool:
        """True for Elasticsearch from ``major.minor`` on."""
        return self.is_elasticsearch and (self.major, self.minor) >= (major, minor)

    def os_at_least(self, major: int, minor: int = 0) -> bool:
        """True for OpenSearch from ``major.minor`` on."""
        return self.is_opensearch and (self.major, self.minor) >= (major, minor)

    def os_below(self, major: int, minor: int = 0) -> bool:
        """True for OpenSearch before ``major.minor``."""
        return self.is_opensearch and (self.major, self.minor) < (major, minor)

    def __str__(self) -> str:
        return f"{self.engine} {self.major}.{self.minor}.{self.patch}"
