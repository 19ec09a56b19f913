"""How to reach a cluster: endpoint, authentication (none, basic, SigV4) and TLS; and the client for it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from opensearchpy import JSONSerializer, OpenSearch, RequestsHttpConnection

from workers.common.errors import ConfigurationError


@dataclass(frozen=True)
class NoAuth:
    """No credentials."""

    kind: Literal["none"] = "none"


@dataclass(frozen=True)
class BasicAuth:
    """HTTP basic auth; the password is read from the environment variable named here, never stored."""

    username: str
    password_env: str
    kind: Literal["basic"] = "basic"

    def password(self) -> str:
        """The password, from ``$password_env``; an error naming the variable when it is unset."""
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigurationError(
                f"environment variable {self.password_env} (password of user {self.username!r}) is not set"
            )
        return value


@dataclass(frozen=True)
class SigV4Auth:
    """AWS Signature V4, credentials from the usual AWS chain; service ``es`` or ``aoss`` (serverless)."""

    region: str
    service: Literal["es", "aoss"] = "es"
    kind: Literal["sigv4"] = "sigv4"


Auth = NoAuth | BasicAuth | SigV4Auth


@dataclass(frozen=True)
class ClusterConnection:
    """Everything needed to open a client to one cluster."""

    endpoint: str
    auth: Auth = field(default_factory=NoAuth)
    verify_certs: bool = True
    ca_certs: str | None = None
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(f"cluster endpoint {self.endpoint!r} must start with http:// or https://")
        if self.ca_certs and not os.path.isfile(self.ca_certs):
            raise ConfigurationError(f"CA file {self.ca_certs!r} for {self.endpoint} does not exist")

    def redacted(self) -> str:
        """A description safe for logs and metadata: no secrets."""
        who = {"none": "no auth", "basic": f"basic auth as {getattr(self.auth, 'username', '')}",
               "sigv4": f"SigV4 ({getattr(self.auth, 'service', '')}, {getattr(self.auth, 'region', '')})"}
        return f"{self.endpoint} ({who[self.auth.kind]}, TLS verify {'on' if self.verify_certs else 'off'})"


class TLSKeepingConnection(RequestsHttpConnection):
    """opensearch-py's requests connection, whose TLS choice holds whatever the environment says.

    requests lets ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` (set in many images to the system's CAs) replace,
    on every request, the verification the session was given: a CA file named for the cluster was ignored, and so
    was verification turned off. Here an explicit CA file, or verification off, wins; with neither, the variables
    apply as usual (and proxies from the environment always do).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pinned: str | bool | None = kwargs.get("ca_certs") or (False if kwargs.get("verify_certs") is False else None)
        if pinned is None:
            return
        merge = self.session.merge_environment_settings

        def merge_keeping_tls(url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
            settings = merge(url, proxies, stream, verify, cert)
            settings["verify"] = pinned
            return settings

        self.session.merge_environment_settings = merge_keeping_tls  # type: ignore[method-assign]


def build_client(conn: ClusterConnection, *, pool_maxsize: int = 10, http_compress: bool = False,
                 max_retries: int = 3, serializer: JSONSerializer | None = None) -> OpenSearch:
    """An opensearch-py client for the connection (works against Elasticsearch 5-9 and OpenSearch REST)."""
    http_auth: object = None
    if isinstance(conn.auth, BasicAuth):
        http_auth = (conn.auth.username, conn.auth.password())
    elif isinstance(conn.auth, SigV4Auth):
        import boto3
        from opensearchpy import AWSV4SignerAuth

        credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise ConfigurationError(f"SigV4 for {conn.endpoint}: no AWS credentials found in the usual chain")
        http_auth = AWSV4SignerAuth(credentials, conn.auth.region, conn.auth.service)
    return OpenSearch(
        hosts=[conn.endpoint],
        http_auth=http_auth,
        use_ssl=conn.endpoint.startswith("https://"),
        verify_certs=conn.verify_certs,
        ssl_show_warn=conn.verify_certs,
        ca_certs=conn.ca_certs,
        timeout=conn.timeout_s,
        connection_class=TLSKeepingConnection,
        pool_maxsize=pool_maxsize,
        http_compress=http_compress,
        max_retries=max_retries,
        serializer=serializer or JSONSerializer(),
    )
