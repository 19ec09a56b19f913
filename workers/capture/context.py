"""What the client connections of one proxy share: settings, the Kafka sink, the metrics; built once at start.

A connection gets this instead of the server: it sees only what it uses, and tests can build one without a
listener.
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass

from prometheus_client import Counter

from workers.capture.kafka_sink import KafkaSink
from workers.capture.metrics import ProxyMetrics
from workers.capture.options import Destination, ProxyOptions, Suppression
from workers.capture.recorder import ConnectionRecorder
from workers.capture.switch import SwitchState

# The connection's own logger name, whichever module logs: --log-format json reports it.
log = logging.getLogger("workers.capture.connection")


class UncapturedLog:
    """Requests forwarded although Kafka did not acknowledge their capture, counted across every connection."""

    __slots__ = ("_counter", "_logged", "count")

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self.count = 0
        self._logged = -1e9

    def report(self, method: str, conn_id: str) -> None:
        """Count one; log it unless a line was logged in the last 10 s."""
        self._counter.labels(method).inc()
        self.count += 1
        now = time.monotonic()
        # While Kafka is down every request fails: one line per 10 s with the running count, not one per request.
        if now - self._logged >= 10.0:
            self._logged = now
            log.warning("%s: request not captured (Kafka did not acknowledge it), forwarded anyway; %d so far",
                        conn_id, self.count)


@dataclass(frozen=True, slots=True)
class ConnectionContext:
    """Everything a client connection needs from the proxy around it."""

    metrics: ProxyMetrics
    uncaptured: UncapturedLog
    # Capture: None with --no-capture.
    sink: KafkaSink | None
    node_id: str
    max_record_bytes: int
    # How long the close record waits for the records of the connection's last write (they go by another producer).
    close_wait_s: float
    suppression: Suppression
    durable_read_posts: bool
    # --on-capture-failure reject.
    reject_uncaptured: bool
    # A write's last bytes reach the destination only once Kafka acknowledged its capture (off: the bench's
    # comparison with forwarding it at once, see ProxyOptions.forward_before_ack).
    release_after_ack: bool
    # Requests and responses.
    max_head_bytes: int
    added_headers: tuple[bytes, ...]
    # The destination.
    destination: Destination
    destination_ssl: ssl.SSLContext | None
    connect_timeout_s: float
    # Which side requests are admitted on (the source's route is the destination above), and the write hold.
    switch: SwitchState

    @classmethod
    def build(cls, options: ProxyOptions, metrics: ProxyMetrics, sink: KafkaSink | None,
              destination_ssl: ssl.SSLContext | None, switch: SwitchState | None = None) -> ConnectionContext:
        """The context of a proxy running with ``options``."""
        if switch is None:
            switch = SwitchState.build(options, metrics, destination_ssl)
        return cls(
            metrics=metrics, uncaptured=UncapturedLog(metrics.uncaptured), sink=sink, node_id=options.node_id,
            max_record_bytes=options.max_record_bytes,
            close_wait_s=options.kafka.delivery_timeout_ms / 1000 if options.kafka else 1,
            suppression=options.suppression, durable_read_posts=options.durable_read_posts,
            reject_uncaptured=options.on_capture_failure == "reject",
            release_after_ack=not options.forward_before_ack, max_head_bytes=options.max_head_bytes,
            added_headers=options.added_headers, destination=options.destination, destination_ssl=destination_ssl,
            connect_timeout_s=options.connect_timeout_s, switch=switch)

    def recorder(self, conn_id: str) -> ConnectionRecorder | None:
        """The recorder of a new connection (None when capture is off), its events in the current side's topic."""
        if self.sink is None:
            return None
        return ConnectionRecorder(self.sink, self.node_id, conn_id, self.max_record_bytes, self.switch.route.topic)
