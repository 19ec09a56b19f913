"""Where documents the target rejected for good are kept, with the target's reason: JSONL files, S3, or nowhere.

A shard's letters go under ``snapshot/snapshot-uuid/index/shard``: two snapshots with the same name (in two
repositories, or one taken again after a deletion) never share a location. Each record carries the snapshot's UUID
and the UUID of the target index that refused the document (as the worker last read it).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from workers.rfs.sender import Rejection


class DeadLetterStore(ABC):
    """Receives rejected documents; ``location`` says where they went."""

    location: str

    @abstractmethod
    def write(self, rejections: list[Rejection], context: dict[str, Any],
              target_uuids: Mapping[str, str | None] | None = None) -> None:
        """Keep these rejected documents (``context`` goes into every record; ``target_uuids`` gives each record's
        ``target_index_uuid``)."""

    def close(self) -> None:  # noqa: B027 - optional hook: most stores write through
        """Flush whatever is buffered."""


def _record(r: Rejection, context: dict[str, Any], target_uuids: Mapping[str, str | None] | None) -> bytes:
    return orjson.dumps({
        **context, "target_index": r.item.index, "target_index_uuid": (target_uuids or {}).get(r.item.index),
        "_id": r.item.id, "_routing": r.item.routing,
        "status": r.status, "error_type": r.error_type, "reason": r.reason,
        "_source": orjson.Fragment(r.item.source),
    }) + b"\n"


class NoDeadLetters(DeadLetterStore):
    """Rejected documents are counted but not kept (they may hold personal data)."""

    location = "off"

    def write(self, rejections: list[Rejection], context: dict[str, Any],
              target_uuids: Mapping[str, str | None] | None = None) -> None:
        return None


class JsonlDeadLetters(DeadLetterStore):
    """One JSONL file per shard under a local folder."""

    def __init__(self, folder: Path, snapshot: str, index: str, shard: int, snapshot_uuid: str = "") -> None:
        self.path = folder.joinpath(*_parts(snapshot, snapshot_uuid, index, shard)).with_suffix(".jsonl")
        self.location = str(self.path)

    def write(self, rejections: list[Rejection], context: dict[str, Any],
              target_uuids: Mapping[str, str | None] | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as out:
            for r in rejections:
                out.write(_record(r, context, target_uuids))


class S3DeadLetters(DeadLetterStore):
    """One S3 object per batch that had rejections, under ``prefix/snapshot/snapshot-uuid/index/shard/``."""

    def __init__(self, uri: str, snapshot: str, index: str, shard: int, endpoint: str | None,
                 region: str | None, snapshot_uuid: str = "") -> None:
        from workers.snapshot.blobstore import s3_client

        bucket, _, prefix = uri[len("s3://"):].partition("/")
        self.bucket = bucket
        self.prefix = "/".join(p for p in (prefix.strip("/"), *_parts(snapshot, snapshot_uuid, index, shard)) if p)
        self.client = s3_client(endpoint=endpoint, region=region)
        self.location = f"s3://{bucket}/{self.prefix}/"
        self.count = 0

    def write(self, rejections: list[Rejection], context: dict[str, Any],
              target_uuids: Mapping[str, str | None] | None = None) -> None:
        body = b"".join(_record(r, context, target_uuids) for r in rejections)
        self.count += 1
        key = f"{self.prefix}/{int(time.time() * 1000)}-{self.count:06d}.jsonl"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)


def _parts(snapshot: str, snapshot_uuid: str, index: str, shard: int) -> list[str]:
    """The path of a shard's letters below the store's root (the UUID left out when not known)."""
    return [p for p in (snapshot, snapshot_uuid, index, str(shard)) if p]


def open_dead_letters(spec: str | None, snapshot: str, index: str, shard: int, *, snapshot_uuid: str = "",
                      s3_endpoint: str | None = None, s3_region: str | None = None) -> DeadLetterStore:
    """``off``/``none``/empty: disabled; ``s3://bucket/prefix``: S3; anything else: a local folder."""
    if not spec or spec.lower() in ("off", "none", "false"):
        return NoDeadLetters()
    if spec.startswith("s3://"):
        return S3DeadLetters(spec, snapshot, index, shard, s3_endpoint, s3_region, snapshot_uuid)
    return JsonlDeadLetters(Path(spec.removeprefix("file://")), snapshot, index, shard, snapshot_uuid)
