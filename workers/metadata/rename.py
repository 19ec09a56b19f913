"""Rename rules: ``OLD=NEW`` (exact) or ``regex:PATTERN=REPLACEMENT`` (the pattern must match the whole name)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from workers.metadata.errors import RenameRuleError

REGEX_PREFIX = "regex:"
# "$1" and "${name}" (as in Java and most tools) become Python's "\g<1>" and "\g<name>".
_DOLLAR_GROUP = re.compile(r"\$(\d+|\{(\w+)\})")


@dataclass(frozen=True)
class RenameRule:
    """One rule; ``pattern`` is None for an exact rule."""

    raw: str
    old: str
    new: str
    pattern: re.Pattern[str] | None = None

    def apply(self, name: str) -> str | None:
        """The new name when this rule matches ``name``, else None."""
        if self.pattern is None:
            return self.new if name == self.old else None
        m = self.pattern.fullmatch(name)
        return m.expand(self.new) if m else None


def _python_replacement(text: str) -> str:
    return _DOLLAR_GROUP.sub(lambda m: f"\\g<{m.group(2) or m.group(1)}>", text)


def parse_rule(raw: str) -> RenameRule:
    """Parse one rule; the last ``=`` separates old from new (regex patterns may contain ``=``)."""
    text = raw.strip()
    old, sep, new = text.rpartition("=")
    if not sep or not old or not new:
        raise RenameRuleError(f"rename rule {raw!r} must be OLD=NEW or regex:PATTERN=REPLACEMENT")
    if not old.startswith(REGEX_PREFIX):
        return RenameRule(text, old, new)
    source = old[len(REGEX_PREFIX):]
    if not source:
        raise RenameRuleError(f"rename rule {raw!r} has an empty pattern")
    try:
        pattern = re.compile(source)
    except re.error as exc:
        raise RenameRuleError(f"rename rule {raw!r}: not a valid regular expression: {exc}") from None
    replacement = _python_replacement(new)
    # A replacement naming a group the pattern lacks would fail only when used: check it now.
    _check_groups(pattern, replacement, raw)
    return RenameRule(text, old, replacement, pattern)


def _check_groups(pattern: re.Pattern[str], replacement: str, raw: str) -> None:
    for m in re.finditer(r"\\g<(\w+)>|\\(\d+)", replacement):
        group = m.group(1) or m.group(2)
        known = group in pattern.groupindex or (group.isdigit() and int(group) <= pattern.groups)
        if not known:
            raise RenameRuleError(f"rename rule {raw!r}: the replacement uses group {group}, which the pattern "
                                  f"does not have")


@dataclass(frozen=True)
class RenameRules:
    """Rules applied in order; the first that matches renames."""

    rules: tuple[RenameRule, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> RenameRules:
        """Parse ``--rename`` entries (errors quote the rule)."""
        return cls(tuple(parse_rule(e) for e in entries if e.strip()))

    def __bool__(self) -> bool:
        return bool(self.rules)

    def specs(self) -> list[str]:
        """The rules as written (what :meth:`parse` reads back)."""
        return [rule.raw for rule in self.rules]

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        # In options models the rules travel as the list of rules as written, and are parsed (and checked) on read.
        from pydantic_core import core_schema

        def coerce(value: Any) -> RenameRules:
            if isinstance(value, RenameRules):
                return value
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ValueError("rename rules must be a list of OLD=NEW or regex:PATTERN=REPLACEMENT strings")
            try:
                return cls.parse(value)
            except RenameRuleError as exc:
                raise ValueError(str(exc)) from None

        return core_schema.no_info_plain_validator_function(
            coerce, serialization=core_schema.plain_serializer_function_ser_schema(lambda rules: rules.specs()))

    def apply(self, name: str) -> str:
        """``name`` renamed by the first matching rule, or unchanged."""
        for rule in self.rules:
            new = rule.apply(name)
            if new is not None:
                return new
        return name
