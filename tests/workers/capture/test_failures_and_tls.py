"""Kafka outages (a Kafka node of the test's own, stopped mid-run) and TLS on both sides of the proxy."""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from migration_pipeline.sandbox import kafka
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.capture.certs import make_pki
from tests.workers.capture.conftest import RunningProxy, create_topic, transactions
from workers.capture.options import TlsOptions

StartProxy = Callable[..., RunningProxy]


def call(proxy: RunningProxy, method: str, path: str, body: dict[str, object] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.server.port, timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_kafka_stopped_mid_run_forward_keeps_serving_and_reject_refuses_writes(
        sandbox: SandboxState, start_proxy: StartProxy, tmp_path: Path) -> None:
    source = sandbox.engines["source"].url
    node = kafka.start(tmp_path / "kafka")  # a broker of this test's own: the session's stays up
    try:
        topic = create_topic(node.bootstrap, partitions=1)
        short = dict(kafka_delivery_timeout_ms=1500, shutdown_timeout_s=3.0)
        forward = start_proxy(source, node.bootstrap, topic, **short)
        reject = start_proxy(source, node.bootstrap, topic, on_capture_failure="reject", **short)
        index = unique("outage")
        assert call(forward, "PUT", f"/{index}", {"settings": {"number_of_replicas": 0}})[0] == 200
        assert call(forward, "PUT", f"/{index}/_doc/before-f", {"n": 1})[0] == 201
        assert call(reject, "PUT", f"/{index}/_doc/before-r", {"n": 1})[0] == 201
        # A write's request records are acknowledged before its response; its response record (the end of the
        # transaction) goes through the batching producer and may land a little later.
        expected = {f"/{index}/_doc/before-f", f"/{index}/_doc/before-r"}
        assert wait_for(lambda: expected <= {t.target for t in transactions(node.bootstrap, topic)})

        kafka.stop(node)
        for i in range(5):
            status, _ = call(forward, "PUT", f"/{index}/_doc/f{i}", {"n": i})
            assert status == 201
        assert wait_for(lambda: forward.metric("capture_proxy_uncaptured_requests_total", method="PUT") == 5)
        assert forward.metric("capture_proxy_capture_failures_total", reason="_MSG_TIMED_OUT") >= 5

        for i in range(3):
            status, body = call(reject, "PUT", f"/{index}/_doc/r{i}", {"n": i})
            assert status == 503, body
        status, body = call(reject, "GET", f"/{index}/_doc/before-r")
        assert status == 200 and json.loads(body)["found"] is True
        # A search sent as POST reads: served; a POST that writes (auto-id index) is refused.
        status, body = call(reject, "POST", f"/{index}/_search", {"query": {"match_all": {}}})
        assert status == 200, body
        status, body = call(reject, "POST", f"/{index}/_doc", {"n": 9})
        assert status == 503, body
        assert reject.metric("capture_proxy_rejected_requests_total", method="PUT") == 3
        assert reject.metric("capture_proxy_rejected_requests_total", method="POST") == 1
        # The refused writes never reached the source; the forwarded ones did.
        for i in range(3):
            assert call(forward, "GET", f"/{index}/_doc/r{i}")[0] == 404
        assert call(forward, "GET", f"/{index}/_doc/f4")[0] == 200
        with urllib.request.urlopen(forward.admin_url + "/health", timeout=10) as health:
            assert json.load(health)["kafka"] == "unreachable"
        with urllib.request.urlopen(forward.admin_url + "/metrics", timeout=10) as metrics:
            text = metrics.read().decode()
        assert 'capture_proxy_uncaptured_requests_total{method="PUT"} 5.0' in text
        assert "capture_proxy_kafka_healthy 0.0" in text
    finally:
        kafka.stop(node)


def test_tls_termination_verified_destination_and_client_certificates(
        sandbox: SandboxState, start_proxy: StartProxy, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    source = sandbox.engines["source"].url
    # The TLS proxy in front of the source requires client certificates from the CA.
    front = start_proxy(source, None, "unused", tls=TlsOptions(str(pki.server_cert), str(pki.server_key),
                                                               client_ca_file=str(pki.ca)))
    https = f"https://127.0.0.1:{front.server.port}"
    cert, key = str(pki.client_cert), str(pki.client_key)
    verified = start_proxy(https, None, "unused", tls=TlsOptions(
        destination_ca_file=str(pki.ca), destination_client_cert=cert, destination_client_key=key))
    unverified = start_proxy(https, None, "unused", tls=TlsOptions(
        destination_client_cert=cert, destination_client_key=key))
    insecure = start_proxy(https, None, "unused", tls=TlsOptions(
        insecure_destination=True, destination_client_cert=cert, destination_client_key=key))
    no_client_cert = start_proxy(https, None, "unused", tls=TlsOptions(destination_ca_file=str(pki.ca)))

    def status(proxy: RunningProxy) -> int:
        try:
            with urllib.request.urlopen(proxy.url + "/", timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert status(verified) == 200
    assert status(unverified) == 502  # the test CA is not among the system's
    assert status(insecure) == 200
    assert status(no_client_cert) == 502
    # A client with a certificate talks TLS to the proxy directly and gets the source's answer.
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    with urllib.request.urlopen(https + "/", context=context, timeout=10) as response:
        assert json.load(response)["version"]["number"] == sandbox.engines["source"].version
    bare = ssl.create_default_context(cafile=str(pki.ca))
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
        urllib.request.urlopen(https + "/", context=bare, timeout=10).read()
