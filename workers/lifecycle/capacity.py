"""How much the target can still take: free disk over its data nodes, above the high disk watermark."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch

# The engines' default when the cluster does not set cluster.routing.allocation.disk.watermark.high.
DEFAULT_HIGH_WATERMARK = "90%"


@dataclass(frozen=True)
class TargetCapacity:
    """Disk of the target's data nodes and what may still be written before shards stop being allocated."""

    nodes: int
    total_bytes: int
    free_bytes: int
    high_watermark: str
    room_bytes: int  # free bytes above the high watermark

    def to_dict(self) -> dict[str, Any]:
        """Plain values."""
        return {"nodes": self.nodes, "total_bytes": self.total_bytes, "free_bytes": self.free_bytes,
                "high_watermark": self.high_watermark, "room_bytes": self.room_bytes}


def _bytes(text: str) -> int | None:
    """``500gb``, ``10mb``, ``1024b`` (an absolute watermark is the free space to keep) as bytes."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kmgtp]?b)\s*", text.lower())
    if not match:
        return None
    scale = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40, "pb": 1 << 50}[match.group(2)]
    return int(float(match.group(1)) * scale)


def room_above(watermark: str, total: int, free: int) -> int:
    """Bytes that can be written before ``free`` drops to what ``watermark`` keeps (a used-% or ratio, or an
    absolute free size)."""
    text = watermark.strip()
    absolute = _bytes(text)
    if absolute is not None:
        keep = absolute
    else:
        value = float(text.rstrip("%"))
        used = value / 100 if text.endswith("%") or value > 1 else value
        keep = total - round(total * used)
    return max(0, free - keep)


def _watermark(client: OpenSearch) -> str:
    settings = client.cluster.get_settings(include_defaults=True, flat_settings=True)
    key = "cluster.routing.allocation.disk.watermark.high"
    for scope in ("transient", "persistent", "defaults"):
        value = (settings.get(scope) or {}).get(key)
        if value:
            return str(value)
    return DEFAULT_HIGH_WATERMARK


def target_capacity(client: OpenSearch) -> TargetCapacity:
    """The target's data nodes' disk, summed, and the room left above the high watermark (per node, summed)."""
    stats = client.nodes.stats(metric="fs")
    watermark = _watermark(client)
    nodes = total = free = room = 0
    for node in (stats.get("nodes") or {}).values():
        roles = node.get("roles")
        if roles is not None and not any(r == "data" or r.startswith("data_") for r in roles):
            continue
        fs = (node.get("fs") or {}).get("total") or {}
        node_total, node_free = int(fs.get("total_in_bytes") or 0), int(fs.get("available_in_bytes") or 0)
        nodes += 1
        total += node_total
        free += node_free
        room += room_above(watermark, node_total, node_free)
    return TargetCapacity(nodes, total, free, watermark, room)
