"""Produces capture records to Kafka (confluent-kafka, acks=all) and reports acknowledgements to the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from workers.capture.metrics import ProxyMetrics
from workers.capture.options import KafkaOptions
from workers.capture.records import METADATA_ROOM
from workers.common.errors import ConfigurationError

log = logging.getLogger("workers.capture.kafka")

_Delivery = tuple["Ticket | None", float, int, "KafkaError | None"]
# librdkafka's own limit on queued messages (queue.buffering.max.messages) is 100000; stay under it.
_MAX_QUEUED = 90_000


class Ticket:
    """A group of records (one message's parts) whose outcome is known once Kafka answered for all of them."""

    __slots__ = ("_callbacks", "future", "ok", "pending", "sealed")

    def __init__(self, future: asyncio.Future[bool] | None = None) -> None:
        self.pending = 0
        self.sealed = False
        self.ok = True
        self.future = future
        self._callbacks: list[Callable[[bool], None]] = []

    @property
    def done(self) -> bool:
        """True once every record of the group has been answered for."""
        return self.sealed and self.pending == 0

    def on_done(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(ok)`` when the group is answered for (at once if it already is)."""
        if self.done:
            callback(self.ok)
        else:
            self._callbacks.append(callback)

    def seal(self) -> None:
        """No more records will join the group."""
        self.sealed = True
        self._settle()

    def answered(self, ok: bool) -> None:
        """One record of the group was acknowledged (ok) or given up on."""
        self.pending -= 1
        self.ok = self.ok and ok
        self._settle()

    def _settle(self) -> None:
        if not self.done:
            return
        if self.future is not None and not self.future.done():
            self.future.set_result(self.ok)
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self.ok)


def producer_config(options: KafkaOptions, max_record_bytes: int) -> dict[str, Any]:
    """librdkafka settings for durable, ordered capture (idempotence keeps per-partition order across retries)."""
    config: dict[str, Any] = {
        "bootstrap.servers": options.brokers,
        "client.id": options.client_id,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": options.linger_ms,
        "message.max.bytes": max_record_bytes + METADATA_ROOM,
        "delivery.timeout.ms": options.delivery_timeout_ms,
        "request.timeout.ms": min(5000, options.delivery_timeout_ms),
        "queue.buffering.max.kbytes": options.buffer_kbytes,
        "security.protocol": options.security_protocol,
        # Capture records are small and an awaited one often follows another still in flight: Nagle would hold it.
        "socket.nagle.disable": True,
    }
    if options.sasl_mechanism:
        config["sasl.mechanism"] = options.sasl_mechanism
    if options.sasl_username:
        config["sasl.username"] = options.sasl_username
    if options.sasl_password_env:
        password = os.environ.get(options.sasl_password_env)
        if password is None:
            raise ConfigurationError(f"--kafka-sasl-password-env: variable {options.sasl_password_env} is not set")
        config["sasl.password"] = password
    for key, path in (("ssl.ca.location", options.ssl_ca_file), ("ssl.certificate.location", options.ssl_cert_file),
                      ("ssl.key.location", options.ssl_key_file)):
        if path:
            config[key] = path
    config.update(dict(options.properties))
    return config


class KafkaSink:
    """One producer for the whole proxy; a thread serves its callbacks and hands them to the event loop in batches."""

    def __init__(self, options: KafkaOptions, max_record_bytes: int, metrics: ProxyMetrics,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.topic = options.topic
        self._options = options
        self._metrics = metrics
        self._loop = loop
        config = producer_config(options, max_record_bytes)
        config["error_cb"] = self._on_error
        config["logger"] = log
        self._producer = Producer(config)
        self._stop = threading.Event()
        self._batch: list[_Delivery] = []
        self._thread = threading.Thread(target=self._serve, name="capture-kafka-poll", daemon=True)
        self.healthy = True
        self.produced = 0
        # Records handed to librdkafka and not yet answered for, counted here so that its queue never overflows
        # (a refused record in a batch would be out of order with the ones after it).
        self._queued_bytes = 0
        self._queued = 0
        self._budget = options.buffer_kbytes * 1024 * 9 // 10
        self._pending: list[dict[str, Any]] = []
        self._pending_meta: list[tuple[Ticket | None, float, int]] = []
        self._flush_scheduled = False
        metrics.kafka_healthy.set(1)

    def start(self) -> None:
        """Start serving delivery reports."""
        self._thread.start()

    def _set_healthy(self, healthy: bool) -> None:
        if healthy != self.healthy:
            log.warning("kafka %s", "reachable again: capture resumes" if healthy else "unreachable: capture failing")
        self.healthy = healthy
        self._metrics.kafka_healthy.set(1 if healthy else 0)

    def _on_error(self, error: KafkaError) -> None:
        # Runs in the poll thread. librdkafka retries on its own; all brokers down is the signal worth acting on.
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._loop.call_soon_threadsafe(self._set_healthy, False)
        log.debug("kafka: %s", error)

    def _delivered(self, ticket: Ticket | None, started: float, size: int, err: KafkaError | None,
                   _msg: Any) -> None:
        self._batch.append((ticket, started, size, err))

    def _serve(self) -> None:
        last_probe = 0.0
        while not self._stop.is_set():
            self._producer.poll(0.05)
            self._hand_over()
            # Deliveries flip health back on their own; a probe does it when nothing is being produced.
            if not self.healthy and time.monotonic() - last_probe > 2.0:
                last_probe = time.monotonic()
                try:
                    self._producer.list_topics(self.topic, timeout=1.0)
                    self._loop.call_soon_threadsafe(self._set_healthy, True)
                except KafkaException:
                    pass

    def _hand_over(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            # RuntimeError: the loop is closed, nobody waits any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._settle, batch)

    def _settle(self, batch: list[_Delivery]) -> None:
        now = time.perf_counter()
        for ticket, started, size, err in batch:
            self._queued_bytes -= size
            self._queued -= 1
            if err is None:
                self._metrics.capture_latency.observe(now - started)
                if not self.healthy:
                    self._set_healthy(True)
            else:
                self._metrics.capture_failures.labels(err.name()).inc()
                if err.code() in (KafkaError._MSG_TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,
                                  KafkaError.REQUEST_TIMED_OUT):
                    self._set_healthy(False)
                log.debug("capture record not delivered: %s", err)
            if ticket is not None:
                ticket.answered(err is None)

    async def produce(self, key: bytes, value: bytes, ticket: Ticket | None) -> None:
        """Queue one record; waits only while the records waiting for Kafka fill the buffer (bounded memory)."""
        size = len(value)
        if self._queued_bytes + size > self._budget or self._queued >= _MAX_QUEUED:
            deadline = time.monotonic() + self._options.delivery_timeout_ms / 1000
            while (self._queued and (self._queued_bytes + size > self._budget or self._queued >= _MAX_QUEUED)
                   and time.monotonic() < deadline):
                await asyncio.sleep(0.002)
        if ticket is not None:
            ticket.pending += 1
        self._queued_bytes += size
        self._queued += 1
        started = time.perf_counter()
        self._pending.append({"key": key, "value": value,
                              "callback": functools.partial(self._delivered, ticket, started, size)})
        self._pending_meta.append((ticket, started, size))
        if not self._flush_scheduled:
            # Records produced in one turn of the loop go to librdkafka in one call (one wake-up of its thread).
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        meta, self._pending_meta = self._pending_meta, []
        try:
            self._producer.produce_batch(self.topic, batch)
        except (BufferError, KafkaException) as exc:
            log.warning("capture records refused by the producer: %s", exc)
            for message in batch:
                message.setdefault("_error", exc)
        # produce_batch marks each record it could not queue with "_error"; those get no delivery report.
        failed: list[_Delivery] = [(*m, KafkaError(KafkaError._QUEUE_FULL))
                                   for message, m in zip(batch, meta, strict=True) if "_error" in message]
        if failed:
            self._set_healthy(False)
            self._settle(failed)
        self.produced += len(batch) - len(failed)

    async def close(self, timeout_s: float) -> int:
        """Stop serving and flush what is queued; returns the number of records left undelivered."""
        if self._pending:
            self._flush()
        self._stop.set()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
        left = await asyncio.to_thread(self._producer.flush, timeout_s)
        batch, self._batch = self._batch, []
        self._settle(batch)
        return int(left)
