"""Index renames: the metadata migration's and the backfill's rules (``workers.metadata.rename``), applied to the
indices a request names, so replayed traffic reaches the indices those steps created.

Renamed: the path's index expression (its first segment, unless it starts with ``_``; each name of a comma list),
``_index`` in ``_bulk`` actions and ``_mget`` docs, ``index`` in ``_msearch`` headers. Not renamed: bodies of other
APIs (``_reindex``, ``_aliases`` ...), alias names, indices named later in the path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from workers.common.errors import ConfigurationError
from workers.metadata.rename import RenameRules, parse_rule
from workers.replay.messages import HttpRequest
from workers.replay.transforms.base import api_of, is_index, map_index_list, with_segments
from workers.replay.transforms.bodies import Edit, rewrite_body

# Distinct names remembered (traffic names few indices many times; a bound keeps date-named ones from piling up).
_CACHE_SIZE = 4096


class RenameTransform:
    """Renames indices in paths and in bulk/msearch/mget bodies by the rename rules."""

    name = "renames"

    def __init__(self, rules: RenameRules) -> None:
        self.rules = rules
        self._cache: dict[str, str] = {}

    def rename(self, index: str) -> str:
        """``index`` renamed by the first matching rule, or unchanged; ``_all`` and other ``_`` names, and indices of
        remote clusters (``cluster:index``), are never renamed (a catch-all regex rule must not touch them)."""
        if index.startswith("_") or ":" in index:
            return index
        return self.rules.apply(index)

    def rename_expression(self, expression: str) -> str:
        """An index expression (comma list, ``-`` exclusions) with each name renamed; the same object when no name
        changed (callers test with ``is``)."""
        new = self._cache.get(expression)
        if new is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            new = map_index_list(expression, self.rename)
            new = self._cache[expression] = expression if new == expression else new
        return new

    def apply(self, req: HttpRequest) -> list[HttpRequest]:
        """``req`` with its indices renamed."""
        if not self.rules:
            return [req]
        segments = req.segments
        if segments and is_index(segments[0]):
            renamed = self.rename_expression(segments[0])
            if renamed is not segments[0]:
                req = with_segments(req, [renamed, *segments[1:]])
        api = api_of(segments)
        body = rewrite_body(api, req.body, self._edit_for(api))
        if body is not req.body:
            req = replace(req, body=body)
        return [req]

    def _edit_for(self, api: str | None) -> Edit:
        key = "index" if api == "_msearch" else "_index"

        def edit(meta: dict[str, Any]) -> bool:
            value = meta.get(key)
            new: Any
            if type(value) is str:
                new = self.rename_expression(value)
                if new is value:
                    return False
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                new = [self.rename_expression(v) for v in value]
                if new == value:
                    return False
            else:
                return False
            meta[key] = new
            return True

        return edit


def inverse_renames(rules: Iterable[str]) -> list[str]:
    """The rules that undo ``rules`` (``OLD=NEW`` becomes ``NEW=OLD``), for the reverse replayer: traffic sent to the
    target after a cutover, replayed onto the source.

    Only exact rules can be inverted: a regex rule maps many names to many and its replacement is no pattern, so a
    ConfigurationError names it (list the renamed indices as exact rules instead). So does a name two rules map to
    (which source index it came from is lost); an index no rule renamed keeps its name both ways.
    """
    inverse: list[str] = []
    origins: dict[str, str] = {}
    for raw in rules:
        if not raw.strip():
            continue
        rule = parse_rule(raw)
        if rule.pattern is not None:
            raise ConfigurationError(
                f"rename rule '{rule.raw}' is a regular expression and cannot be inverted for the reverse replay: "
                f"give the renamed indices as exact OLD=NEW rules instead (one per index)")
        if rule.new in origins and origins[rule.new] != rule.old:
            raise ConfigurationError(
                f"rename rules '{origins[rule.new]}={rule.new}' and '{rule.raw}' both name {rule.new!r}: the reverse "
                f"replay cannot tell which source index a write to it belongs to")
        if rule.new not in origins:
            origins[rule.new] = rule.old
            inverse.append(f"{rule.new}={rule.old}")
    return inverse
