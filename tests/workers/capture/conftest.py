"""Capture proxies run in-process (a thread with its own uvloop loop) against the sandbox's real source and Kafka."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.conftest import unique
from workers.capture.options import Destination, KafkaOptions, ProxyOptions
from workers.capture.reader import Event, Transaction, read_transactions
from workers.capture.server import ProxyServer


class RunningProxy:
    """A proxy serving on 127.0.0.1 from a background thread."""

    def __init__(self, options: ProxyOptions) -> None:
        self.options = options
        self.server = ProxyServer(options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("proxy did not start")
        if self._error:
            raise self._error

    def _run(self) -> None:
        import uvloop

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                await self.server.start()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            await self._stop.wait()
            await self.server.stop()

        uvloop.run(main())

    @property
    def url(self) -> str:
        """http(s)://127.0.0.1:PORT of the listener."""
        scheme = "https" if self.options.tls.cert_file else "http"
        return f"{scheme}://127.0.0.1:{self.server.port}"

    @property
    def admin_url(self) -> str:
        """The metrics and health endpoint."""
        return f"http://127.0.0.1:{self.server.metrics_port}"

    def metric(self, name: str, **labels: str) -> float:
        """A sample's current value (0 when not yet recorded)."""
        value = self.server.metrics.registry.get_sample_value(name, labels)
        return value or 0.0

    def stop(self, timeout_s: float = 30.0) -> None:
        """Graceful shutdown, as on SIGTERM; returns when it is done."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout_s)


def proxy_options(destination: str, brokers: str | None, topic: str, **overrides: Any) -> ProxyOptions:
    """Options for a proxy on a free loopback port; ``kafka_*`` overrides go to the Kafka options."""
    kafka_overrides = {k[len("kafka_"):]: overrides.pop(k) for k in list(overrides) if k.startswith("kafka_")}
    kafka = KafkaOptions(brokers, topic, **kafka_overrides) if brokers else None
    base = ProxyOptions(listen_host="127.0.0.1", listen_port=0, destination=Destination.parse(destination),
                        kafka=kafka, node_id="test-node", metrics_host="127.0.0.1", metrics_port=0,
                        shutdown_timeout_s=10.0)
    return dataclasses.replace(base, **overrides)


@pytest.fixture
def start_proxy() -> Iterator[Callable[..., RunningProxy]]:
    """Start proxies (``destination, brokers, topic, **overrides``); all are stopped after the test."""
    running: list[RunningProxy] = []

    def start(destination: str, brokers: str | None, topic: str, **overrides: Any) -> RunningProxy:
        proxy = RunningProxy(proxy_options(destination, brokers, topic, **overrides))
        running.append(proxy)
        return proxy

    yield start
    for proxy in running:
        proxy.stop()


def create_topic(brokers: str, partitions: int = 3) -> str:
    """A new topic; several partitions, so that per-connection order relies on the record key."""
    name = unique("capture")
    admin = AdminClient({"bootstrap.servers": brokers})
    for future in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
        future.result(30)
    return name


def transactions(brokers: str, topic: str) -> list[Transaction]:
    """Every complete transaction on the topic."""
    return [e for e in read_transactions(brokers, topic) if isinstance(e, Transaction)]


def events(brokers: str, topic: str) -> list[Event]:
    """Every event on the topic."""
    return list(read_transactions(brokers, topic))
