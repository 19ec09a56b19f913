"""Index settings in one shape: flat dotted keys under ``index.``, values as strings or lists of strings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_DIGITS = re.compile(r"^\d+$")


def _scalar(value: Any) -> str:
    # Engines store every setting as a string; JSON bodies may carry booleans and numbers.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _value(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_scalar(v) for v in value]
    return _scalar(value)


def _walk(prefix: str, node: Any, out: dict[str, Any]) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            _walk(f"{prefix}.{key}" if prefix else str(key), value, out)
    elif node is not None:
        out[prefix] = _value(node)


def _lists_from_numbered_keys(flat: dict[str, Any]) -> dict[str, Any]:
    """Older engines store arrays as ``key.0``, ``key.1``: turn those back into lists."""
    parents: dict[str, list[tuple[int, str]]] = {}
    for key in flat:
        parent, _, last = key.rpartition(".")
        if parent and _DIGITS.match(last):
            parents.setdefault(parent, []).append((int(last), key))
    out = dict(flat)
    for parent, items in parents.items():
        siblings = [k for k in flat if k.startswith(parent + ".")]
        indexes = sorted(i for i, _ in items)
        if parent in flat or len(siblings) != len(items) or indexes != list(range(len(items))):
            continue
        for _, key in items:
            del out[key]
        out[parent] = [flat[key] for _, key in sorted(items)]
    return out


def flatten_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Nested or flat settings as flat ``index.*`` keys, sorted, with string (or list-of-string) values."""
    flat: dict[str, Any] = {}
    _walk("", settings or {}, flat)
    flat = _lists_from_numbered_keys(flat)
    # Engines put every index setting under "index."; templates may be written without it.
    normalized = {k if k.startswith("index.") else f"index.{k}": v for k, v in flat.items()}
    return dict(sorted(normalized.items()))


def matches_prefix(key: str, prefixes: tuple[str, ...]) -> bool:
    """True when ``key`` is one of ``prefixes`` or below one (``index.blocks`` covers ``index.blocks.write``)."""
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def analysis_settings(flat: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """``index.analysis.<kind>.<name>.<param>`` as ``{kind: {name: {param: value}}}``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key, value in flat.items():
        parts = key.split(".", 4)
        if len(parts) == 5 and parts[:2] == ["index", "analysis"]:
            out.setdefault(parts[2], {}).setdefault(parts[3], {})[parts[4]] = value
    return out
