"""Capture to Kafka over SASL_SSL (PLAIN): the sandbox's broker with its second listener, the proxy's start-up check
(refused credentials, an untrusted CA), the SASL and TLS options, and secrets kept out of logs and records."""

from __future__ import annotations

import http.client
import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from migration_pipeline.sandbox import manager
from migration_pipeline.sandbox.kafka import KafkaNode
from migration_pipeline.sandbox.processes import free_port
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.capture.certs import make_pki
from tests.workers.capture.conftest import RunningProxy, create_topic
from workers.capture.kafka_sink import security_config
from workers.capture.options import KafkaOptions
from workers.capture.reader import Transaction, read_topic, read_transactions
from workers.common.errors import ConfigurationError

StartProxy = Callable[..., RunningProxy]
PASSWORD_ENV = "CAPTURE_TEST_KAFKA_PASSWORD"


@pytest.fixture(scope="module")
def sasl_kafka() -> Iterator[KafkaNode]:
    """A sandbox of its own with only Kafka, started with the SASL_SSL listener (``sandbox up --kafka-sasl``)."""
    name = unique("sasl")
    try:
        state = manager.up(manager.UpRequest(source=None, target=None, kafka_sasl=True), name=name)
        assert state.kafka is not None
        yield state.kafka
    finally:
        manager.down(name)


def sasl_overrides(node: KafkaNode, **changes: Any) -> dict[str, Any]:
    facts = node.sasl_facts()
    assert facts is not None
    base = {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN",
            "kafka_sasl_username": facts["username"], "kafka_sasl_password_env": PASSWORD_ENV,
            "kafka_ssl_ca_file": facts["ca_file"]}
    base.update(changes)
    return base


def test_sandbox_reports_the_sasl_listener(sasl_kafka: KafkaNode) -> None:
    node_dir = Path(sasl_kafka.node_dir)
    name = node_dir.parent.name
    env = {**os.environ, "MIGRATION_SANDBOX_NAME": name}
    env.pop("MIGRATION_DEBUG", None)
    result = subprocess.run([sys.executable, "-m", "migration_pipeline.cli.main", "sandbox", "status", "--json"],
                            env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)["kafka"]
    assert facts["alive"] and facts["bootstrap"] == sasl_kafka.bootstrap
    sasl = facts["sasl"]
    assert set(sasl) == {"bootstrap", "security_protocol", "mechanism", "username", "password", "ca_file"}
    assert sasl["security_protocol"] == "SASL_SSL" and sasl["mechanism"] == "PLAIN"
    assert sasl["bootstrap"] != facts["bootstrap"] and Path(sasl["ca_file"]).is_file()
    # The broker's key file and its properties (the JAAS line holds the password) are for its owner only.
    assert (node_dir / "config" / "server.properties").stat().st_mode & 0o077 == 0
    assert (node_dir / "config" / "tls" / "server-keystore.pem").stat().st_mode & 0o077 == 0
    # What status reports is enough to connect; without the credentials the listener refuses.
    admin = AdminClient({"bootstrap.servers": sasl["bootstrap"], "security.protocol": "SASL_SSL",
                         "sasl.mechanism": "PLAIN", "sasl.username": sasl["username"],
                         "sasl.password": sasl["password"], "ssl.ca.location": sasl["ca_file"]})
    assert admin.list_topics(timeout=15).brokers
    # A second `up --kafka-sasl` reuses it; `up --kafka` too (the plain listener is still there).
    again = manager.up(manager.UpRequest(source=None, target=None, kafka_sasl=True), name=name)
    assert again.kafka is not None and again.kafka.pid == sasl_kafka.pid


