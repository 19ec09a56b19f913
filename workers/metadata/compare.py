"""Compare a planned object with what the target already has: identical, or the list of differences."""

from __future__ import annotations

import json
from typing import Any

from workers.metadata.mappings import single_body
from workers.metadata.model import MetadataObject

_MAX_DIFFERENCES = 8


def _canon(value: Any) -> Any:
    # Engines echo settings and some mapping parameters as strings: compare every scalar as text.
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canon(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _diff(path: str, want: Any, have: Any, out: list[str], exact_keys: bool = False) -> None:
    """Differences where ``want`` is not contained in ``have`` (``properties`` must have the same fields)."""
    if isinstance(want, dict) and isinstance(have, dict):
        for key, value in want.items():
            sub = f"{path}.{key}" if path else key
            if key not in have:
                out.append(f"{sub}: missing on the target (plan {_short(value)})")
            else:
                _diff(sub, value, have[key], out, exact_keys=key == "properties")
        if exact_keys:
            for key in have.keys() - want.keys():
                out.append(f"{path}.{key}: on the target only")
    elif want != have:
        out.append(f"{path}: plan {_short(want)}, target {_short(have)}")


def differences(planned: MetadataObject, existing: MetadataObject) -> list[str]:
    """What the target's object lacks or has otherwise than the plan (empty when it holds the plan)."""
    out: list[str] = []
    _diff("settings", _canon(planned.settings), _canon(existing.settings), out)
    want_mapping = _canon(single_body(planned.mappings) or {})
    have_mapping = _canon(single_body(existing.mappings) or {})
    _diff("mappings", want_mapping, have_mapping, out)
    _diff("aliases", _canon(planned.aliases), _canon(existing.aliases), out)
    if set(existing.aliases) - set(planned.aliases):
        out.append(f"aliases on the target only: {', '.join(sorted(set(existing.aliases) - set(planned.aliases)))}")
    for key, value in planned.extra.items():
        _diff(key, _canon(value), _canon(existing.extra.get(key)), out)
    deduped = list(dict.fromkeys(out))
    if len(deduped) > _MAX_DIFFERENCES:
        return [*deduped[:_MAX_DIFFERENCES], f"... and {len(deduped) - _MAX_DIFFERENCES} more"]
    return deduped
