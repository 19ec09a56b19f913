"""A snapshot repository: its snapshots, their indices, metadata and per-shard file lists.

Layouts: Elasticsearch's BlobStoreRepository and RepositoryData (repository data, index metadata ids, shard
paths), and BlobStoreIndexShardSnapshot(s) for the per-shard file lists.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from workers.common.errors import MigrationError
from workers.common.versions import Engine, decode_recorded_version
from workers.snapshot.blobformat import read_metadata_blob
from workers.snapshot.blobstore import BlobStore

_INDEX_N = re.compile(r"^index-(\d+)$")
SNAPSHOT_STATES = {0: "IN_PROGRESS", 1: "SUCCESS", 2: "FAILED", 3: "PARTIAL", 4: "INCOMPATIBLE"}


class SnapshotNotFoundError(MigrationError):
    """A snapshot, index or shard is not in the repository; the message lists what is."""


@dataclass(frozen=True)
class SnapshotRef:
    """A snapshot as the repository data lists it."""

    name: str
    uuid: str
    state: str
    # The writer as the repository data records it (Elasticsearch 7.6+, OpenSearch): engine and (major, minor,
    # patch); None when not recorded (older writers: the snapshot's own version_id tells then).
    engine: Engine | None = None
    release: tuple[int, int, int] | None = None

    @property
    def version(self) -> str | None:
        """The writer's release as text (``8.19.0``; Elasticsearch 8.11+ records no patch level: it reads 0)."""
        return ".".join(map(str, self.release)) if self.release else None


@dataclass(frozen=True)
class IndexRef:
    """An index of a snapshot: its name and repository id."""

    name: str
    id: str


@dataclass(frozen=True)
class IndexMetadata:
    """An index's settings (flat dotted keys), mappings (type name to mapping), aliases and shard count."""

    name: str
    settings: dict[str, Any]
    mappings: dict[str, Any]
    aliases: dict[str, Any]
    number_of_shards: int
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def type_name(self) -> str | None:
        """The single mapping type of a typed index (ES <= 6), or None for ``_doc``/typeless/multi-type."""
        names = [n for n in self.mappings if n != "_default_"]
        return names[0] if len(names) == 1 and names[0] != "_doc" else None


@dataclass(frozen=True)
class ShardFile:
    """One Lucene file of a shard snapshot."""

    blob: str
    physical_name: str
    length: int
    checksum: str
    part_size: int
    meta_hash: bytes | None

    @property
    def is_virtual(self) -> bool:
        """``v__`` files have no blob: their content is ``meta_hash`` (ES 7+ segments_N and .si)."""
        return self.blob.startswith("v__")

    @property
    def part_names(self) -> list[str]:
        """The blob names holding the file: ``name`` or ``name.part0``, ``name.part1``, ..."""
        parts = max(1, math.ceil(self.length / self.part_size)) if self.part_size > 0 else 1
        return [self.blob] if parts == 1 else [f"{self.blob}.part{i}" for i in range(parts)]


@dataclass(frozen=True)
class ShardSnapshot:
    """The files of one shard in one snapshot, and where their blobs are."""

    snapshot: str
    index: str
    shard: int
    path: str
    files: tuple[ShardFile, ...]

    @property
    def segments_file(self) -> ShardFile:
        """The commit (``segments_N``) this snapshot captured."""
        commits = [f for f in self.files if f.physical_name.startswith("segments_")]
        if len(commits) != 1:
            raise MigrationError(f"snapshot {self.snapshot} index {self.index} shard {self.shard}: expected one "
                                 "segments_N, found "
                                 f"{[f.physical_name for f in commits]}")
        return commits[0]