def test_proxy_captures_through_sasl_ssl_and_the_reader_reads_with_the_same_settings(
        sandbox: SandboxState, sasl_kafka: KafkaNode, start_proxy: StartProxy, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    facts = sasl_kafka.sasl_facts()
    assert facts is not None
    monkeypatch.setenv(PASSWORD_ENV, facts["password"])
    topic = create_topic(sasl_kafka.bootstrap, partitions=1)  # on the plain listener: one broker, one topic
    caplog.set_level(logging.DEBUG)
    proxy = start_proxy(sandbox.engines["source"].url, facts["bootstrap"], topic, **sasl_overrides(sasl_kafka))
    index = unique("sasl")
    connection = http.client.HTTPConnection("127.0.0.1", proxy.server.port, timeout=30)
    try:
        for method, path, body in (("PUT", f"/{index}", {"settings": {"number_of_replicas": 0}}),
                                   ("PUT", f"/{index}/_doc/1?refresh=true", {"n": 1}),
                                   ("GET", f"/{index}/_doc/1", None)):
            connection.request(method, path, body=json.dumps(body).encode() if body else None,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            assert response.status in (200, 201), (method, path, response.status)
    finally:
        connection.close()
    assert proxy.server.sink is not None and proxy.server.sink.healthy
    assert proxy.options.kafka is not None
    config = security_config(proxy.options.kafka)
    assert config["sasl.password"] == facts["password"] and config["ssl.ca.location"] == facts["ca_file"]

    expected = {f"/{index}", f"/{index}/_doc/1?refresh=true", f"/{index}/_doc/1"}
    deadline = time.monotonic() + 20
    while True:
        captured = {e.target for e in read_transactions(facts["bootstrap"], topic, config=config)
                    if isinstance(e, Transaction)}
        if expected <= captured or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert expected <= captured
    # Secrets never reach a record or a log line.
    secret = facts["password"].encode()
    records = list(read_topic(facts["bootstrap"], topic, config=config))
    assert records and all(secret not in r.payload and secret not in json.dumps(r.meta).encode() for r in records)
    assert facts["password"] not in caplog.text
    # Without the credentials the same listener gives nothing.
    with pytest.raises(Exception, match=r"(?i)authentication|transport|timed out"):
        list(read_topic(facts["bootstrap"], topic, timeout_s=3,
                        config={**config, "sasl.password": "wrong", "log_level": 0}))


def run_proxy(node: KafkaNode, *flags: str, password: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m workers.capture`` against the SASL_SSL listener (the password in the named variable)."""
    facts = node.sasl_facts()
    assert facts is not None
    env = {**os.environ, PASSWORD_ENV: password}
    command = [sys.executable, "-m", "workers.capture", "--listen", f"127.0.0.1:{free_port()}",
               "--destination", "http://127.0.0.1:1", "--kafka-brokers", facts["bootstrap"],
               "--kafka-topic", unique("never"), "--kafka-security-protocol", "SASL_SSL",
               "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", facts["username"],
               "--kafka-sasl-password-env", PASSWORD_ENV, "--log-level", "debug", *flags]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_wrong_password_stops_the_proxy_at_start_naming_the_broker_and_the_cause(
        sasl_kafka: KafkaNode, tmp_path: Path) -> None:
    facts = sasl_kafka.sasl_facts()
    assert facts is not None
    wrong = "not-the-password-" + unique("pw")
    started = time.monotonic()
    result = run_proxy(sasl_kafka, "--kafka-ssl-ca", facts["ca_file"], password=wrong)
    assert result.returncode == 2, result.stderr[-2000:]
    assert time.monotonic() - started < 30  # refused at once, not after retries
    assert f"Kafka {facts['bootstrap']} (SASL_SSL): authentication failed" in result.stderr
    assert "Invalid username or password" in result.stderr and PASSWORD_ENV in result.stderr
    assert "capture proxy listening" not in result.stderr and "Traceback" not in result.stderr
    # Neither the wrong password nor the right one appears, even at log level debug.
    assert wrong not in result.stderr + result.stdout and facts["password"] not in result.stderr


@pytest.mark.parametrize("ca", ["other", "system"])
def test_untrusted_ca_stops_the_proxy_at_start(sasl_kafka: KafkaNode, tmp_path: Path, ca: str) -> None:
    facts = sasl_kafka.sasl_facts()
    assert facts is not None
    flags = ("--kafka-ssl-ca", str(make_pki(tmp_path).ca)) if ca == "other" else ()
    result = run_proxy(sasl_kafka, *flags, password=facts["password"])
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"Kafka {facts['bootstrap']} (SASL_SSL): TLS failed" in result.stderr
    assert "certificate verify failed" in result.stderr and "--kafka-ssl-ca" in result.stderr
    assert facts["password"] not in result.stderr + result.stdout


def test_unreachable_brokers_at_start_are_logged_and_the_proxy_serves(
        sandbox: SandboxState, start_proxy: StartProxy, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    proxy = start_proxy(sandbox.engines["source"].url, f"127.0.0.1:{port}", "t", kafka_delivery_timeout_ms=1500,
                        shutdown_timeout_s=2.0)
    assert time.monotonic() - started < 10
    assert f"kafka 127.0.0.1:{port} (PLAINTEXT) did not answer within 1.5s" in caplog.text
    assert "Connection refused" in caplog.text
    with urllib.request.urlopen(proxy.admin_url + "/health", timeout=10) as health:
        assert json.load(health)["kafka"] == "unreachable"
    with urllib.request.urlopen(proxy.url + "/", timeout=30) as response:
        assert response.status == 200


@pytest.mark.parametrize(("changes", "message"), [
    ({"security_protocol": "TLS"}, "--kafka-security-protocol 'TLS' must be one of"),
    ({"security_protocol": "SASL_SSL"}, "needs --kafka-sasl-mechanism"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN"}, "needs --kafka-sasl-username and"),
    ({"sasl_mechanism": "PLAIN"}, "--kafka-sasl-mechanism needs --kafka-security-protocol SASL_SSL"),
    ({"sasl_username": "u", "sasl_password_env": "V"}, "--kafka-sasl-username needs --kafka-security-protocol"),
    ({"ssl_ca_file": "CA"}, "--kafka-ssl-ca needs --kafka-security-protocol SSL or SASL_SSL (not PLAINTEXT)"),
    ({"security_protocol": "ssl", "ssl_ca_file": "/nonexistent/ca.pem"}, "--kafka-ssl-ca /nonexistent/ca.pem: no such"),
    ({"security_protocol": "SSL", "ssl_cert_file": "CA"}, "--kafka-ssl-cert and --kafka-ssl-key go together"),
])
def test_sasl_and_tls_options_must_fit_the_protocol(tmp_path: Path, changes: dict[str, str], message: str) -> None:
    (tmp_path / "CA").write_text("x")
    resolved = {k: str(tmp_path / v) if k.startswith("ssl_") and v == "CA" else v for k, v in changes.items()}
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        KafkaOptions("b:9092", "t", **resolved)  # type: ignore[arg-type]


def test_security_settings_for_producer_and_reader(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    options = KafkaOptions("b:9093", "t", security_protocol="sasl_ssl", sasl_mechanism="PLAIN", sasl_username="u",
                           sasl_password_env=PASSWORD_ENV, ssl_ca_file=str(ca))
    assert options.security_protocol == "SASL_SSL"
    monkeypatch.setenv(PASSWORD_ENV, "pw")
    assert security_config(options) == {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                                        "sasl.username": "u", "sasl.password": "pw", "ssl.ca.location": str(ca)}
    # A mechanism given as a property satisfies the check; OAUTHBEARER needs no user name.
    KafkaOptions("b:9093", "t", security_protocol="SASL_SSL", properties=(("sasl.mechanism", "OAUTHBEARER"),))
