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
# How often the event loop serves the batching producer's delivery reports while it has records out.
_BACKGROUND_POLL_S = 0.005


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


def security_config(options: KafkaOptions) -> dict[str, Any]:
    """librdkafka's security settings (protocol, SASL, TLS files) of ``options``: a consumer of the capture topic
    (``workers.capture.reader.read_transactions(..., config=...)``) passes the same. The SASL password is read
    from the variable ``options.sasl_password_env`` names; it goes nowhere else (never logged)."""
    config: dict[str, Any] = {"security.protocol": options.security_protocol}
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
    return config


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
        # Capture records are small and an awaited one often follows another still in flight: Nagle would hold it.
        "socket.nagle.disable": True,
    }
    config.update(security_config(options))
    config.update(dict(options.properties))
    return config


def _startup_failure(options: KafkaOptions, error: KafkaError) -> str | None:
    """What to tell the operator when ``error`` (seen while checking the brokers at start) is one that no retry
    cures: refused credentials, an untrusted certificate, a denied topic. None for anything else."""
    text = error.str()
    where = f"Kafka {options.brokers} ({options.security_protocol})"
    if error.code() == KafkaError._AUTHENTICATION:
        return (f"{where}: authentication failed: {text}. Check --kafka-sasl-mechanism, --kafka-sasl-username and "
                f"the password in ${options.sasl_password_env or '(no --kafka-sasl-password-env)'}")
    if error.code() == KafkaError._SSL or "certificate verify failed" in text:
        return (f"{where}: TLS failed: {text}. The broker's certificate must be signed by the CA given with "
                f"--kafka-ssl-ca ({options.ssl_ca_file or 'none given: the system CAs'}) and name the host")
    if error.code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED):
        return f"{where}: not authorized: {text} (topic {options.topic}, user {options.sasl_username or '-'})"
    return None


class _Lane:
    """One producer, what serves its delivery reports, and the records of the current loop turn."""

    def __init__(self, name: str, producer: Producer, topic: str) -> None:
        self.name = name
        self.producer = producer
        # The topic of the records in ``pending`` (a batch goes to one topic).
        self.topic = topic
        self.reports: list[_Delivery] = []
        self.pending: list[dict[str, Any]] = []
        self.pending_meta: list[tuple[Ticket | None, float, int]] = []
        self.flush_scheduled = False
        self.poll_scheduled = False
        self.thread: threading.Thread | None = None


