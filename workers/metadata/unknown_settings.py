"""The fallback for settings no rule knows: a setting the target calls unknown, private or removed is dropped.

The rules in ``transforms/`` remove or rewrite every setting known to be refused, each with its own explanation.
This catches the rest (a plugin's setting the target lacks, a setting of a release no rule covers): evaluate drops
what the target's answer to the simulation names and simulates again; migrate does the same once if the target
still refuses a setting at creation. Settings of plugins whose absence must stay visible (k-NN) are never dropped:
the object stays blocked, naming the plugin.
"""

from __future__ import annotations

import re
from typing import Any

from workers.metadata.model import MetadataObject
from workers.metadata.settings import matches_prefix

NAME = "drop-unknown-settings"
SUMMARY = ("removes, with a warning, settings the target answers it does not know, keeps private, or removed, "
           "when no other rule handles them")
# How OpenSearch 2.x/3.x name a refused setting (the simulate and create answers, every wording seen).
_NAMED = (
    ("unknown", re.compile(r"unknown setting \[([^\]\s]+)\]")),
    ("private", re.compile(r"private index setting \[([^\]\s]+)\]")),
    ("removed", re.compile(r"Setting \[?([\w.\-]+?)\]? was removed")),
)
# Settings whose plugin the user should install rather than lose.
_KEEP = ("index.knn",)
# Rounds of drop-and-simulate: the target may name one refused setting per answer.
MAX_ROUNDS = 8


def named_settings(reason: str) -> list[tuple[str, str]]:
    """``(setting, how)`` for each setting the target's ``reason`` names as unknown, private or removed."""
    found: dict[str, str] = {}
    for how, pattern in _NAMED:
        for name in pattern.findall(reason):
            found.setdefault(name, how)
    return list(found.items())


def drop_named(settings: dict[str, Any], reason: str) -> dict[str, tuple[Any, str]]:
    """Remove from ``settings`` what ``reason`` names; returns ``{key: (value, how)}`` of what was removed."""
    dropped: dict[str, tuple[Any, str]] = {}
    for name, how in named_settings(reason):
        for key in (name, f"index.{name}"):
            if key in settings and not matches_prefix(key, _KEEP):
                dropped[key] = (settings.pop(key), how)
                break
    return dropped


def warning(key: str, value: Any, how: str) -> str:
    """What the report says about one dropped setting."""
    word = {"unknown": "does not know it", "private": "keeps it private (set by the engine itself)",
            "removed": "says it was removed"}[how]
    return (f"removed {key}={value}: the target {word}, so it has no effect there; if a plugin provides it, "
            "install the plugin on the target and set it again")


def record(obj: MetadataObject, dropped: dict[str, tuple[Any, str]]) -> None:
    """Note the fallback on ``obj`` and warn about each setting it removed."""
    obj.note(NAME)
    for key, (value, how) in dropped.items():
        obj.warn(warning(key, value, how))
