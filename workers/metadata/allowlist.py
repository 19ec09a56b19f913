"""Allow lists (exact names or ``regex:`` patterns matching whole names) and the default exclusions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workers.metadata.errors import AllowListError
from workers.metadata.model import Kind, MetadataObject

REGEX_PREFIX = "regex:"

# Objects an engine, X-Pack, Kibana, Beats or a security plugin creates for itself. They are excluded when an
# allow list is empty; a non-empty list replaces these rules entirely (naming one includes it).
_INTERNAL_PREFIXES: tuple[tuple[str, str], ...] = (
    (".", "system object (name starts with '.')"),
    ("ilm-history", "Elasticsearch ILM history"),
    ("slm-history", "Elasticsearch SLM history"),
    ("security-auditlog-", "security plugin audit log"),
    ("searchguard", "Search Guard internal"),
    ("sg7-", "Search Guard internal"),
    ("kibana_index_template", "Kibana internal"),
    ("watch_history", "Watcher history"),
)
_INTERNAL_NAMES: dict[str, str] = {
    "watches": "Watcher internal",
    "triggered_watches": "Watcher internal",
    "security-index-template": "X-Pack security internal",
    "security_audit_log": "X-Pack security internal",
    "logstash-index-template": "X-Pack Logstash management internal",
}
# Templates only: the data-stream and Fleet templates Elasticsearch installs (indices of these names are user data).
_TEMPLATE_NAMES = frozenset({
    "logs", "metrics", "traces", "synthetics", "profiling", "logs-mappings", "logs-settings", "metrics-mappings",
    "metrics-settings", "synthetics-mappings", "synthetics-settings", "data-streams-mappings", "ecs-tsdb",
})
_TEMPLATE_SUFFIXES = ("@mappings", "@settings", "@template", "@package", "@ilm", "@lifecycle", "@tsdb-settings",
                      "@custom")


def internal_reason(kind: Kind, name: str, extra: dict[str, Any] | None = None) -> str | None:
    """Why an object is internal and excluded by default, or None for a user object."""
    for prefix, reason in _INTERNAL_PREFIXES:
        if name.startswith(prefix):
            return reason
    if name in _INTERNAL_NAMES:
        return _INTERNAL_NAMES[name]
    if kind != "index":
        if name in _TEMPLATE_NAMES or name.endswith(_TEMPLATE_SUFFIXES):
            return "template installed by Elasticsearch (data streams, Fleet)"
        meta = (extra or {}).get("_meta")
        if isinstance(meta, dict) and meta.get("managed") is True:
            return "managed by the engine (_meta.managed)"
    return None


@dataclass(frozen=True)
class AllowList:
    """Names to include: exact literals (dots are not wildcards) or ``regex:PATTERN`` matching the whole name."""

    option: str
    entries: tuple[str, ...] = ()
    _exact: frozenset[str] = field(default=frozenset(), repr=False)
    _patterns: tuple[re.Pattern[str], ...] = field(default=(), repr=False)

    @classmethod
    def parse(cls, entries: Iterable[str], option: str) -> AllowList:
        """Parse entries of ``option``; an empty or invalid ``regex:`` pattern is an error naming both."""
        exact: set[str] = set()
        patterns: list[re.Pattern[str]] = []
        kept: list[str] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            kept.append(entry)
            if entry.startswith(REGEX_PREFIX):
                pattern = entry[len(REGEX_PREFIX):]
                if not pattern:
                    raise AllowListError(f"{option}: entry {entry!r} has an empty pattern")
                try:
                    patterns.append(re.compile(pattern))
                except re.error as exc:
                    raise AllowListError(f"{option}: entry {entry!r} is not a valid regular expression: {exc}") \
                        from None
            else:
                exact.add(entry)
        return cls(option, tuple(kept), frozenset(exact), tuple(patterns))

    @property
    def empty(self) -> bool:
        """True when no entry was given (the default exclusions apply)."""
        return not self.entries

    def matches(self, name: str) -> bool:
        """True when ``name`` is listed literally or a pattern matches all of it."""
        return name in self._exact or any(p.fullmatch(name) for p in self._patterns)

    def exclusion(self, obj: MetadataObject) -> str | None:
        """Why ``obj`` is excluded, or None when it is migrated."""
        if self.empty:
            reason = internal_reason(obj.kind, obj.source_name, obj.extra)
            return f"excluded by default: {reason}" if reason else None
        return None if self.matches(obj.source_name) else f"not in the {self.option}"


@dataclass(frozen=True)
class AllowLists:
    """The three allow lists: indices, index templates (composable and legacy), component templates."""

    indices: AllowList = field(default_factory=lambda: AllowList("index allow list"))
    index_templates: AllowList = field(default_factory=lambda: AllowList("index template allow list"))
    component_templates: AllowList = field(default_factory=lambda: AllowList("component template allow list"))

    @classmethod
    def parse(cls, indices: Iterable[str] = (), index_templates: Iterable[str] = (),
              component_templates: Iterable[str] = ()) -> AllowLists:
        """Parse the three lists (errors name the list and the entry)."""
        return cls(
            AllowList.parse(indices, "index allow list"),
            AllowList.parse(index_templates, "index template allow list"),
            AllowList.parse(component_templates, "component template allow list"),
        )

    def for_kind(self, kind: Kind) -> AllowList:
        """The list that decides objects of ``kind``."""
        if kind == "index":
            return self.indices
        return self.component_templates if kind == "component_template" else self.index_templates
