"""The ``--config FILE`` of ``console metadata``: source (snapshot or cluster), target and options, in YAML.

It holds the keys the workflow file will hold for the metadata step; until that file exists, this model reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workers.common.clusters import Auth, BasicAuth, ClusterConnection, NoAuth, SigV4Auth
from workers.common.errors import ConfigurationError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthConfig(_Strict):
    """``kind: none``, ``basic`` (``username``, ``password_env``) or ``sigv4`` (``region``, ``service``)."""

    kind: Literal["none", "basic", "sigv4"] = "none"
    username: str | None = None
    password_env: str | None = Field(default=None, description="environment variable holding the password")
    region: str | None = None
    service: Literal["es", "aoss"] = "es"


class ClusterConfig(_Strict):
    """A cluster: endpoint, auth, TLS."""

    endpoint: str
    auth: AuthConfig = Field(default_factory=AuthConfig)
    verify_certs: bool = True
    ca_certs: str | None = None


class SnapshotConfig(_Strict):
    """A snapshot to read the source's metadata from."""

    repo: str
    name: str
    s3_endpoint: str | None = None
    s3_region: str | None = None


class MetadataOptionsConfig(_Strict):
    """The metadata step's options."""

    index_allowlist: list[str] = Field(default_factory=list)
    index_template_allowlist: list[str] = Field(default_factory=list)
    component_template_allowlist: list[str] = Field(default_factory=list)
    rename: list[str] = Field(default_factory=list)
    replicas: int | None = Field(default=None, ge=0)
    multi_type: Literal["union", "split"] = "union"
    allow_existing: bool = False


class MetadataFile(_Strict):
    """The whole file."""

    source: ClusterConfig | None = None
    source_version: str | None = None
    snapshot: SnapshotConfig | None = None
    target: ClusterConfig | None = None
    metadata: MetadataOptionsConfig = Field(default_factory=MetadataOptionsConfig)


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
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"config file {path}: {problems}") from None


def connection(cluster: ClusterConfig, role: str) -> ClusterConnection:
    """The worker-side connection for a configured cluster (``role`` names it in errors)."""
    auth: Auth
    a = cluster.auth
    if a.kind == "basic":
        if not a.username or not a.password_env:
            raise ConfigurationError(f"{role}.auth: basic auth needs username and password_env")
        auth = BasicAuth(a.username, a.password_env)
    elif a.kind == "sigv4":
        if not a.region:
            raise ConfigurationError(f"{role}.auth: sigv4 needs region")
        auth = SigV4Auth(a.region, a.service)
    else:
        auth = NoAuth()
    return ClusterConnection(cluster.endpoint, auth, cluster.verify_certs, cluster.ca_certs)
