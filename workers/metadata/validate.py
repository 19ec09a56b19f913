"""Ask the target whether it would accept an object, without creating anything (index template simulation)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from opensearchpy import OpenSearch

from workers.metadata.bodies import inner_body
from workers.metadata.http import RequestRejected, request
from workers.metadata.model import MetadataObject
from workers.metadata.settings import flatten_settings

# Target answers that mean a plugin is missing, and which one.
_PLUGIN_HINTS = (("[index.knn", "the k-NN plugin"), ("[knn_vector]", "the k-NN plugin"),
                 ("[geo_shape]", "the geo module"), ("[icu_", "the analysis-icu plugin"))
# "index_template [simulate_template_<random>] invalid, cause [Validation Failed: 1: ...;]": keep the cause.
_WRAPPED = re.compile(r"^([\w.]+): index_template \[simulate_template_[^\]]*\] invalid, cause \[(.*)\]$", re.S)
_SIMULATED = re.compile(r"simulate_template_[\w-]+|migration-assistant-validate-\w+-\*")
# A priority no real template uses, so that the simulated template never ties with one (which the target refuses).
_PRIORITY_BASE = 7_000_000_000


def _merge_mapping(into: dict[str, Any], add: Mapping[str, Any]) -> None:
    """Later mappings win per field, objects merge (how composable templates compose)."""
    for key, value in add.items():
        if key == "properties" and isinstance(value, Mapping):
            props = into.setdefault("properties", {})
            for name, field in value.items():
                mine = props.get(name)
                if isinstance(mine, dict) and isinstance(field, Mapping) and "properties" in field \
                        and "properties" in mine:
                    _merge_mapping(mine, field)
                else:
                    props[name] = field
        else:
            into[key] = value


def composed(obj: MetadataObject, components: Mapping[str, MetadataObject]) -> dict[str, Any]:
    """The template part (settings, mappings, aliases) of ``obj`` with its component templates composed in."""
    settings: dict[str, Any] = {}
    mapping: dict[str, Any] = {}
    aliases: dict[str, Any] = {}
    parts = [components[name] for name in obj.extra.get("composed_of", []) if name in components]
    for part in [*parts, obj]:
        body = inner_body(part)
        settings.update(flatten_settings(body.get("settings")))
        _merge_mapping(mapping, body.get("mappings") or {})
        aliases.update(body.get("aliases") or {})
    out: dict[str, Any] = {}
    if settings:
        out["settings"] = settings
    if mapping:
        out["mappings"] = mapping
    if aliases:
        out["aliases"] = aliases
    return out


def simulate(client: OpenSearch, where: str, obj: MetadataObject,
             components: Mapping[str, MetadataObject] | None = None) -> str | None:
    """None when the target would accept ``obj``'s settings, mappings and aliases; else the target's reason."""
    path = "/_index_template/_simulate"
    body: dict[str, Any]
    if obj.kind == "index_template":
        # Simulated under its own name, patterns and priority: a clash with another template of the target (same
        # patterns, same priority) shows now. Component templates are composed in, as they may not exist yet.
        path += "/" + quote(obj.name, safe="")
        body = {k: obj.extra[k] for k in ("index_patterns", "priority", "data_stream") if k in obj.extra}
        body["template"] = composed(obj, components or {})
    else:
        body = _throwaway(inner_body(obj))
    return _ask(client, where, path, body)


def simulate_settings(client: OpenSearch, where: str, settings: Mapping[str, Any]) -> str | None:
    """None when the target would create an index with ``settings``; else the target's reason."""
    return _ask(client, where, "/_index_template/_simulate", _throwaway({"settings": dict(settings)}))


def _throwaway(template: dict[str, Any]) -> dict[str, Any]:
    """A template body under a pattern no index matches, at a priority no real template uses."""
    return {
        "index_patterns": [f"migration-assistant-validate-{secrets.token_hex(6)}-*"],
        "priority": _PRIORITY_BASE + secrets.randbelow(1_000_000_000),
        "template": template,
    }


def _ask(client: OpenSearch, where: str, path: str, body: dict[str, Any]) -> str | None:
    try:
        request(client, "POST", path, where=where, body=body, expected=(400,))
    except RequestRejected as exc:
        reason = _stable(exc.reason)
        hint = next((plugin for marker, plugin in _PLUGIN_HINTS if marker in reason), None)
        return f"{reason} (install {hint} on the target)" if hint else reason
    return None


def _stable(reason: str) -> str:
    """The target's reason without the random name it gave the simulated template (same input, same words)."""
    m = _WRAPPED.match(reason)
    if m:
        reason = f"{m.group(1)}: {m.group(2)}"
    return _SIMULATED.sub("(simulated template)", reason)
