"""The ``console metadata --config`` file: the workflow file's ``source``, ``target`` and ``metadata`` sections.

The clusters are the one connection model (``workers.common.clusters``) and ``metadata`` is the workflow file's
section, so a workflow file's sections can be copied here as they are. Older keys of this file are read as
documented aliases: ``verify_certs``/``ca_certs`` on a cluster (now ``tls.verify``/``tls.ca_file``) and
``metadata.replicas``/``multi_type``/``allow_existing`` (now under ``metadata.transformations``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workers.common.clusters import ClusterConnection, validation_message
from workers.common.errors import ConfigurationError
from workflow_model.config import MetadataModel

CLUSTER_ALIASES = {"verify_certs": "verify", "ca_certs": "ca_file"}
TRANSFORMATION_ALIASES = ("replicas", "multi_type", "allow_existing")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SnapshotConfig(_Strict):
    """A snapshot to read the source's metadata from."""

    repo: str
    name: str
    s3_endpoint: str | None = None
    s3_region: str | None = None


def _cluster_aliases(raw: Any) -> Any:
    if not isinstance(raw, dict) or not any(key in raw for key in CLUSTER_ALIASES):
        return raw
    cluster = dict(raw)
    tls = dict(cluster.get("tls") or {})
    for old, new in CLUSTER_ALIASES.items():
        if old in cluster:
            tls[new] = cluster.pop(old)
    return {**cluster, "tls": tls}


def _metadata_aliases(raw: Any) -> Any:
    if not isinstance(raw, dict) or not any(key in raw for key in TRANSFORMATION_ALIASES):
        return raw
    metadata = dict(raw)
    moved = {key: metadata.pop(key) for key in TRANSFORMATION_ALIASES if key in metadata}
    return {**metadata, "transformations": {**(metadata.get("transformations") or {}), **moved}}


class MetadataFile(_Strict):
    """The whole file."""

    source: ClusterConnection | None = None
    source_version: str | None = None
    snapshot: SnapshotConfig | None = None
    target: ClusterConnection | None = None
    metadata: MetadataModel = Field(default_factory=MetadataModel)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        return {**raw, **{role: _cluster_aliases(raw[role]) for role in ("source", "target") if role in raw},
                **({"metadata": _metadata_aliases(raw["metadata"])} if "metadata" in raw else {})}


def load_metadata_file(path: Path) -> MetadataFile:
    """Read and check ``path``; errors name the file and the key path."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"config file {path} is not valid YAML: {exc}") from None
    try:
        return MetadataFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigurationError(f"config file {path}: {_as_written(validation_message(exc, ''), raw)}") from None


def _as_written(message: str, raw: Any) -> str:
    """Errors about a key given under its alias name the alias, as the file has it."""
    if not isinstance(raw, dict):
        return message
    for role in ("source", "target"):
        for old, new in CLUSTER_ALIASES.items():
            if isinstance(raw.get(role), dict) and old in raw[role]:
                message = message.replace(f"{role}.tls.{new}:", f"{role}.{old}:")
    for key in TRANSFORMATION_ALIASES:
        if isinstance(raw.get("metadata"), dict) and key in raw["metadata"]:
            message = message.replace(f"metadata.transformations.{key}:", f"metadata.{key}:")
    return message
