"""The context a connection gets instead of the server: what the options say, and no recorder without Kafka."""

from __future__ import annotations

from workers.capture.context import ConnectionContext
from workers.capture.metrics import ProxyMetrics
from workers.capture.options import Destination, KafkaOptions, ProxyOptions


def _options(**overrides: object) -> ProxyOptions:
    base: dict[str, object] = {"listen_host": "127.0.0.1", "listen_port": 0,
                               "destination": Destination.parse("http://127.0.0.1:9200"), "kafka": None,
                               "node_id": "n"}
    return ProxyOptions(**{**base, **overrides})  # type: ignore[arg-type]


def test_context_carries_the_options_a_connection_uses() -> None:
    options = _options(kafka=KafkaOptions("127.0.0.1:9092", "t", delivery_timeout_ms=2500),
                       on_capture_failure="reject", added_headers=(b"X-A: 1\r\n",))
    ctx = ConnectionContext.build(options, ProxyMetrics(), None, None)
    assert (ctx.close_wait_s, ctx.reject_uncaptured, ctx.added_headers) == (2.5, True, (b"X-A: 1\r\n",))
    assert ctx.destination.port == 9200 and ctx.max_head_bytes == options.max_head_bytes


def test_without_a_sink_a_connection_records_nothing() -> None:
    ctx = ConnectionContext.build(_options(), ProxyMetrics(), None, None)
    assert ctx.recorder("n.x.1") is None and not ctx.reject_uncaptured and ctx.close_wait_s == 1
