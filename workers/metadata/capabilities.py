"""What the target has: analysis components and setting values, asked of the live target, or given as plain sets
(offline, tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from opensearchpy import OpenSearch

from workers.metadata.http import RequestRejected, request
from workers.metadata.validate import simulate_settings

AnalysisKind = Literal["analyzer", "tokenizer", "filter", "char_filter"]
KIND_WORDS: dict[AnalysisKind, str] = {
    "analyzer": "analyzer", "tokenizer": "tokenizer", "filter": "token filter", "char_filter": "character filter",
}
# Answers of _analyze that mean "no such component" (anything else, e.g. a missing parameter, means it exists).
_UNKNOWN_MARKERS = ("failed to find global", "failed to find analyzer", "has been removed")


class AnalysisCapabilities(Protocol):
    """Tells whether the target lacks a built-in analysis component (by name or by ``type``)."""

    def lacks(self, kind: AnalysisKind, name: str) -> bool:
        """True when the target has no ``kind`` called ``name``."""
        ...


@dataclass
class KnownAnalysis:
    """A fixed answer: the components listed in ``missing`` are absent, everything else is present."""

    missing: set[tuple[str, str]] = field(default_factory=set)

    def lacks(self, kind: AnalysisKind, name: str) -> bool:
        """True when ``(kind, name)`` was listed as missing."""
        return (kind, name) in self.missing


@dataclass
class LiveAnalysis:
    """Asks the target with ``POST /_analyze`` (read-only), once per component."""

    client: OpenSearch
    where: str
    _cache: dict[tuple[str, str], bool] = field(default_factory=dict)

    def lacks(self, kind: AnalysisKind, name: str) -> bool:
        """True when the target answers that it has no such component."""
        key = (kind, name)
        if key not in self._cache:
            self._cache[key] = self._probe(kind, name)
        return self._cache[key]

    def _probe(self, kind: AnalysisKind, name: str) -> bool:
        body: dict[str, object] = {"text": "probe"}
        if kind == "analyzer":
            body["analyzer"] = name
        elif kind == "tokenizer":
            body["tokenizer"] = {"type": name}
        else:
            body.update({"tokenizer": "keyword", kind: [{"type": name}]})
        try:
            request(self.client, "POST", "/_analyze", where=self.where, body=body, expected=(400,))
        except RequestRejected as exc:
            return exc.status == 400 and any(m in exc.reason.lower() for m in _UNKNOWN_MARKERS)
        return False


class SettingCapabilities(Protocol):
    """Tells whether the target refuses an index setting's value (one a plugin or an engine version may lack)."""

    def refuses(self, key: str, value: str) -> bool:
        """True when the target would not create an index with ``key`` set to ``value``."""
        ...


@dataclass
class KnownSettings:
    """A fixed answer: the ``(key, value)`` pairs listed in ``refused`` are refused, everything else accepted."""

    refused: set[tuple[str, str]] = field(default_factory=set)

    def refuses(self, key: str, value: str) -> bool:
        """True when ``(key, value)`` was listed as refused."""
        return (key, value) in self.refused


@dataclass
class LiveSettings:
    """Asks the target by simulating a template that holds only that setting (nothing is created), once per pair."""

    client: OpenSearch
    where: str
    _cache: dict[tuple[str, str], bool] = field(default_factory=dict)

    def refuses(self, key: str, value: str) -> bool:
        """True when the target rejects the setting."""
        pair = (key, value)
        if pair not in self._cache:
            self._cache[pair] = simulate_settings(self.client, self.where, {key: value}) is not None
        return self._cache[pair]
