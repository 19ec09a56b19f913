"""Read the source's metadata from the live cluster over HTTP: templates of three kinds and open indices."""

from __future__ import annotations

from typing import Any

from opensearchpy import OpenSearch

from workers.common.cluster_info import server_version
from workers.metadata import objects
from workers.metadata.http import RequestRejected, guard, request
from workers.metadata.model import MetadataObject, SourceMetadata
from workers.metadata.versions import EngineVersion


def _composable(client: OpenSearch, where: str, path: str, key: str, item_key: str) -> dict[str, Any]:
    """Named bodies from ``GET /_index_template`` or ``/_component_template``; none before Elasticsearch 7.8."""
    try:
        answer = request(client, "GET", path, where=where, expected=(400, 404, 405))
    except RequestRejected as exc:
        if exc.status in (400, 404, 405):
            return {}
        raise
    return {item["name"]: item[item_key] for item in answer.get(key, [])}


def cluster_version(client: OpenSearch, where: str) -> EngineVersion:
    """The engine and version of the cluster at ``where``."""
    found = guard(where, "GET / (version)", lambda: server_version(client))
    return EngineVersion.of(found.engine, found.number)


def read_cluster_metadata(client: OpenSearch, where: str) -> SourceMetadata:
    """Templates and open indices of the live cluster at ``where`` as the model."""
    version = cluster_version(client, where)
    result = SourceMetadata(version, f"cluster {where}")
    legacy = request(client, "GET", "/_template", where=where, params={"flat_settings": "true"})
    items: list[MetadataObject] = [objects.legacy_template(n, b) for n, b in legacy.items()]
    for name, body in _composable(client, where, "/_index_template", "index_templates", "index_template").items():
        items.append(objects.index_template(name, body))
    for name, body in _composable(client, where, "/_component_template", "component_templates",
                                  "component_template").items():
        items.append(objects.component_template(name, body))
    # Snapshots never hold closed indices; hidden ones (Elasticsearch 7.7+, OpenSearch) are listed explicitly.
    hidden = version.is_opensearch or version.es_at_least(7, 7)
    indices = request(client, "GET", "/_all", where=where,
                      params={"flat_settings": "true", "expand_wildcards": "open,hidden" if hidden else "open"})
    for name, body in indices.items():
        items.append(objects.index(name, body.get("settings"), body.get("mappings"), body.get("aliases")))
    result.objects.extend(items)
    return result