class SnapshotRepository:
    """Reads a repository's metadata through a blob store."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.generation, self.data = self._repository_data()

    def _repository_data(self) -> tuple[int, dict[str, Any]]:
        generations = [int(m.group(1)) for k in self.store.list("index-") if (m := _INDEX_N.match(k))]
        if not generations:
            raise SnapshotNotFoundError(f"no repository data (index-N) in {self.store.uri}: not a snapshot repository")
        gen = max(generations)
        return gen, json.loads(self.store.read(f"index-{gen}"))

    def snapshots(self) -> list[SnapshotRef]:
        """Every snapshot the repository data lists."""
        out = []
        for s in self.data.get("snapshots", []):
            state = s.get("state")
            # Elasticsearch 8.11+ writes "version": "8.11.0" for every release and the real writer as index_version.
            writer = decode_recorded_version(s.get("index_version") or s.get("version"))
            out.append(SnapshotRef(s["name"], s["uuid"], SNAPSHOT_STATES.get(state, str(state)) if state is not None
                                   else "SUCCESS", writer[0] if writer else None, writer[1:] if writer else None))
        return out

    def snapshot(self, name: str) -> SnapshotRef:
        """The snapshot called ``name``; an error listing the snapshots when there is none."""
        for snap in self.snapshots():
            if snap.name == name:
                return snap
        known = ", ".join(s.name for s in self.snapshots()) or "none"
        raise SnapshotNotFoundError(f"snapshot {name!r} not found in {self.store.uri}; snapshots: {known}")

    def indices(self, snapshot: str) -> list[IndexRef]:
        """The indices of a snapshot, by name."""
        snap = self.snapshot(snapshot)
        out = []
        for name, entry in self.data.get("indices", {}).items():
            members = entry.get("snapshots", [])
            # ES 5.0-5.4 lists objects {"name": ...}; later versions list snapshot UUIDs.
            uuids = {m["name"] if isinstance(m, dict) else m for m in members}
            if snap.uuid in uuids or snap.name in uuids:
                out.append(IndexRef(name, entry["id"]))
        return sorted(out, key=lambda i: i.name)

    def index(self, snapshot: str, name: str) -> IndexRef:
        """One index of a snapshot; an error listing the snapshot's indices when absent."""
        indices = self.indices(snapshot)
        for ref in indices:
            if ref.name == name:
                return ref
        known = ", ".join(i.name for i in indices) or "none"
        raise SnapshotNotFoundError(f"index {name!r} is not in snapshot {snapshot!r}; its indices: {known}")

    def snapshot_info(self, snapshot: str) -> dict[str, Any]:
        """The ``snap-<uuid>.dat`` document (name, state, indices, shard counts, failures)."""
        snap = self.snapshot(snapshot)
        key = f"snap-{snap.uuid}.dat"
        return dict(read_metadata_blob(self.store.read(key), f"{self.store.uri}/{key}", "snapshot")["snapshot"])

    def global_metadata(self, snapshot: str) -> dict[str, Any]:
        """The cluster metadata of the snapshot (templates, component and index templates)."""
        snap = self.snapshot(snapshot)
        key = f"meta-{snap.uuid}.dat"
        return dict(read_metadata_blob(self.store.read(key), f"{self.store.uri}/{key}", "metadata")["meta-data"])

    def _index_metadata_blob(self, snap: SnapshotRef, index: IndexRef) -> str:
        for s in self.data.get("snapshots", []):
            lookup = s.get("index_metadata_lookup") if s.get("uuid") == snap.uuid else None
            if lookup and index.id in lookup:
                return str(self.data["index_metadata_identifiers"][lookup[index.id]])
        return snap.uuid  # ES <= 7.8: the blob is named after the snapshot

    def index_metadata(self, snapshot: str, name: str) -> IndexMetadata:
        """Settings, mappings, aliases and shard count of an index as the snapshot holds them."""
        snap = self.snapshot(snapshot)
        ref = self.index(snapshot, name)
        key = f"indices/{ref.id}/meta-{self._index_metadata_blob(snap, ref)}.dat"
        doc = read_metadata_blob(self.store.read(key), f"{self.store.uri}/{key}", "index-metadata")
        body = doc.get(name) or next(iter(doc.values()))
        settings = body.get("settings", {})
        mappings = _unwrap_mappings(body.get("mappings"))
        try:
            shards = int(settings["index.number_of_shards"])
        except (KeyError, ValueError):
            raise MigrationError(f"{key}: index {name!r} metadata has no number_of_shards") from None
        return IndexMetadata(name, settings, mappings, body.get("aliases", {}) or {}, shards, body)

    def shard_path(self, ref: IndexRef, shard: int, number_of_shards: int) -> str:
        """The folder of a shard's blobs: classic ``indices/<id>/<shard>`` or OpenSearch's hashed layouts."""
        entry = self.data.get("indices", {}).get(ref.name, {})
        if entry.get("shard_path_type", 0) not in (0, None):
            prefix = f"snapshot_shard_paths/snapshot_path_{ref.id}.{ref.name}.{number_of_shards}."
            for key in self.store.list(prefix):
                paths = json.loads(self.store.read(key)).get("paths", [])
                if shard < len(paths):
                    return str(paths[shard]).rstrip("/")
        return f"indices/{ref.id}/{shard}"

    def shard_snapshot(self, snapshot: str, index: str, shard: int) -> ShardSnapshot:
        """The file list of one shard in one snapshot (from ``snap-<uuid>.dat`` in the shard folder)."""
        snap = self.snapshot(snapshot)
        ref = self.index(snapshot, index)
        meta = self.index_metadata(snapshot, index)
        if not 0 <= shard < meta.number_of_shards:
            raise SnapshotNotFoundError(
                f"index {index!r} of snapshot {snapshot!r} has shards 0..{meta.number_of_shards - 1}, not {shard}"
            )
        path = self.shard_path(ref, shard, meta.number_of_shards)
        key = f"{path}/snap-{snap.uuid}.dat"
        if not self.store.exists(key):
            raise SnapshotNotFoundError(
                f"shard {index}[{shard}] has no file list in snapshot {snapshot!r} ({key}): the shard failed "
                "or the snapshot is partial"
            )
        doc = read_metadata_blob(self.store.read(key), f"{self.store.uri}/{key}", "snapshot")
        files = tuple(
            ShardFile(
                blob=f["name"], physical_name=f["physical_name"], length=int(f["length"]),
                checksum=str(f.get("checksum", "")), part_size=int(f.get("part_size") or 0),
                meta_hash=f.get("meta_hash") if isinstance(f.get("meta_hash"), bytes) else None,
            )
            for f in doc.get("files", [])
        )
        return ShardSnapshot(snapshot, index, shard, path, files)


def _unwrap_mappings(raw: Any) -> dict[str, Any]:
    """Mappings are a list of one-key objects ``[{type: mapping}]`` (or one object, or compressed JSON)."""
    if raw is None:
        return {}
    items = raw if isinstance(raw, list) else [raw]
    out: dict[str, Any] = {}
    for item in items:
        if isinstance(item, bytes):
            from workers.snapshot.blobformat import decode_body

            item = decode_body(item, "compressed mapping")
        if isinstance(item, dict):
            out.update(item)
    return out
