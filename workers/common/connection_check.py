"""One look at whether a cluster answers: engine, version, health and latency, or why it does not."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from opensearchpy.exceptions import (
    AuthenticationException,
    AuthorizationException,
    ConnectionTimeout,
    SSLError,
    TransportError,
)
from opensearchpy.exceptions import ConnectionError as ClientConnectionError

from workers.common.cluster_info import server_version
from workers.common.clusters import ClusterConnection, build_client
from workers.common.errors import MigrationError

_UNTRUSTED = re.compile(r"certificate verify failed: ([^(\n]+)")


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome for one cluster; ``error`` names the cluster and endpoint. No secrets in any field."""

    role: str
    endpoint: str
    auth: str
    tls_verify: bool
    reachable: bool
    engine: str | None = None
    version: str | None = None
    health: str | None = None
    latency_ms: float | None = None
    error: str | None = None


def check(role: str, conn: ClusterConnection) -> ConnectionCheck:
    """Ask ``GET /`` and cluster health of ``conn``; never raises for a cluster that fails."""
    where = f"{role} cluster {conn.endpoint}"

    def result(reachable: bool, error: str | None = None, **found: Any) -> ConnectionCheck:
        return ConnectionCheck(role, conn.endpoint, auth_label(conn), conn.tls.verify, reachable, error=error,
                               **found)

    try:
        client = build_client(conn, max_retries=0)
        began = time.monotonic()
        version = server_version(client)
        latency_ms = (time.monotonic() - began) * 1000
        health = client.cluster.health()
    except MigrationError as exc:  # a missing password variable, no AWS credentials
        return result(False, f"{where}: {exc}")
    except SSLError as exc:
        return result(False, f"{where}: TLS failure: {tls_reason(exc)}")
    except ConnectionTimeout:
        return result(False, f"{where}: no answer within {conn.timeout_s:g}s")
    except ClientConnectionError as exc:
        return result(False, f"{where}: cannot connect: {connection_reason(exc)}")
    except AuthenticationException as exc:
        return result(True, f"{where}: 401 unauthorized ({_auth_hint(conn)}): {_reason(exc)}")
    except AuthorizationException as exc:
        return result(True, f"{where}: 403 forbidden: {_reason(exc)}")
    except TransportError as exc:
        return result(True, f"{where}: answered {exc.status_code}: {_reason(exc)}")
    return result(True, engine=version.engine, version=version.number, health=str(health.get("status", "unknown")),
                  latency_ms=round(latency_ms, 1))


def tls_reason(exc: SSLError) -> str:
    """Why a TLS handshake failed, in one line (an untrusted certificate said as such)."""
    text = str(exc.info if exc.info is not None else exc)
    untrusted = _UNTRUSTED.search(text)
    if untrusted:
        return f"its certificate is not trusted (certificate verify failed: {untrusted.group(1).strip()})"
    return text[:300]


def connection_reason(exc: ClientConnectionError) -> str:
    """A short reason for a failed connection (``connection refused`` rather than urllib3's object dump)."""
    text = str(exc.info if exc.info is not None else exc)
    for needle, reason in (("Connection refused", "connection refused"), ("Name or service not known", "unknown host"),
                           ("nodename nor servname", "unknown host"), ("timed out", "timed out"),
                           ("Connection reset", "connection reset"), ("No route to host", "no route to host")):
        if needle in text:
            return reason
    return text[:300]


def _reason(exc: TransportError) -> str:
    info = exc.info
    if isinstance(info, dict):
        error = info.get("error")
        if isinstance(error, dict):
            return str(error.get("reason") or error.get("type") or error)
        if error:
            return str(error)
    return str(exc.error)


def auth_label(conn: ClusterConnection) -> str:
    """The auth kind and user, never a secret: ``none``, ``basic (USER, password from $VAR)``, ``sigv4 (...)``."""
    return conn.auth.label()


def _auth_hint(conn: ClusterConnection) -> str:
    if conn.auth.kind == "basic":
        return f"check the user and ${getattr(conn.auth, 'password_env', '')}"
    if conn.auth.kind == "sigv4":
        return "check the AWS credentials and the domain's access policy"
    if conn.auth.kind == "cert":
        return "check that the cluster trusts the client certificate's CA and maps it to a user"
    return "the cluster wants credentials; configure auth"
