"""The proxy process: the listener, the metrics and health endpoint, and a graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
import signal
import socket
import uuid
from collections.abc import Coroutine
from typing import Any

from workers.capture.admin import AdminApi
from workers.capture.buffered import BODY_TIMEOUT, HEADER_TIMEOUT, IDLE_TIMEOUT, Channel
from workers.capture.connection import ClientConnection
from workers.capture.context import ConnectionContext
from workers.capture.http1 import MalformedHttp, parse_request_head
from workers.capture.kafka_sink import KafkaSink
from workers.capture.metrics import ProxyMetrics
from workers.capture.options import ProxyOptions, admin_token
from workers.capture.switch import SwitchState
from workers.capture.upstream import destination_ssl_context, listener_ssl_context

log = logging.getLogger("workers.capture.server")


class ProxyServer:
    """A running proxy; ``start`` binds, ``stop`` drains connections and flushes Kafka."""

    def __init__(self, options: ProxyOptions) -> None:
        self.options = options
        self.metrics = ProxyMetrics()
        self.sink: KafkaSink | None = None
        self.destination_ssl = destination_ssl_context(options.tls) if options.destination.tls else None
        # The cutover switch, driven by the admin API (its own listener, --admin-listen).
        self.switch = SwitchState.build(options, self.metrics, self.destination_ssl)
        self._switch_api: asyncio.Server | None = None
        self.admin_port = 0
        self._listener_ssl = listener_ssl_context(options.tls)
        # What every client connection's reads may wait (buffered.Channel); None: no limit at all.
        timeouts = {IDLE_TIMEOUT: options.idle_timeout_s, HEADER_TIMEOUT: options.header_timeout_s,
                    BODY_TIMEOUT: options.body_timeout_s}
        self._timeouts = timeouts if any(timeouts.values()) else None
        self._connections: set[ClientConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._admin: asyncio.Server | None = None
        self._prefix = uuid.uuid4().hex[:12]
        self._counter = 0
        self.draining = False
        self._context: ConnectionContext | None = None
        self.port = 0
        self.metrics_port = 0

    async def start(self) -> None:
        """Connect the producer and start listening."""
        loop = asyncio.get_running_loop()
        if self.options.kafka is not None:
            self.sink = KafkaSink(self.options.kafka, self.options.max_record_bytes, self.metrics, loop)
            self.sink.start()
        self._context = ConnectionContext.build(self.options, self.metrics, self.sink, self.destination_ssl,
                                                self.switch)
        self._server = await loop.create_server(lambda: Channel(loop, self._opened, self._timeouts),
                                                self.options.listen_host, self.options.listen_port,
                                                ssl=self._listener_ssl, backlog=1024,
                                                reuse_port=self.options.workers > 1 or None)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.options.metrics_port is not None:
            self._admin = await loop.create_server(lambda: Channel(loop, self._admin_opened, self._timeouts),
                                                   self.options.metrics_host or "127.0.0.1", self.options.metrics_port)
            self.metrics_port = self._admin.sockets[0].getsockname()[1]
        if self.options.admin_port is not None:
            assert self.options.admin_token_env is not None  # ProxyOptions checks it
            api = AdminApi(self.switch, admin_token(self.options.admin_token_env), self.sink,
                           self.options.connect_timeout_s)
            self._switch_api = await asyncio.start_server(api.serve, self.options.admin_host or "127.0.0.1",
                                                          self.options.admin_port, backlog=16)
            self.admin_port = self._switch_api.sockets[0].getsockname()[1]
            target = self.options.switch_target
            log.info("admin API on %s:%d (switch target %s, reverse topic %s)", self.options.admin_host or "127.0.0.1",
                     self.admin_port, target.url if target else "none", self.options.reverse_topic_name or "-")
        log.info("capture proxy listening on %s:%d -> %s://%s:%d (capture %s)", self.options.listen_host, self.port,
                 self.options.destination.scheme, self.options.destination.host, self.options.destination.port,
                 f"to Kafka topic {self.options.kafka.topic}" if self.options.kafka else "off")

    def _next_conn_id(self) -> str:
        # Unique across restarts and proxies: the node id, a per-process prefix, a counter.
        self._counter += 1
        return f"{self.options.node_id}.{self._prefix}.{self._counter}"

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # held until done: the loop keeps only a weak reference to a task
        task.add_done_callback(self._tasks.discard)

    def _opened(self, channel: Channel) -> None:
        self._spawn(self._accept(channel))

    def _admin_opened(self, channel: Channel) -> None:
        self._spawn(self._serve_admin(channel))

    async def _accept(self, channel: Channel) -> None:
        if self.draining:
            channel.close()
            return
        assert self._context is not None  # built by start before the listener opens
        sock = channel.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = ClientConnection(self._context, channel, self._next_conn_id())
        self._connections.add(conn)
        self.metrics.connections.inc()
        try:
            await conn.serve()
        except Exception:
            log.exception("%s: connection failed", conn.conn_id)
        finally:
            self._connections.discard(conn)
            self.metrics.connections.dec()

    async def _serve_admin(self, writer: Channel) -> None:
        """GET /metrics (Prometheus text format) and GET /health (JSON), one request per connection."""
        try:
            raw = await writer.read_head(16 << 10)
            path = parse_request_head(raw).path if raw else ""
            if path == "/metrics":
                status, ctype, body = 200, "text/plain; version=0.0.4; charset=utf-8", self.metrics.render()
            elif path == "/health":
                report = self.health()
                status = 200 if report["status"] == "ok" else 503
                ctype, body = "application/json", json.dumps(report).encode()
            else:
                status, ctype, body = 404, "text/plain", b"not found\n"
            writer.write(f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Type: {ctype}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (MalformedHttp, ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()

    def health(self) -> dict[str, object]:
        """What /health reports."""
        return {
            "status": "draining" if self.draining else "ok",
            "kafka": "off" if self.sink is None else ("ok" if self.sink.healthy else "unreachable"),
            "on_capture_failure": self.options.on_capture_failure,
            "connections": len(self._connections),
            "side": self.switch.route.side,
            "paused": self.switch.paused,
        }

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to the shutdown timeout), then flush Kafka."""
        self.draining = True
        if self._server is not None:
            self._server.close()
        if self._switch_api is not None:
            self._switch_api.close()
        if self.switch.resume():
            log.warning("shutdown: held writes released on the %s side", self.switch.route.side)
        for conn in list(self._connections):
            conn.begin_drain()
        deadline = asyncio.get_running_loop().time() + self.options.shutdown_timeout_s
        while self._connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self._connections):
            log.warning("%s: still busy at shutdown, closing", conn.conn_id)
            conn.writer.abort()
        await asyncio.sleep(0)
        if self._admin is not None:
            self._admin.close()
        if self.sink is not None:
            left = await self.sink.close(self.options.shutdown_timeout_s)
            if left:
                log.warning("%d capture records were not delivered before shutdown", left)
        log.info("capture proxy stopped")


