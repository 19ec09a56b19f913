"""Read the source's metadata from a snapshot: global metadata (templates) and each index's metadata."""

from __future__ import annotations

from typing import Any

from workers.metadata import objects
from workers.metadata.errors import MetadataError
from workers.metadata.model import MetadataObject, SourceMetadata
from workers.metadata.versions import EngineVersion
from workers.snapshot.repository import SnapshotRepository


def snapshot_version(repository: SnapshotRepository, snapshot: str) -> EngineVersion | None:
    """The engine and version that wrote ``snapshot`` as far as the repository records it."""
    version_id = repository.snapshot_info(snapshot).get("version_id")
    if isinstance(version_id, int) and not isinstance(version_id, bool) and version_id > 0:
        return EngineVersion.from_id(version_id)
    ref = repository.snapshot(snapshot)
    return EngineVersion(ref.engine, *ref.release) if ref.engine and ref.release else None


def _templates(meta: dict[str, Any]) -> list[MetadataObject]:
    out = [objects.legacy_template(name, body) for name, body in (meta.get("templates") or {}).items()]
    composable = (meta.get("index_template") or {}).get("index_template") or {}
    out += [objects.index_template(name, body) for name, body in composable.items()]
    components = (meta.get("component_template") or {}).get("component_template") or {}
    out += [objects.component_template(name, body) for name, body in components.items()]
    return out


def read_snapshot_metadata(repository: SnapshotRepository, snapshot: str,
                           version: EngineVersion | None = None) -> SourceMetadata:
    """Templates and indices of ``snapshot`` as the model; ``version`` overrides the recorded source version."""
    found = version or snapshot_version(repository, snapshot)
    if found is None:
        raise MetadataError(
            f"snapshot {snapshot!r} in {repository.store.uri} does not record the version that wrote it; "
            "give it with --source-version (e.g. es:6.8.23)"
        )
    result = SourceMetadata(found, f"snapshot {snapshot} in {repository.store.uri}")
    result.objects.extend(_templates(repository.global_metadata(snapshot)))
    for ref in repository.indices(snapshot):
        meta = repository.index_metadata(snapshot, ref.name)
        result.objects.append(objects.index(ref.name, meta.settings, meta.mappings, meta.aliases))
    return result
