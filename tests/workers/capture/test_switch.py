"""The proxy's cutover switch: hold writes, switch the destination (and capture topic) to the target, release.

Real proxy, the sandbox's real source (Elasticsearch), target (OpenSearch) and Kafka.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.capture.conftest import RunningProxy, create_topic, events, proxy_options
from workers.capture.cli import build_options
from workers.capture.metrics import ProxyMetrics
from workers.capture.options import Destination, Suppression, TlsOptions
from workers.capture.reader import ConnectionClosed, ConnectionOpened, Event, Transaction
from workers.capture.switch import Route, SwitchError, SwitchState
from workers.common.errors import ConfigurationError

StartProxy = Callable[..., RunningProxy]
TOKEN_ENV = "CAPTURE_TEST_ADMIN_TOKEN"
TOKEN = "s3cret-admin-token"


def call(url: str, method: str = "GET", body: object | None = None, token: str | None = TOKEN,
         timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
    """One HTTP request; its status and JSON body (errors included)."""
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    request = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"raw": raw.decode("latin-1")}


class Client:
    """One keep-alive client connection to the proxy; ``send`` runs a request in a thread (it may be held)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.result: tuple[int, dict[str, Any]] | None = None
        self._thread: threading.Thread | None = None

    def request(self, method: str, path: str, body: object | None = None) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.conn.request(method, path, data, headers)
        response = self.conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")

    def send(self, method: str, path: str, body: object | None = None) -> None:
        def run() -> None:
            self.result = self.request(method, path, body)

        self.result = None
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def wait(self, timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
        assert self._thread is not None
        self._thread.join(timeout)
        assert self.result is not None, "the request got no answer"
        return self.result

    @property
    def waiting(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        self.conn.close()


def doc_status(cluster: str, index: str, doc: str) -> int:
    return call(f"{cluster}/{index}/_doc/{doc}", token=None)[0]


def start_switching_proxy(sandbox: SandboxState, start_proxy: StartProxy, monkeypatch: pytest.MonkeyPatch,
                          topic: str, **overrides: Any) -> RunningProxy:
    assert sandbox.kafka is not None
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return start_proxy(sandbox.engines["source"].url, sandbox.kafka.bootstrap, topic, admin_host="127.0.0.1",
                       admin_port=0, admin_token_env=TOKEN_ENV,
                       switch_target=Destination.parse(sandbox.engines["target"].url), **overrides)


def admin(proxy: RunningProxy) -> str:
    return f"http://127.0.0.1:{proxy.server.admin_port}"


def test_admin_api_needs_its_token_and_its_own_listener(sandbox: SandboxState, start_proxy: StartProxy,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert sandbox.kafka is not None
    topic = create_topic(sandbox.kafka.bootstrap, partitions=1)
    plain = start_proxy(sandbox.engines["source"].url, sandbox.kafka.bootstrap, topic)
    assert plain.server.admin_port == 0  # off by default
    proxy = start_switching_proxy(sandbox, start_proxy, monkeypatch, topic)
    base = admin(proxy)
    for token in (None, "wrong", TOKEN + "x", ""):
        for method, path in (("GET", "/status"), ("POST", "/pause-writes"), ("POST", "/resume")):
            status, body = call(base + path, method, token=token)
            assert status == 401 and "unauthorized" in body["error"], (method, path, token)
    status, body = call(base + "/status")
    assert status == 200
    assert body["side"] == "source" and body["paused"] is False and body["held"] == 0
    assert body["topics"] == {"source": topic, "target": f"{topic}.reverse"}
    assert body["destinations"]["target"] == Destination.parse(sandbox.engines["target"].url).url
    assert body["last_abort"] is None and body["switches"] == 0 and body["max_hold_s"] == 30.0
    assert call(base + "/switch", "POST", {"to": "target"})[0] == 409  # not paused
    assert call(base + "/nothing")[0] == 404
    # The traffic listener forwards these paths to the source like any other request.
    for method, path in (("GET", "/status"), ("POST", "/pause-writes"), ("POST", "/switch"), ("POST", "/resume")):
        status, body = call(proxy.url + path, method, {"to": "target"} if path == "/switch" else None)
        assert status >= 400 and "in_flight_writes" not in body and "error" in body, (path, status, body)
    status, body = call(base + "/status")
    assert body["paused"] is False and body["side"] == "source"
    assert call(proxy.admin_url + "/health", token=None)[1]["side"] == "source"


def test_admin_options_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(ConfigurationError, match="--admin-token-env"):
        proxy_options("http://127.0.0.1:9200", None, "t", admin_port=0)
    with pytest.raises(ConfigurationError, match=f"--admin-token-env.*{TOKEN_ENV}"):
        proxy_options("http://127.0.0.1:9200", None, "t", admin_port=0, admin_token_env=TOKEN_ENV)
    monkeypatch.setenv(TOKEN_ENV, "")
    with pytest.raises(ConfigurationError, match=TOKEN_ENV):
        proxy_options("http://127.0.0.1:9200", None, "t", admin_port=0, admin_token_env=TOKEN_ENV)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    common: dict[str, Any] = dict(
        listen="127.0.0.1:9201", destination="http://127.0.0.1:9200", kafka_brokers="127.0.0.1:9092",
        kafka_topic="cap", no_capture=False, node_id="n", on_capture_failure="forward", kafka={},
        tls=TlsOptions(), suppression=Suppression(), added_headers=(), max_record_bytes=1 << 20,
        metrics_listen=None, shutdown_timeout_s=1.0, use_uvloop=False)
    options = build_options(**common, admin_listen=":9300", admin_token_env=TOKEN_ENV,
                            switch_target="https://target:9200")
    assert (options.admin_host, options.admin_port, options.reverse_topic_name) == ("127.0.0.1", 9300, "cap.reverse")
    assert options.switch_target is not None and options.switch_target.url == "https://target:9200"
    assert TOKEN not in repr(options)
    with pytest.raises(ConfigurationError, match="--switch-target"):
        build_options(**common, switch_target="ftp://target")
    with pytest.raises(ConfigurationError, match="--admin-listen"):
        build_options(**common, admin_listen="127.0.0.1:9201", admin_token_env=TOKEN_ENV)
    with pytest.raises(ConfigurationError, match="--reverse-topic"):
        build_options(**common, reverse_topic="cap")


def _create(brokers: str, name: str) -> None:
    client = AdminClient({"bootstrap.servers": brokers})
    for future in client.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)]).values():
        future.result(30)


