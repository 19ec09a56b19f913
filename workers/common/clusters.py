"""How to reach a cluster: endpoint, authentication (none, basic, SigV4, client certificate) and TLS; its client.

This is the one model of a cluster connection: the workflow file's ``source``/``target``, the metadata CLI's file,
the Dagster resources and the workers all read and write this shape (``auth.kind`` picks the method).
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from opensearchpy import JSONSerializer, OpenSearch, RequestsHttpConnection
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workers.common.errors import ConfigurationError

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoAuth(_Frozen):
    """No credentials."""

    kind: Literal["none"] = "none"

    def summary(self) -> str:
        """How a connection's description names it."""
        return "no auth"

    def label(self) -> str:
        """How logs name it (never a secret)."""
        return "none"


class BasicAuth(_Frozen):
    """HTTP basic auth; the password is read from the environment variable named here, never stored."""

    kind: Literal["basic"] = "basic"
    username: str = Field(min_length=1)
    password_env: str = Field(min_length=1, pattern=_ENV_NAME,
                              description="name of the environment variable holding the password")

    def password(self) -> str:
        """The password, from ``$password_env``; an error naming the variable when it is unset."""
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigurationError(
                f"environment variable {self.password_env} (password of user {self.username!r}) is not set"
            )
        return value

    def summary(self) -> str:
        """How a connection's description names it."""
        return f"basic auth as {self.username}"

    def label(self) -> str:
        """How logs name it (never a secret)."""
        return f"basic ({self.username}, password from ${self.password_env})"


class SigV4Auth(_Frozen):
    """AWS Signature V4, credentials from the usual AWS chain; service ``es`` or ``aoss`` (serverless)."""

    kind: Literal["sigv4"] = "sigv4"
    region: str = Field(min_length=1)
    service: Literal["es", "aoss"] = "es"

    def summary(self) -> str:
        """How a connection's description names it."""
        return f"SigV4 ({self.service}, {self.region})"

    def label(self) -> str:
        """How logs name it (never a secret)."""
        return f"sigv4 ({self.service}, {self.region})"


class CertAuth(_Frozen):
    """A TLS client certificate (PEM), as clusters with certificate authentication require; the key stays a file."""

    kind: Literal["cert"] = "cert"
    cert_file: str = Field(min_length=1, description="PEM client certificate (with its chain)")
    key_file: str | None = Field(default=None, description="PEM private key, unencrypted; empty: in cert_file")

    def summary(self) -> str:
        """How a connection's description names it."""
        return f"client certificate {self.cert_file}"

    def label(self) -> str:
        """How logs name it (never a secret)."""
        return f"client certificate ({self.cert_file})"


Auth = Annotated[NoAuth | BasicAuth | SigV4Auth | CertAuth, Field(discriminator="kind")]


class Tls(_Frozen):
    """TLS towards a cluster: verification stays on unless turned off here."""

    verify: bool = True
    ca_file: str | None = Field(default=None, description="PEM CA that signed the cluster's certificate")


class ClusterConnection(_Frozen):
    """Everything needed to open a client to one cluster."""

    endpoint: str = Field(description="http(s)://host:port")
    auth: Auth = Field(default_factory=NoAuth)
    tls: Tls = Field(default_factory=Tls)
    timeout_s: float = Field(default=60.0, gt=0, description="seconds per request")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1].strip("/")) == 0:
            raise ValueError(f"cluster endpoint {value!r} must be http(s)://host[:port]")
        return value.rstrip("/")

    def redacted(self) -> str:
        """A description safe for logs and metadata: no secrets."""
        return f"{self.endpoint} ({self.auth.summary()}, TLS verify {'on' if self.tls.verify else 'off'})"

    def files(self) -> dict[str, str]:
        """The files this connection reads (CA, client certificate, key), by the key that names each."""
        named = {"tls.ca_file": self.tls.ca_file}
        if isinstance(self.auth, CertAuth):
            named |= {"auth.cert_file": self.auth.cert_file, "auth.key_file": self.auth.key_file}
        return {key: path for key, path in named.items() if path}

    def check_files(self) -> None:
        """An error naming the key and the path of each file that is not there (checked where the client runs)."""
        missing = [f"{key} {path!r}" for key, path in self.files().items() if not os.path.isfile(path)]
        if missing:
            raise ConfigurationError(f"{self.endpoint}: no such file: {', '.join(missing)}")


def auth_from_flags(*, username: str | None, password_env: str | None, aws_region: str | None, aws_service: str,
                    client_cert: str | None, client_key: str | None) -> Auth:
    """The auth the command-line flags ``--target-username/-password-env``, ``--target-aws-region/-service`` and
    ``--target-client-cert/-key`` choose (none of them: no auth); an error naming the flags when two are mixed."""
    chosen = [flag for flag, value in (("--target-aws-region", aws_region), ("--target-username", username),
                                       ("--target-client-cert", client_cert)) if value]
    if len(chosen) > 1:
        raise ConfigurationError(f"{' and '.join(chosen)}: choose one way to authenticate")
    if aws_region:
        if aws_service not in ("es", "aoss"):
            raise ConfigurationError(f"--target-aws-service {aws_service!r}: expected es or aoss")
        return SigV4Auth(region=aws_region, service="aoss" if aws_service == "aoss" else "es")
    if username:
        if not password_env:
            raise ConfigurationError("--target-username needs --target-password-env (the variable's name)")
        return BasicAuth(username=username, password_env=password_env)
    if client_cert:
        return CertAuth(cert_file=client_cert, key_file=client_key)
    return NoAuth()

def parse_connection(data: Any, where: str) -> ClusterConnection:
    """``data`` (a mapping as read from a file or options) as a connection; errors name each key under ``where``."""
    try:
        return ClusterConnection.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(validation_message(exc, where)) from None


def validation_message(exc: ValidationError, where: str) -> str:
    """Pydantic's errors as ``where.key.path: message``, one per problem (``where`` may be empty)."""
    parts = []
    for error in exc.errors():
        # Discriminated unions put the chosen tag in the path (auth.basic.password_env): it names no key.
        path = [str(p) for p in error["loc"] if p not in ("none", "basic", "sigv4", "cert")]
        parts.append(f"{'.'.join(p for p in [where, *path] if p)}: {error['msg']}")
    return "; ".join(parts)


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
    conn.check_files()
    http_auth: object = None
    client_cert: dict[str, Any] = {}
    if isinstance(conn.auth, BasicAuth):
        http_auth = (conn.auth.username, conn.auth.password())
    elif isinstance(conn.auth, SigV4Auth):
        import boto3
        from opensearchpy import AWSV4SignerAuth

        credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise ConfigurationError(f"SigV4 for {conn.endpoint}: no AWS credentials found in the usual chain")
        http_auth = AWSV4SignerAuth(credentials, conn.auth.region, conn.auth.service)
    elif isinstance(conn.auth, CertAuth):
        client_cert = {"client_cert": conn.auth.cert_file, "client_key": conn.auth.key_file}
    return OpenSearch(
        hosts=[conn.endpoint],
        http_auth=http_auth,
        use_ssl=conn.endpoint.startswith("https://"),
        verify_certs=conn.tls.verify,
        ssl_show_warn=conn.tls.verify,
        ca_certs=conn.tls.ca_file,
        timeout=conn.timeout_s,
        connection_class=TLSKeepingConnection,
        pool_maxsize=pool_maxsize,
        http_compress=http_compress,
        max_retries=max_retries,
        serializer=serializer or JSONSerializer(),
        **client_cert,
    )
