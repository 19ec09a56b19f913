"""A cluster's observable state: engine, version, health and per-index document counts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as ClientConnectionError
from opensearchpy.exceptions import TransportError

from workers.common.errors import MigrationError


class ClusterUnreachableError(MigrationError):
    """The cluster did not answer, or refused the request."""


@dataclass(frozen=True)
class ClusterObservation:
    """What one look at a cluster shows."""

    engine: str
    version: str
    cluster_name: str
    health: str
    indices: dict[str, int] = field(default_factory=dict)

    @property
    def total_docs(self) -> int:
        """Documents over all listed indices."""
        return sum(self.indices.values())

    def fingerprint(self) -> str:
        """A short hash that changes when the version or any count changes."""
        raw = json.dumps([self.engine, self.version, sorted(self.indices.items())]).encode()
        return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class ServerVersion:
    """Which engine a cluster runs, and its version."""

    engine: str
    number: str

    @property
    def major(self) -> int:
        """The major version number."""
        return int(self.number.split(".")[0])


def server_version(client: OpenSearch) -> ServerVersion:
    """The engine and version, from ``GET /`` or, where that endpoint is missing, the local node's info.

    Elasticsearch 8+ serves ``GET /`` from its rest-root module, which a minimal distribution may lack.
    """
    try:
        version = client.info()["version"]
        return ServerVersion(version.get("distribution", "elasticsearch"), version["number"])
    except TransportError as exc:
        if exc.status_code not in (404, 405):
            raise
    nodes = client.transport.perform_request("GET", "/_nodes/_local", params={"filter_path": "nodes.*.version"})
    number = next(iter(nodes["nodes"].values()))["version"]
    return ServerVersion("elasticsearch", number)


def observe(client: OpenSearch, where: str, *, expand_wildcards: str = "open") -> ClusterObservation:
    """Read version, health and per-index ``docs.count`` (top-level documents) from a cluster.

    ``expand_wildcards="all"`` includes hidden (and closed, counted 0) indices.
    """
    try:
        version = server_version(client)
        health = client.cluster.health()
        rows = client.cat.indices(format="json", h="index", params={"expand_wildcards": expand_wildcards})
        counts = _top_level_counts(client, expand_wildcards) if rows else {}
    except ClientConnectionError as exc:
        raise ClusterUnreachableError(f"cannot reach {where}: {exc.info if hasattr(exc, 'info') else exc}") from None
    except TransportError as exc:
        raise ClusterUnreachableError(f"{where} answered {exc.status_code}: {exc.error}") from None
    return ClusterObservation(
        engine=version.engine,
        version=version.number,
        cluster_name=health.get("cluster_name", ""),
        health=health.get("status", "unknown"),
        indices={row["index"]: counts.get(row["index"], 0) for row in sorted(rows, key=lambda r: r["index"])},
    )


def _top_level_counts(client: OpenSearch, expand_wildcards: str) -> dict[str, int]:
    # _cat/indices counts every Lucene document, nested children included; a search counts what users see.
    resp = client.search(
        index="*",
        body={"size": 0,
              "aggs": {"per_index": {"terms": {"field": "_index", "size": 100000}}}},
        params={"expand_wildcards": expand_wildcards, "ignore_unavailable": "true"},
    )
    return {b["key"]: int(b["doc_count"]) for b in resp["aggregations"]["per_index"]["buckets"]}
