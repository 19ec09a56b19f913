"""Cluster connections: one model for every layer, secrets kept out of descriptions, TLS verification on by default."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from workers.common.clusters import (
    BasicAuth,
    CertAuth,
    ClusterConnection,
    SigV4Auth,
    Tls,
    build_client,
    parse_connection,
)
from workers.common.errors import ConfigurationError


def test_endpoint_must_be_http() -> None:
    with pytest.raises(ValidationError, match=r"'localhost:9200' must be http\(s\)://host"):
        ClusterConnection(endpoint="localhost:9200")
    with pytest.raises(ConfigurationError, match=r"target\.endpoint: .*'localhost:9200'"):
        parse_connection({"endpoint": "localhost:9200"}, "target")
    assert ClusterConnection(endpoint="http://127.0.0.1:9200/").endpoint == "http://127.0.0.1:9200"


def test_missing_files_are_named_where_the_client_is_built(tmp_path: Path) -> None:
    conn = ClusterConnection(endpoint="https://127.0.0.1:9200", tls=Tls(ca_file=str(tmp_path / "ca.pem")),
                             auth=CertAuth(cert_file=str(tmp_path / "client.pem")))
    with pytest.raises(ConfigurationError, match=r"tls\.ca_file '.*ca\.pem', auth\.cert_file '.*client\.pem'"):
        build_client(conn)


def test_password_never_in_description(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRC_PW", "s3cr3t-value")
    conn = ClusterConnection(endpoint="https://127.0.0.1:9200", auth=BasicAuth(username="admin", password_env="SRC_PW"))
    assert "s3cr3t-value" not in conn.redacted() and "admin" in conn.redacted()
    assert "s3cr3t-value" not in repr(conn) and "s3cr3t-value" not in conn.model_dump_json()
    client = build_client(conn)
    connection = client.transport.get_connection()
    assert connection.session.verify not in (False, None)  # on (True or a CA bundle) unless turned off


def test_sigv4_description_has_no_credentials() -> None:
    conn = ClusterConnection(endpoint="https://search.example:443", auth=SigV4Auth(region="eu-west-1", service="aoss"))
    assert "SigV4 (aoss, eu-west-1)" in conn.redacted()


def test_auth_kinds_round_trip_through_json() -> None:
    for auth in (BasicAuth(username="u", password_env="PW"), SigV4Auth(region="r"),
                 CertAuth(cert_file="/c.pem", key_file="/k.pem")):
        conn = ClusterConnection(endpoint="https://h:9200", auth=auth, tls=Tls(verify=False), timeout_s=5)
        assert ClusterConnection.model_validate_json(conn.model_dump_json()) == conn


def test_unknown_auth_kind_and_keys_are_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"source\.auth"):
        parse_connection({"endpoint": "https://h:9200", "auth": {"kind": "kerberos"}}, "source")
    with pytest.raises(ConfigurationError, match=r"source\.verify_certs"):
        parse_connection({"endpoint": "https://h:9200", "verify_certs": False}, "source")
    with pytest.raises(ConfigurationError, match=r"source\.auth\.password_env"):
        parse_connection({"endpoint": "https://h:9200", "auth": {"kind": "basic", "username": "u"}}, "source")


def test_client_certificate_is_given_to_the_session(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_text("cert"), key.write_text("key")
    client = build_client(ClusterConnection(endpoint="https://127.0.0.1:9200",
                                            auth=CertAuth(cert_file=str(cert), key_file=str(key))))
    assert client.transport.get_connection().session.cert == (str(cert), str(key))
