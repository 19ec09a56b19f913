"""Engine names and version numbers, parsed once and compared as tuples."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from workers.common.errors import ConfigurationError

Engine = Literal["elasticsearch", "opensearch"]

ENGINE_ALIASES: dict[str, Engine] = {
    "elasticsearch": "elasticsearch",
    "es": "elasticsearch",
    "opensearch": "opensearch",
    "os": "opensearch",
}

_VERSION_RE = re.compile(r"^(\d+)\.(\d+|x)(?:\.(\d+|x))?$")


@dataclass(frozen=True, order=True)
class Version:
    """A three-part release number; ``patch`` or ``minor`` may be None for a wildcard (``2.19.x``)."""

    major: int
    minor: int | None = None
    patch: int | None = None

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``7.10.2``, ``2.19.x``, ``2.19`` or ``9.x``."""
        m = _VERSION_RE.match(text.strip())
        if not m:
            raise ConfigurationError(f"not a version number: {text!r} (expected e.g. 7.10.2 or 2.19.x)")
        major, minor, patch = m.groups()
        return cls(
            int(major),
            None if minor in (None, "x") else int(minor),
            None if patch in (None, "x") or minor == "x" else int(patch),
        )

    @property
    def is_exact(self) -> bool:
        """True when every part is given."""
        return self.minor is not None and self.patch is not None

    def matches(self, other: Version) -> bool:
        """True when ``other`` (exact) falls under this possibly-wildcard version."""
        return (
            self.major == other.major
            and (self.minor is None or self.minor == other.minor)
            and (self.patch is None or self.patch == other.patch)
        )

    def __str__(self) -> str:
        parts = [str(self.major), "x" if self.minor is None else str(self.minor)]
        if self.minor is not None:
            parts.append("x" if self.patch is None else str(self.patch))
        return ".".join(parts)


def parse_engine(name: str) -> Engine:
    """Map ``elasticsearch``/``es``/``opensearch``/``os`` to the canonical engine name."""
    try:
        return ENGINE_ALIASES[name.strip().lower()]
    except KeyError:
        raise ConfigurationError(
            f"unknown engine {name!r}: use one of elasticsearch (es) or opensearch (os)"
        ) from None


# OpenSearch sets this bit in its internal version ids so that they never equal an Elasticsearch id
# (org.opensearch.Version.MASK).
OPENSEARCH_ID_MASK = 0x08000000
# From 8.11 on, Elasticsearch records an index-format version id where it recorded its release id before (a
# snapshot's `version_id`, the repository data's `index_version`); these ids no longer encode the release.
# The first id each release wrote: Elasticsearch's own IndexVersions.csv for 8.11-8.17, later copies of that file for
# 8.18+ (8.19 and 9.2 are also checked against the real engines by the matrix tests);
# an id maps to the last release at or below it, so a newer release reads as the newest one known here.
_ES_INDEX_VERSION_RELEASES: tuple[tuple[int, int, int], ...] = (
    (8_500_000, 8, 11), (8_500_008, 8, 12), (8_503_000, 8, 13), (8_505_000, 8, 14), (8_512_000, 8, 15),
    (8_518_000, 8, 16), (8_521_000, 8, 17), (8_525_000, 8, 18), (8_536_000, 8, 19),
    (9_000_000, 9, 0), (9_033_000, 9, 1), (9_039_000, 9, 2), (9_060_000, 9, 3),
)
_FIRST_ES_INDEX_VERSION = _ES_INDEX_VERSION_RELEASES[0][0]


def decode_version_id(version_id: int) -> tuple[Engine, int, int, int]:
    """(engine, major, minor, patch) of an internal version id as snapshots record it.

    ``7100299`` is Elasticsearch 7.10.2, an id with the OpenSearch bit is OpenSearch (``136407827`` is 2.19.0),
    and an Elasticsearch 8.11+ index-format id gives its release's major and minor (patch 0).
    """
    if version_id & OPENSEARCH_ID_MASK:
        engine: Engine = "opensearch"
        version_id ^= OPENSEARCH_ID_MASK
    else:
        engine = "elasticsearch"
        if version_id >= _FIRST_ES_INDEX_VERSION:
            release = max((r for r in _ES_INDEX_VERSION_RELEASES if r[0] <= version_id), key=lambda r: r[0])
            return engine, release[1], release[2], 0
    major, rest = divmod(version_id, 1_000_000)
    return engine, major, (rest // 10_000) % 100, (rest // 100) % 100


def decode_recorded_version(value: object) -> tuple[Engine, int, int, int] | None:
    """What a repository's data records of a snapshot's writer: a release string or a version id.

    Elasticsearch writes ``version`` from 7.6 on (from 8.11 always the text ``8.11.0``, with the writer's
    index-format id beside it as ``index_version``: callers give that one first); OpenSearch writes its own release
    as text (``2.11.0``). Text with a major of 1-3 is therefore OpenSearch. None when nothing usable is recorded.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return decode_version_id(value) if value > 0 else None
    if isinstance(value, str):
        m = re.match(r"^(\d+)\.(\d+)\.(\d+)", value.strip())
        if m:
            major, minor, patch = (int(g) for g in m.groups())
            return ("opensearch" if major <= 3 else "elasticsearch"), major, minor, patch
        if value.strip().isdigit():
            return decode_recorded_version(int(value.strip()))
    return None
