"""Cluster connections: validation, secrets kept out of descriptions, TLS verification on by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.common.clusters import BasicAuth, ClusterConnection, SigV4Auth, build_client
from workers.common.errors import ConfigurationError


def test_endpoint_must_be_http() -> None:
    with pytest.raises(ConfigurationError, match=r"'localhost:9200' must start with http"):
        ClusterConnection("localhost:9200")


def test_missing_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"ca\.pem"):
        ClusterConnection("https://127.0.0.1:9200", ca_certs=str(tmp_path / "ca.pem"))


def test_password_never_in_description(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRC_PW", "s3cr3t-value")
    conn = ClusterConnection("https://127.0.0.1:9200", BasicAuth("admin", "SRC_PW"))
    assert "s3cr3t-value" not in conn.redacted() and "admin" in conn.redacted()
    assert "s3cr3t-value" not in repr(conn)
    client = build_client(conn)
    connection = client.transport.get_connection()
    assert connection.session.verify not in (False, None)  # on (True or a CA bundle) unless turned off


def test_sigv4_repr_has_no_credentials() -> None:
    conn = ClusterConnection("https://search.example:443", SigV4Auth("eu-west-1", "aoss"))
    assert "SigV4 (aoss, eu-west-1)" in conn.redacted()