class KafkaSink:
    """Two producers to one topic: an urgent one (linger 0) for records a response waits for, and a batching one
    for everything else, so that asynchronous records never cost a wake-up each. Per connection, transactions
    still complete in order: every transaction's last record goes through the batching producer (see
    docs/capture-format.md). A thread serves the urgent producer's delivery reports, so that a held response is
    released as soon as Kafka answers, and hands them to the event loop in batches; nobody waits for the batching
    producer's reports, so the event loop polls for them on a timer, without a thread taking the GIL from it for
    every report."""

    def __init__(self, options: KafkaOptions, max_record_bytes: int, metrics: ProxyMetrics,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.topic = options.topic
        self._options = options
        self._metrics = metrics
        self._loop = loop
        config = producer_config(options, max_record_bytes)
        config["error_cb"] = self._on_error
        config["logger"] = log
        # Errors seen by the start-up check (``check_brokers``), None outside it.
        self._startup_errors: list[KafkaError] | None = None
        try:
            self._urgent = _Lane("urgent", Producer({**config, "client.id": f"{options.client_id}-urgent"}),
                                 options.topic)
            self._background = _Lane("background", Producer(
                {**config, "linger.ms": max(options.linger_ms, options.background_linger_ms)}), options.topic)
        except KafkaException as exc:  # a setting librdkafka refuses, an unreadable CA or key file
            raise ConfigurationError(f"Kafka {options.brokers}: the client settings were refused: "
                                     f"{exc.args[0].str() if exc.args else exc}") from None
        self._stop = threading.Event()
        self.healthy = True
        self.produced = 0
        # Records handed to librdkafka and not yet answered for, counted here so that its queue never overflows
        # (a refused record in a batch would be out of order with the ones after it).
        self._queued_bytes = 0
        self._queued = 0
        self._budget = options.buffer_kbytes * 1024 * 9 // 10
        metrics.kafka_healthy.set(1)

    def start(self, check_timeout_s: float | None = None) -> None:
        """Check the brokers (``check_brokers``), then start serving delivery reports."""
        self.check_brokers(check_timeout_s)
        lane = self._urgent
        lane.thread = threading.Thread(target=self._serve, args=(lane,), name=f"capture-kafka-{lane.name}",
                                       daemon=True)
        lane.thread.start()

    def check_brokers(self, timeout_s: float | None = None) -> None:
        """Ask the brokers for the topic's metadata before any client is served. Refused credentials, an untrusted
        certificate or a denied topic raise ConfigurationError naming the brokers and the cause (the proxy exits
        non-zero); brokers that do not answer within ``timeout_s`` (default: the delivery timeout, at most 10 s)
        are only logged, and the proxy starts with Kafka marked unreachable, as when Kafka fails later on."""
        options = self._options
        if timeout_s is None:
            timeout_s = min(options.delivery_timeout_ms / 1000, 10.0)
        producer = self._urgent.producer
        deadline = time.monotonic() + timeout_s
        self._startup_errors = []
        last = "no answer"
        try:
            while True:
                wait = max(0.05, min(0.5, deadline - time.monotonic()))
                try:
                    metadata = producer.list_topics(self.topic, timeout=wait)
                except KafkaException as exc:
                    if exc.args and isinstance(exc.args[0], KafkaError):
                        last = exc.args[0].str()
                else:
                    topic = metadata.topics.get(self.topic)
                    if topic is not None and topic.error is not None:
                        failure = _startup_failure(options, topic.error)
                        if failure:
                            raise ConfigurationError(failure)
                    log.info("kafka %s answered (%s, %d brokers)", options.brokers, options.security_protocol,
                             len(metadata.brokers))
                    return
                producer.poll(0)  # serves error_cb: the reason the request got no answer
                errors, self._startup_errors = self._startup_errors, []
                for error in errors:
                    failure = _startup_failure(options, error)
                    if failure:
                        raise ConfigurationError(failure)
                    if error.code() != KafkaError._ALL_BROKERS_DOWN:
                        last = error.str()
                if time.monotonic() >= deadline:
                    break
        finally:
            self._startup_errors = None
        log.warning("kafka %s (%s) did not answer within %.1fs (%s): starting with capture failing until it does",
                    options.brokers, options.security_protocol, timeout_s, last)
        self._set_healthy(False)

    def _set_healthy(self, healthy: bool) -> None:
        if healthy != self.healthy:
            log.warning("kafka %s", "reachable again: capture resumes" if healthy else "unreachable: capture failing")
        self.healthy = healthy
        self._metrics.kafka_healthy.set(1 if healthy else 0)

    def _on_error(self, error: KafkaError) -> None:
        # Runs in a poll thread. librdkafka retries on its own; all brokers down is the signal worth acting on.
        if self._startup_errors is not None:  # check_brokers decides, and sets the health itself
            self._startup_errors.append(error)
            return
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._loop.call_soon_threadsafe(self._set_healthy, False)
        log.debug("kafka: %s", error)

    @staticmethod
    def _delivered(lane: _Lane, ticket: Ticket | None, started: float, size: int, err: KafkaError | None,
                   _msg: Any) -> None:
        lane.reports.append((ticket, started, size, err))

    def _serve(self, lane: _Lane) -> None:
        last_probe = 0.0
        while not self._stop.is_set():
            lane.producer.poll(0.05)
            self._hand_over(lane)
            # Deliveries flip health back on their own; a probe does it when nothing is being produced.
            if lane is self._urgent and not self.healthy and time.monotonic() - last_probe > 2.0:
                last_probe = time.monotonic()
                try:
                    lane.producer.list_topics(self.topic, timeout=1.0)
                    self._loop.call_soon_threadsafe(self._set_healthy, True)
                except KafkaException:
                    pass

    def _poll_background(self) -> None:
        lane = self._background
        lane.poll_scheduled = False
        lane.producer.poll(0)
        if lane.reports:
            batch, lane.reports = lane.reports, []
            self._settle(batch)
        if len(lane.producer) and not self._stop.is_set():
            self._schedule_background_poll()

    def _schedule_background_poll(self) -> None:
        lane = self._background
        if not lane.poll_scheduled:
            lane.poll_scheduled = True
            self._loop.call_later(_BACKGROUND_POLL_S, self._poll_background)

    def _hand_over(self, lane: _Lane) -> None:
        if lane.reports:
            batch, lane.reports = lane.reports, []
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

    def has_room(self, size: int) -> bool:
        """True when a record of ``size`` bytes can be queued now (``enqueue``) without exceeding the buffer."""
        return self._queued_bytes + size <= self._budget and self._queued < _MAX_QUEUED

    async def produce(self, key: bytes, value: bytes, ticket: Ticket | None, urgent: bool = False,
                      topic: str | None = None) -> None:
        """Queue one record (``urgent``: a response waits for it) to ``topic`` (None: the proxy's topic); waits
        only while the records waiting for Kafka fill the buffer (bounded memory)."""
        size = len(value)
        if not self.has_room(size):
            deadline = time.monotonic() + self._options.delivery_timeout_ms / 1000
            while self._queued and not self.has_room(size) and time.monotonic() < deadline:
                await asyncio.sleep(0.002)
        self.enqueue(key, value, ticket, urgent, topic)

    def enqueue(self, key: bytes, value: bytes, ticket: Ticket | None, urgent: bool = False,
                topic: str | None = None) -> None:
        """Queue one record at once: ``produce`` without the wait for room (the caller checked ``has_room``)."""
        size = len(value)
        if ticket is not None:
            ticket.pending += 1
        self._queued_bytes += size
        self._queued += 1
        lane = self._urgent if urgent else self._background
        if topic is None:
            topic = self.topic
        if topic != lane.topic:
            # Another topic (the cutover switch's): what is pending for the former one goes first, in order.
            if lane.pending:
                self._flush(lane)
            lane.topic = topic
        started = time.perf_counter()
        lane.pending.append({"key": key, "value": value,
                             "callback": functools.partial(self._delivered, lane, ticket, started, size)})
        lane.pending_meta.append((ticket, started, size))
        if not lane.flush_scheduled:
            # Records produced in one turn of the loop go to librdkafka in one call (one wake-up of its thread).
            lane.flush_scheduled = True
            self._loop.call_soon(self._flush, lane)

    def _flush(self, lane: _Lane) -> None:
        lane.flush_scheduled = False
        batch, lane.pending = lane.pending, []
        meta, lane.pending_meta = lane.pending_meta, []
        if not batch:
            return
        queued = 0
        try:
            queued = lane.producer.produce_batch(lane.topic, batch)
        except (BufferError, KafkaException) as exc:
            log.warning("capture records refused by the producer: %s", exc)
            for message in batch:
                message.setdefault("_error", exc)
        if queued < len(batch):
            # produce_batch marks each record it could not queue with "_error"; those get no delivery report.
            failed: list[_Delivery] = [(*m, KafkaError(KafkaError._QUEUE_FULL))
                                       for message, m in zip(batch, meta, strict=True) if "_error" in message]
            if failed:
                self._set_healthy(False)
                self._settle(failed)
            queued = len(batch) - len(failed)
        self.produced += queued
        if lane is self._background:
            self._schedule_background_poll()

    async def topic_error(self, topic: str, timeout_s: float = 5.0) -> str | None:
        """Why records cannot go to ``topic`` (it does not exist, is not authorized, no answer), None when they can."""
        try:
            metadata = await asyncio.to_thread(self._urgent.producer.list_topics, topic, timeout=timeout_s)
        except KafkaException as exc:
            return exc.args[0].str() if exc.args and isinstance(exc.args[0], KafkaError) else str(exc)
        info = metadata.topics.get(topic)
        if info is None:
            return "not in the brokers' metadata"
        if info.error is not None:
            return str(info.error.str())
        return None

    async def close(self, timeout_s: float) -> int:
        """Stop serving and flush what is queued; returns the number of records left undelivered."""
        lanes = (self._urgent, self._background)
        for lane in lanes:
            if lane.pending:
                self._flush(lane)
        self._stop.set()
        for lane in lanes:
            if lane.thread is not None and lane.thread.is_alive():
                await asyncio.to_thread(lane.thread.join)
        left = 0
        for lane in lanes:
            left += await asyncio.to_thread(lane.producer.flush, timeout_s)
            batch, lane.reports = lane.reports, []
            self._settle(batch)
        return left
