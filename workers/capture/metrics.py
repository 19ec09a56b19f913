"""The proxy's Prometheus metrics, in a registry of their own (several proxies may share a process in tests)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ProxyMetrics:
    """Counters, gauges and histograms the proxy updates; ``render`` gives the text exposition format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # Updated once or more per request: plain integers on the event loop's thread, read at scrape time. A
        # prometheus_client metric takes a lock on every update, a few percent of a small request's cost.
        self.requests: dict[str, int] = {}
        self.responses: dict[int, int] = {}
        self.request_bytes = 0
        self.response_bytes = 0
        self.in_flight = 0
        # Observed once per capture record, likewise.
        self.capture_latency = LatencyHistogram("capture_proxy_capture_latency_seconds",
                                                "From producing a capture record to its acknowledgement by Kafka.")
        self.ack_wait = LatencyHistogram("capture_proxy_ack_wait_seconds",
                                         "How long a mutating request's last bytes were held back from the "
                                         "source for its capture acknowledgement.")
        r.register(_HotCounters(self))
        self.connections = Gauge("capture_proxy_connections", "Open client connections.", registry=r)
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
        self.timeouts = Counter("capture_proxy_timeouts",
                                "Client connections closed for a timeout: idle (no request), header (a request head "
                                "not complete in time) or body (a request body stalled).", ["reason"], registry=r)
        # The cutover switch (workers.capture.switch).
        self.held = Gauge("capture_proxy_held_requests", "Mutating requests held while writes are paused.",
                          registry=r)
        self.paused = Gauge("capture_proxy_writes_paused", "1 while writes are paused (held) for a switch.",
                            registry=r)
        self.side = Gauge("capture_proxy_side_target", "1 while requests go to the switch target, 0 on the source.",
                          registry=r)
        self.hold_seconds = Counter("capture_proxy_hold_seconds", "Seconds writes were paused, over every hold.",
                                    registry=r)
        self.switches = Counter("capture_proxy_switches", "Switches of the destination, by the side switched to.",
                                ["to"], registry=r)
        self.hold_aborts = Counter("capture_proxy_hold_aborts",
                                   "Holds the proxy released by itself (max hold reached, or in-flight writes "
                                   "that did not finish in time).", registry=r)
        self.kafka_healthy = Gauge("capture_proxy_kafka_healthy", "1 while Kafka acknowledges capture records.",
                                   registry=r)

    def count_request(self, method: str) -> None:
        """One request received (and now in flight)."""
        self.requests[method] = self.requests.get(method, 0) + 1
        self.in_flight += 1

    def count_response(self, status: int, size: int) -> None:
        """One response of ``size`` bytes sent, counted by status class."""
        status_class = status // 100
        self.responses[status_class] = self.responses.get(status_class, 0) + 1
        self.response_bytes += size

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class LatencyHistogram:
    """A histogram of seconds in plain numbers (one event-loop thread updates it), exposed by ``_HotCounters``."""

    __slots__ = ("bounds", "counts", "doc", "name", "total")

    def __init__(self, name: str, doc: str, bounds: tuple[float, ...] = _LATENCY_BUCKETS) -> None:
        self.name = name
        self.doc = doc
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        """Count one observation."""
        # bisect_left: the first bound >= seconds, as Prometheus buckets are "less than or equal".
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def family(self) -> HistogramMetricFamily:
        """The histogram in exposition form (cumulative buckets)."""
        buckets = []
        running = 0
        for bound, n in zip((*(repr(b) for b in self.bounds), "+Inf"), self.counts, strict=True):
            running += n
            buckets.append((bound, running))
        return HistogramMetricFamily(self.name, self.doc, buckets=buckets, sum_value=self.total)


class _HotCounters(Collector):
    """Exposes the per-request numbers of ``ProxyMetrics`` in the same form as prometheus_client metrics."""

    def __init__(self, metrics: ProxyMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        requests = CounterMetricFamily("capture_proxy_requests", "Requests received from clients.", labels=["method"])
        for method, n in sorted(m.requests.items()):
            requests.add_metric([method], n)
        yield requests
        responses = CounterMetricFamily("capture_proxy_responses", "Responses sent to clients, by status class.",
                                        labels=["status_class"])
        for status_class, n in sorted(m.responses.items()):
            responses.add_metric([f"{status_class}xx"], n)
        yield responses
        yield CounterMetricFamily("capture_proxy_request_bytes", "Request bytes received from clients.",
                                  value=m.request_bytes)
        yield CounterMetricFamily("capture_proxy_response_bytes", "Response bytes sent to clients.",
                                  value=m.response_bytes)
        yield GaugeMetricFamily("capture_proxy_in_flight_requests", "Requests received and not yet answered.",
                                value=m.in_flight)
        yield m.capture_latency.family()
        yield m.ack_wait.family()

    def describe(self) -> Iterator[Metric]:
        return iter(())