def _writes(found: list[Event], index: str) -> list[str]:
    return [f"{t.method} {t.target.split('?')[0]}" for t in found
            if isinstance(t, Transaction) and t.method == "PUT" and t.target.startswith(f"/{index}/")]


def test_pause_switch_resume_moves_held_writes_to_the_target(sandbox: SandboxState, start_proxy: StartProxy,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert sandbox.kafka is not None
    brokers = sandbox.kafka.bootstrap
    source, target = sandbox.engines["source"].url, sandbox.engines["target"].url
    topic = create_topic(brokers)
    _create(brokers, f"{topic}.reverse")
    proxy = start_switching_proxy(sandbox, start_proxy, monkeypatch, topic)
    base = admin(proxy)
    index = unique("switch")
    client = Client(proxy.server.port)
    assert client.request("PUT", f"/{index}/_doc/0?refresh=true", {"n": 0})[0] == 201  # on the source
    # Pause: answered at once (nothing in flight); a write is then held, reads pass.
    status, body = call(base + "/pause-writes", "POST")
    assert status == 200 and body["paused"] is True and body["hold_started_at"] is not None
    assert call(base + "/pause-writes", "POST")[0] == 200  # idempotent
    client.send("PUT", f"/{index}/_doc/1?refresh=true", {"n": 1})
    time.sleep(1.0)
    assert client.waiting
    assert doc_status(source, index, "1") == 404
    assert call(base + "/status")[1]["held"] == 1
    reader = Client(proxy.server.port)
    assert reader.request("GET", f"/{index}/_doc/0")[0] == 200
    assert reader.request("POST", f"/{index}/_search", {"query": {"match_all": {}}})[0] == 200
    assert client.waiting
    # Switch to the target, resume: the held write lands on the target only.
    status, body = call(base + "/switch", "POST", {"to": "target"})
    assert status == 200 and body["side"] == "target" and body["topic"] == f"{topic}.reverse"
    assert call(base + "/switch", "POST", {"to": "target"})[1]["switches"] == 1  # idempotent
    status, body = call(base + "/resume", "POST")
    assert status == 200 and body["paused"] is False
    assert client.wait()[0] == 201
    assert doc_status(target, index, "1") == 200 and doc_status(source, index, "1") == 404
    # Reads and writes on either connection now go to the target.
    assert client.request("PUT", f"/{index}/_doc/2?refresh=true", {"n": 2})[0] == 201
    assert reader.request("GET", f"/{index}/_doc/2")[0] == 200
    assert doc_status(target, index, "2") == 200 and doc_status(source, index, "2") == 404
    # And back: pause, switch to the source, resume.
    assert call(base + "/pause-writes", "POST")[0] == 200
    assert call(base + "/switch", "POST", {"to": "source"})[1]["side"] == "source"
    assert call(base + "/resume", "POST")[0] == 200
    assert client.request("PUT", f"/{index}/_doc/3?refresh=true", {"n": 3})[0] == 201
    assert doc_status(source, index, "3") == 200 and doc_status(target, index, "3") == 404
    # A write is in flight until its response's capture record is acknowledged too (just after the answer).
    deadline = time.monotonic() + 10
    while (body := call(base + "/status")[1])["in_flight_writes"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert body["switches"] == 2 and body["last_abort"] is None and body["in_flight_writes"] == 0
    assert proxy.metric("capture_proxy_switches_total", to="target") == 1
    client.close()
    reader.close()
    proxy.stop()
    # Each transaction in the topic of the side it was on; each topic's connection records consistent.
    forward, reverse = events(brokers, topic), events(brokers, f"{topic}.reverse")
    assert _writes(forward, index) == [f"PUT /{index}/_doc/0", f"PUT /{index}/_doc/3"]
    assert _writes(reverse, index) == [f"PUT /{index}/_doc/1", f"PUT /{index}/_doc/2"]
    closes = [e for e in forward + reverse if isinstance(e, ConnectionClosed)]
    assert {e.reason for e in closes} >= {"switched to target", "switched to source"}
    assert all(e.missing == 0 for e in closes), closes
    assert any(isinstance(e, ConnectionOpened) and e.first_seq > 1 for e in reverse)


def test_a_hold_without_resume_is_released_on_its_own(sandbox: SandboxState, start_proxy: StartProxy,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert sandbox.kafka is not None
    source = sandbox.engines["source"].url
    topic = create_topic(sandbox.kafka.bootstrap, partitions=1)
    proxy = start_switching_proxy(sandbox, start_proxy, monkeypatch, topic)
    base = admin(proxy)
    index = unique("hold")
    assert call(base + "/pause-writes", "POST", {"max_hold_s": 0})[0] == 400
    status, body = call(base + "/pause-writes", "POST", {"max_hold_s": 1})
    assert status == 200 and body["max_hold_s"] == 1
    client = Client(proxy.server.port)
    started = time.monotonic()
    client.send("PUT", f"/{index}/_doc/1?refresh=true", {"n": 1})
    status, _ = client.wait(15)
    assert status == 201 and 0.5 < time.monotonic() - started < 10
    assert doc_status(source, index, "1") == 200
    status, body = call(base + "/status")
    assert body["paused"] is False and body["side"] == "source" and body["max_hold_s"] == 30.0
    assert body["last_abort"] is not None and "max_hold_s" in body["last_abort"]["reason"]
    assert proxy.metric("capture_proxy_hold_aborts_total") == 1
    assert call(base + "/switch", "POST", {"to": "target"})[0] == 409
    client.close()


def test_a_proxy_restarted_after_a_cutover_starts_on_the_target(sandbox: SandboxState, start_proxy: StartProxy,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert sandbox.kafka is not None
    brokers, source, target = sandbox.kafka.bootstrap, sandbox.engines["source"].url, sandbox.engines["target"].url
    topic = create_topic(brokers, partitions=1)
    _create(brokers, f"{topic}.reverse")
    proxy = start_switching_proxy(sandbox, start_proxy, monkeypatch, topic, start_side="target")
    index = unique("restarted")
    client = Client(proxy.server.port)
    assert client.request("PUT", f"/{index}/_doc/1?refresh=true", {"n": 1})[0] == 201
    client.close()
    assert doc_status(target, index, "1") == 200 and doc_status(source, index, "1") == 404
    status, body = call(admin(proxy) + "/status")
    assert status == 200 and body["side"] == "target" and body["topic"] == f"{topic}.reverse"
    assert proxy.metric("capture_proxy_side_target") == 1
    proxy.stop()
    assert _writes(events(brokers, f"{topic}.reverse"), index) == [f"PUT /{index}/_doc/1"]
    assert _writes(events(brokers, topic), index) == []
    with pytest.raises(ConfigurationError, match="--start-side target needs --switch-target"):
        proxy_options(source, brokers, topic, start_side="target")


def test_pause_waits_for_writes_in_flight_and_gives_up_at_the_limit() -> None:
    async def scenario() -> None:
        route = Route("source", Destination.parse("http://127.0.0.1:1"), None, "t")
        switch = SwitchState({"source": route}, 30.0, ProxyMetrics())
        switch.in_flight = 1
        pause = asyncio.ensure_future(switch.pause())
        await asyncio.sleep(0.05)
        assert not pause.done() and switch.paused
        switch.finished()
        await asyncio.wait_for(pause, 1)
        with pytest.raises(SwitchError, match="switch-target"):
            switch.switch("target")
        switch.resume()
        switch.in_flight = 1
        began = time.monotonic()
        with pytest.raises(SwitchError) as error:
            await switch.pause(0.2)
        assert error.value.status == 504 and 0.15 < time.monotonic() - began < 2
        assert not switch.paused and switch.last_abort is not None and "in flight" in str(error.value)

    asyncio.run(scenario())
