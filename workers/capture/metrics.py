"""The proxy's Prometheus metrics, in a registry of their own (several proxies may share a process in tests)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ProxyMetrics:
    """Counters, gauges and histograms the proxy updates; ``render`` gives the text exposition format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("capture_proxy_requests", "Requests received from clients.", ["method"], registry=r)
        self.responses = Counter("capture_proxy_responses", "Responses sent to clients, by status class.",
                                 ["status_class"], registry=r)
        self.request_bytes = Counter("capture_proxy_request_bytes", "Request bytes received from clients.",
                                     registry=r)
        self.response_bytes = Counter("capture_proxy_response_bytes", "Response bytes sent to clients.", registry=r)
        self.in_flight = Gauge("capture_proxy_in_flight_requests", "Requests received and not yet answered.",
                               registry=r)
        self.connections = Gauge("capture_proxy_connections", "Open client connections.", registry=r)
        self.capture_latency = Histogram("capture_proxy_capture_latency_seconds",
                                         "From producing a capture record to its acknowledgement by Kafka.",
                                         buckets=_LATENCY_BUCKETS, registry=r)
        self.ack_wait = Histogram("capture_proxy_ack_wait_seconds",
                                  "How long a mutating request's response was held for its capture acknowledgement.",
                                  buckets=_LATENCY_BUCKETS, registry=r)
        self.capture_failures = Counter("capture_proxy_capture_failures", "Capture records Kafka did not accept.",
                                        ["reason"], registry=r)
        self.uncaptured = Counter("capture_proxy_uncaptured_requests",
                                  "Requests forwarded whose capture Kafka did not acknowledge.", ["method"], registry=r)
        self.rejected = Counter("capture_proxy_rejected_requests",
                                "Mutating requests answered 503 because their capture failed (--on-capture-failure "
                                "reject).", ["method"], registry=r)
        self.suppressed = Counter("capture_proxy_suppressed_requests", "Requests forwarded without capture by rule.",
                                  registry=r)
        self.upstream_errors = Counter("capture_proxy_upstream_errors",
                                       "Requests answered 502 because the destination failed.", registry=r)
        self.malformed = Counter("capture_proxy_malformed_requests", "Requests answered 400 as malformed HTTP.",
                                 registry=r)
        self.kafka_healthy = Gauge("capture_proxy_kafka_healthy", "1 while Kafka acknowledges capture records.",
                                   registry=r)

        # labels() takes a lock and builds a key on every call; the per-request counters look their child up here.
        self._by_method: dict[str, Any] = {}
        self._by_status: dict[int, Any] = {}

    def count_request(self, method: str) -> None:
        """One request received."""
        child = self._by_method.get(method)
        if child is None:
            child = self._by_method[method] = self.requests.labels(method)
        child.inc()

    def count_response(self, status: int) -> None:
        """One response sent, counted by status class."""
        status_class = status // 100
        child = self._by_status.get(status_class)
        if child is None:
            child = self._by_status[status_class] = self.responses.labels(f"{status_class}xx")
        child.inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