async def run(options: ProxyOptions, ready: asyncio.Event | None = None) -> None:
    """Run the proxy until SIGTERM or SIGINT, then shut down gracefully."""
    server = ProxyServer(options)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("shutting down: draining %d connections", len(server._connections))
    await server.stop()


def _run_one(options: ProxyOptions) -> None:
    # Every request allocates a few hundred short-lived objects; at the default threshold (700) the collector runs
    # every few requests and walks what survived into the older generations. The objects that exist at start
    # (modules, librdkafka's bindings, options) never die: frozen, no collection visits them again.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    if options.use_uvloop:
        try:
            import uvloop
        except ImportError:
            uvloop = None  # type: ignore[assignment]
        if uvloop is not None:
            uvloop.run(run(options))
            return
    asyncio.run(run(options))


def main(options: ProxyOptions) -> None:
    """Blocking entry point: one process, or ``workers`` forked processes sharing the port (SO_REUSEPORT)."""
    if options.workers == 1:
        _run_one(options)
        return
    children: list[int] = []
    for index in range(options.workers):
        # Fork before any loop, thread or producer exists: each worker builds its own.
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                metrics_port = options.metrics_port + index if options.metrics_port else options.metrics_port
                # Each worker has its own switch: a cutover addresses every worker's admin port.
                admin_port = options.admin_port + index if options.admin_port else options.admin_port
                _run_one(dataclasses.replace(options, metrics_port=metrics_port, admin_port=admin_port))
            except BaseException:
                log.exception("worker %d failed", index)
                code = 1
            os._exit(code)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed = 0
    for child in children:
        _, status = os.waitpid(child, 0)
        failed |= os.waitstatus_to_exitcode(status) != 0
    if failed:
        raise SystemExit(1)
