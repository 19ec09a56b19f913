"""What the target already holds: templates of three kinds, the indices the plan names, and every alias."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

from opensearchpy import OpenSearch

from workers.metadata import objects
from workers.metadata.http import RequestRejected, request
from workers.metadata.model import Kind, MetadataObject
from workers.metadata.versions import EngineVersion

_BATCH = 50


@dataclass
class TargetState:
    """The target's objects by kind and name, its index names, and its aliases (alias → indices)."""

    version: EngineVersion
    objects: dict[tuple[Kind, str], MetadataObject] = field(default_factory=dict)
    index_names: set[str] = field(default_factory=set)
    aliases: dict[str, list[str]] = field(default_factory=dict)

    def existing(self, kind: Kind, name: str) -> MetadataObject | None:
        """The target's object of ``kind`` named ``name``, if any."""
        return self.objects.get((kind, name))


def _named(client: OpenSearch, where: str, path: str, key: str, item_key: str) -> dict[str, dict[str, object]]:
    try:
        answer = request(client, "GET", path, where=where, expected=(404,))
    except RequestRejected as exc:
        if exc.status == 404:
            return {}
        raise
    return {item["name"]: item[item_key] for item in answer.get(key, [])}


def read_target_state(client: OpenSearch, where: str, version: EngineVersion, index_names: Iterable[str]
                      ) -> TargetState:
    """Read the target's templates, the named indices (settings, mappings, aliases) and all alias names."""
    state = TargetState(version)
    for name, body in request(client, "GET", "/_template", where=where, params={"flat_settings": "true"}).items():
        state.objects[("legacy_template", name)] = objects.legacy_template(name, body)
    for name, body in _named(client, where, "/_index_template", "index_templates", "index_template").items():
        state.objects[("index_template", name)] = objects.index_template(name, body)
    for name, body in _named(client, where, "/_component_template", "component_templates",
                             "component_template").items():
        state.objects[("component_template", name)] = objects.component_template(name, body)
    rows = request(client, "GET", "/_cat/indices", where=where,
                   params={"format": "json", "h": "index", "expand_wildcards": "all"})
    state.index_names = {row["index"] for row in rows}
    for row in request(client, "GET", "/_cat/aliases", where=where, params={"format": "json", "h": "alias,index"}):
        state.aliases.setdefault(row["alias"], []).append(row["index"])
    wanted = sorted(set(index_names) & state.index_names)
    for start in range(0, len(wanted), _BATCH):
        batch = wanted[start:start + _BATCH]
        found = request(client, "GET", "/" + quote(",".join(batch), safe=","), where=where,
                        params={"flat_settings": "true", "expand_wildcards": "all", "ignore_unavailable": "true"})
        for name, body in found.items():
            state.objects[("index", name)] = objects.index(name, body.get("settings"), body.get("mappings"),
                                                           body.get("aliases"))
    return state
