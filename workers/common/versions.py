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
