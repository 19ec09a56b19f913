"""The source and target clusters as Dagster resources."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from opensearchpy import OpenSearch
from pydantic import Field

from migration_pipeline.sandbox import manager
from workers.common.clusters import BasicAuth, ClusterConnection, NoAuth, SigV4Auth, build_client
from workers.common.errors import ConfigurationError
from workflow_model import active_config_path, load_active


class NoAuthConfig(dg.Config):
    """No credentials."""

    kind: Literal["none"] = "none"


class BasicAuthConfig(dg.Config):
    """HTTP basic auth; ``password_env`` names the environment variable holding the password."""

    kind: Literal["basic"] = "basic"
    username: str
    password_env: str


class SigV4AuthConfig(dg.Config):
    """AWS SigV4 (Amazon OpenSearch Service ``es`` or Serverless ``aoss``), credentials from the AWS chain."""

    kind: Literal["sigv4"] = "sigv4"
    region: str
    service: str = Field(default="es", description="es (managed domains) or aoss (serverless)")


class SearchClusterResource(dg.ConfigurableResource):
    """An Elasticsearch or OpenSearch cluster.

    With no ``endpoint``, the ``role``'s cluster of the active workflow config is used, else (no config loaded)
    the ``role``'s cluster of the running local sandbox.
    """

    endpoint: str | None = Field(default=None, description="http(s)://host:port; empty: the workflow config's")
    role: str | None = Field(default=None, description="source or target: the workflow config's (or sandbox's)")
    auth: NoAuthConfig | BasicAuthConfig | SigV4AuthConfig = Field(
        default_factory=NoAuthConfig, discriminator="kind"
    )
    verify_certs: bool = Field(default=True, description="Verify TLS certificates (turn off only for tests)")
    ca_certs: str | None = Field(default=None, description="PEM file of the CA that signed the cluster's cert")
    timeout_s: float = 30.0

    def connection(self) -> ClusterConnection:
        """The plain connection description the workers take."""
        endpoint = self.endpoint
        if not endpoint:
            if self.role not in ("source", "target"):
                raise ConfigurationError("cluster resource: set 'endpoint', or 'role' to source or target")
            if active_config_path().is_file():
                conn: ClusterConnection = getattr(load_active(), self.role).connection()
                return conn
            node = manager.running().engines.get(self.role)
            if node is None:
                raise ConfigurationError(f"no workflow config is active and the local sandbox has no {self.role} "
                                         "cluster running (workflow configure --load FILE, or migration sandbox up)")
            endpoint = node.url
        auth: NoAuth | BasicAuth | SigV4Auth
        if isinstance(self.auth, BasicAuthConfig):
            auth = BasicAuth(self.auth.username, self.auth.password_env)
        elif isinstance(self.auth, SigV4AuthConfig):
            if self.auth.service not in ("es", "aoss"):
                raise ConfigurationError(f"auth.service must be es or aoss, not {self.auth.service!r}")
            auth = SigV4Auth(self.auth.region, "aoss" if self.auth.service == "aoss" else "es")
        else:
            auth = NoAuth()
        return ClusterConnection(endpoint, auth, self.verify_certs, self.ca_certs, self.timeout_s)

    def get_client(self) -> OpenSearch:
        """An opensearch-py client with auth and TLS applied."""
        return build_client(self.connection())
