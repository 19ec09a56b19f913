"""What the reverse direction needs to know about the source before a cutover: each index's mapping type (an
Elasticsearch 5/6 source takes typed requests only) and a reverse topic to capture into, shaped like the forward one."""

from __future__ import annotations

from typing import Any

from confluent_kafka.admin import NewTopic
from opensearchpy import OpenSearch

from workers.capture import topic_admin
from workers.common.errors import MigrationError
from workers.common.versions import Version


def restore_types(client: OpenSearch) -> dict[str, str]:
    """Source index -> its one mapping type, for an Elasticsearch 5/6 source (empty otherwise: 7+ are typeless).
    An index with several types (ES 5) cannot take the typeless writes of the target back: an error names it."""
    version = client.info()["version"]
    if version.get("distribution") == "opensearch" or Version.parse(str(version["number"]).split("-")[0]).major >= 7:
        return {}
    found: dict[str, Any] = client.indices.get_mapping()
    types: dict[str, str] = {}
    several = []
    for index, body in sorted(found.items()):
        if index.startswith("."):
            continue
        names = [name for name in (body.get("mappings") or {}) if name != "_default_"]
        if len(names) > 1:
            several.append(f"{index} ({', '.join(sorted(names))})")
        elif names:
            types[index] = names[0]
    if several:
        raise MigrationError("these source indices have several mapping types, so writes made on the target cannot "
                             f"be replayed back onto them (a back-out would lose them): {'; '.join(several)}")
    return types


def ensure_reverse_topic(brokers: str, kafka_config: dict[str, Any] | None, forward: str, reverse: str,
                         timeout_s: float = 15.0) -> bool:
    """Create ``reverse`` with ``forward``'s partitions and replication unless it exists; True when created. The
    reverse replayers subscribe to it before any proxy writes there."""
    admin = topic_admin.admin_client(brokers, kafka_config)
    try:
        topic_admin.partitions(admin, brokers, reverse, timeout_s)
        return False
    except topic_admin.TopicNotFoundError:
        pass
    shape = topic_admin.partitions(admin, brokers, forward, timeout_s)
    replication = max(1, min(len(p.replicas) for p in shape)) if shape else 1
    futures = admin.create_topics([NewTopic(reverse, num_partitions=max(1, len(shape)),
                                            replication_factor=replication)])
    try:
        futures[reverse].result(timeout_s)
    except Exception as exc:  # a race with another creator is fine; anything else is worth its message
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise MigrationError(f"cannot create the reverse topic {reverse!r} on {brokers}: {exc}") from None
        return False
    return True
