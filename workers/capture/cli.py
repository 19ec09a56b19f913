"""The proxy's command line (`migration proxy`, `python -m workers.capture`); every flag also from CAPTURE_PROXY_*."""

from __future__ import annotations

import json
import logging
import socket
import sys
from typing import Annotated

import typer

from workers.capture.options import (
    Destination,
    KafkaOptions,
    ProxyOptions,
    Suppression,
    TlsOptions,
    parse_added_header,
    parse_host_port,
)
from workers.common.errors import ConfigurationError, MigrationError

ENV = "CAPTURE_PROXY_"


def _opt(help_text: str, env: str, *decls: str) -> typer.models.OptionInfo:
    return typer.Option(*decls, help=help_text, envvar=ENV + env)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                           "message": record.getMessage()})


def _logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    text = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handler.setFormatter(_JsonFormatter() if fmt == "json" else text)
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def _properties(specs: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--kafka-property {spec!r} must be KEY=VALUE")
        if "password" in key.lower() or "secret" in key.lower():
            raise ConfigurationError(f"--kafka-property {key}: pass secrets with --kafka-sasl-password-env")
        pairs.append((key, value))
    return tuple(pairs)


def proxy(
    listen: Annotated[str, _opt("HOST:PORT to accept clients on.", "LISTEN")] = "0.0.0.0:9200",
    destination: Annotated[str, _opt("The source cluster: http(s)://host:port.", "DESTINATION")] = "",
    kafka_brokers: Annotated[str, _opt("Kafka bootstrap servers, comma-separated.", "KAFKA_BROKERS")] = "",
    kafka_topic: Annotated[str, _opt("Topic for capture records.", "KAFKA_TOPIC")] = "capture-traffic",
    no_capture: Annotated[bool, _opt("Proxy only, record nothing (for measurements).", "NO_CAPTURE",
                                     "--no-capture")] = False,
    node_id: Annotated[str, _opt("This proxy's id in records (default: host name).", "NODE_ID")] = "",
    on_capture_failure: Annotated[str, _opt(
        "When Kafka cannot acknowledge: 'forward' (serve, count the uncaptured) or 'reject' (503 for writes).",
        "ON_CAPTURE_FAILURE")] = "forward",
    kafka_client_id: Annotated[str, _opt("Kafka client.id.", "KAFKA_CLIENT_ID")] = "capture-proxy",
    kafka_security_protocol: Annotated[str, _opt("PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
                                                 "KAFKA_SECURITY_PROTOCOL")] = "PLAINTEXT",
    kafka_sasl_mechanism: Annotated[str | None, _opt("PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, ...",
                                                     "KAFKA_SASL_MECHANISM")] = None,
    kafka_sasl_username: Annotated[str | None, _opt("SASL user name.", "KAFKA_SASL_USERNAME")] = None,
    kafka_sasl_password_env: Annotated[str | None, _opt(
        "Name of the environment variable holding the SASL password.", "KAFKA_SASL_PASSWORD_ENV")] = None,
    kafka_ssl_ca: Annotated[str | None, _opt("PEM CA file for the brokers' certificates.", "KAFKA_SSL_CA")] = None,
    kafka_ssl_cert: Annotated[str | None, _opt("PEM client certificate for the brokers.", "KAFKA_SSL_CERT")] = None,
    kafka_ssl_key: Annotated[str | None, _opt("PEM client key for the brokers.", "KAFKA_SSL_KEY")] = None,
    kafka_property: Annotated[list[str] | None, _opt("Extra librdkafka setting KEY=VALUE (repeatable).",
                                                     "KAFKA_PROPERTY")] = None,
    kafka_delivery_timeout_ms: Annotated[int, _opt("Give up on a record after this long.",
                                                   "KAFKA_DELIVERY_TIMEOUT_MS")] = 10_000,
    kafka_linger_ms: Annotated[int, _opt("linger.ms for records a response waits for (0: send at once).",
                                         "KAFKA_LINGER_MS")] = 0,
    kafka_background_linger_ms: Annotated[int, _opt("linger.ms for records nobody waits for (reads, responses).",
                                                    "KAFKA_BACKGROUND_LINGER_MS")] = 5,
    kafka_buffer_kbytes: Annotated[int, _opt("Records waiting for Kafka, at most (KiB).",
                                             "KAFKA_BUFFER_KBYTES")] = 65_536,
    max_record_bytes: Annotated[int, _opt("Largest Kafka record; larger messages are split.",
                                          "MAX_RECORD_BYTES")] = 1 << 20,
    tls_cert: Annotated[str | None, _opt("PEM certificate chain: terminate TLS on the listener.", "TLS_CERT")] = None,
    tls_key: Annotated[str | None, _opt("PEM private key for --tls-cert.", "TLS_KEY")] = None,
    tls_client_ca: Annotated[str | None, _opt("Require client certificates signed by this PEM CA.",
                                              "TLS_CLIENT_CA")] = None,
    destination_ca: Annotated[str | None, _opt("PEM CA for the destination's certificate.",
                                               "DESTINATION_CA")] = None,
    insecure_destination: Annotated[bool, _opt("Do not verify the destination's TLS certificate.",
                                               "INSECURE_DESTINATION", "--insecure-destination")] = False,
    destination_client_cert: Annotated[str | None, _opt("PEM client certificate towards the destination.",
                                                        "DESTINATION_CLIENT_CERT")] = None,
    destination_client_key: Annotated[str | None, _opt("PEM client key towards the destination.",
                                                       "DESTINATION_CLIENT_KEY")] = None,
    suppress_capture_header: Annotated[list[str] | None, _opt(
        "Do not capture requests with a header matching NAME=REGEX (repeatable).", "SUPPRESS_CAPTURE_HEADER")] = None,
    suppress_capture_method: Annotated[list[str] | None, _opt(
        "Do not capture requests with this method (repeatable).", "SUPPRESS_CAPTURE_METHOD")] = None,
    suppress_capture_path: Annotated[list[str] | None, _opt(
        "Do not capture requests whose path matches this regex (repeatable).", "SUPPRESS_CAPTURE_PATH")] = None,
    add_header: Annotated[list[str] | None, _opt("Add 'Name: value' to forwarded requests (repeatable).",
                                                 "ADD_HEADER")] = None,
    durable_read_posts: Annotated[bool, _opt(
        "Hold POST searches, counts, multi-gets and other read APIs for their Kafka acknowledgement, as writes "
        "are (by default they are captured asynchronously, like GETs).", "DURABLE_READ_POSTS",
        "--durable-read-posts")] = False,
    bench_forward_before_ack: Annotated[bool, typer.Option(
        "--bench-forward-before-ack", hidden=True, envvar=ENV + "BENCH_FORWARD_BEFORE_ACK",
        help="Bench only: forward a write before its capture is acknowledged (the former forward mode).")] = False,
    metrics_listen: Annotated[str | None, _opt("HOST:PORT for /metrics and /health.", "METRICS_LISTEN")] = None,
    shutdown_timeout: Annotated[float, _opt("Seconds to drain in-flight requests on SIGTERM.",
                                            "SHUTDOWN_TIMEOUT")] = 30.0,
    idle_timeout: Annotated[float, _opt("Seconds a keep-alive connection may wait for its next request (0: no "
                                        "limit).", "IDLE_TIMEOUT")] = 60.0,
    header_timeout: Annotated[float, _opt("Seconds from a request head's first byte to its end (0: no limit).",
                                          "HEADER_TIMEOUT")] = 30.0,
    body_timeout: Annotated[float, _opt("Seconds a request body may send nothing (0: no limit).",
                                        "BODY_TIMEOUT")] = 60.0,
    no_uvloop: Annotated[bool, _opt("Use asyncio's default event loop.", "NO_UVLOOP", "--no-uvloop")] = False,
    workers: Annotated[int, _opt("Processes sharing the port (SO_REUSEPORT); worker i serves metrics on the "
                                 "metrics port + i, and the admin API on the admin port + i.", "WORKERS")] = 1,
    admin_listen: Annotated[str | None, _opt(
        "HOST:PORT for the cutover admin API (off by default; ':PORT' listens on 127.0.0.1). A cutover must "
        "address every proxy and every worker (port + i).", "ADMIN_LISTEN")] = None,
    admin_token_env: Annotated[str | None, _opt(
        "Name of the environment variable holding the admin API's bearer token (required with --admin-listen).",
        "ADMIN_TOKEN_ENV")] = None,
    switch_target: Annotated[str | None, _opt(
        "The target cluster, http(s)://host:port: where requests go once the admin API switched to it.",
        "SWITCH_TARGET")] = None,
    switch_target_ca: Annotated[str | None, _opt("PEM CA for the switch target's certificate.",
                                                 "SWITCH_TARGET_CA")] = None,
    switch_target_insecure: Annotated[bool, _opt("Do not verify the switch target's TLS certificate.",
                                                 "SWITCH_TARGET_INSECURE", "--switch-target-insecure")] = False,
    reverse_topic: Annotated[str | None, _opt(
        "Capture topic while the target is the destination (default: the Kafka topic + '.reverse').",
        "REVERSE_TOPIC")] = None,
    max_hold_s: Annotated[float, _opt(
        "Longest time writes are held by pause-writes; past it the proxy releases them on the current side.",
        "MAX_HOLD_S")] = 30.0,
    start_side: Annotated[str, _opt(
        "The side to send to at start: source, or target for a proxy restarted after a cutover (its traffic then "
        "goes to --switch-target and is captured to the reverse topic).", "START_SIDE")] = "source",
    log_format: Annotated[str, _opt("text or json.", "LOG_FORMAT")] = "text",
    log_level: Annotated[str, _opt("debug, info, warning, error.", "LOG_LEVEL")] = "info",
    debug: Annotated[bool, _opt("Show tracebacks on errors.", "DEBUG", "--debug")] = False,
) -> None:
    """Run the capture proxy: forward HTTP to the source, record every transaction to Kafka."""
    _logging(log_format, log_level)
    try:
        options = build_options(
            listen=listen, destination=destination, kafka_brokers=kafka_brokers, kafka_topic=kafka_topic,
            no_capture=no_capture, node_id=node_id, on_capture_failure=on_capture_failure,
            kafka=dict(client_id=kafka_client_id, security_protocol=kafka_security_protocol,
                       sasl_mechanism=kafka_sasl_mechanism, sasl_username=kafka_sasl_username,
                       sasl_password_env=kafka_sasl_password_env, ssl_ca_file=kafka_ssl_ca,
                       ssl_cert_file=kafka_ssl_cert, ssl_key_file=kafka_ssl_key,
                       delivery_timeout_ms=kafka_delivery_timeout_ms, linger_ms=kafka_linger_ms,
                       background_linger_ms=kafka_background_linger_ms,
                       buffer_kbytes=kafka_buffer_kbytes, properties=_properties(kafka_property or [])),
            tls=TlsOptions(tls_cert, tls_key, tls_client_ca, destination_ca, insecure_destination,
                           destination_client_cert, destination_client_key),
            suppression=Suppression.parse(suppress_capture_header or [], suppress_capture_method or [],
                                          suppress_capture_path or []),
            added_headers=tuple(parse_added_header(h) for h in add_header or []),
            max_record_bytes=max_record_bytes, metrics_listen=metrics_listen, shutdown_timeout_s=shutdown_timeout,
            idle_timeout_s=idle_timeout, header_timeout_s=header_timeout, body_timeout_s=body_timeout,
            use_uvloop=not no_uvloop, workers=workers, durable_read_posts=durable_read_posts,
            forward_before_ack=bench_forward_before_ack, admin_listen=admin_listen, admin_token_env=admin_token_env,
            switch_target=switch_target, switch_target_ca=switch_target_ca,
            switch_target_insecure=switch_target_insecure, reverse_topic=reverse_topic, max_hold_s=max_hold_s,
            start_side=start_side)
        from workers.capture.server import main

        main(options)
    except MigrationError as exc:
        if debug:
            raise
        logging.getLogger("workers.capture").error("error: %s", exc)
        raise typer.Exit(exc.exit_code) from None
    except OSError as exc:
        if debug:
            raise
        logging.getLogger("workers.capture").error("error: %s (run with --debug for details)", exc)
        raise typer.Exit(1) from None


def build_options(*, listen: str, destination: str, kafka_brokers: str, kafka_topic: str, no_capture: bool,
                  node_id: str, on_capture_failure: str, kafka: dict[str, object], tls: TlsOptions,
                  suppression: Suppression, added_headers: tuple[bytes, ...], max_record_bytes: int,
                  metrics_listen: str | None, shutdown_timeout_s: float, use_uvloop: bool,
                  idle_timeout_s: float = 60.0, header_timeout_s: float = 30.0, body_timeout_s: float = 60.0,
                  workers: int = 1, durable_read_posts: bool = False,
                  forward_before_ack: bool = False, admin_listen: str | None = None,
                  admin_token_env: str | None = None, switch_target: str | None = None,
                  switch_target_ca: str | None = None, switch_target_insecure: bool = False,
                  reverse_topic: str | None = None, max_hold_s: float = 30.0,
                  start_side: str = "source") -> ProxyOptions:
    """ProxyOptions from the command-line values (kept apart from typer so tests can call it)."""
    if not destination:
        raise ConfigurationError("--destination is required")
    if not kafka_brokers and not no_capture:
        raise ConfigurationError("--kafka-brokers is required (or --no-capture)")
    host, port = parse_host_port(listen, "--listen")
    metrics_host, metrics_port = parse_host_port(metrics_listen, "--metrics-listen") if metrics_listen else (None,
                                                                                                           None)
    admin_host, admin_port = None, None
    if admin_listen:
        admin_host, admin_port = parse_host_port(admin_listen, "--admin-listen")
        if not admin_listen.rpartition(":")[0]:
            admin_host = "127.0.0.1"  # ":PORT": loopback only, never every interface by default
    target = Destination.parse(switch_target, "--switch-target") if switch_target else None
    if (switch_target_ca or switch_target_insecure) and target is None:
        raise ConfigurationError("--switch-target-ca and --switch-target-insecure need --switch-target")
    kafka_options = None if no_capture else KafkaOptions(kafka_brokers, kafka_topic, **kafka)  # type: ignore[arg-type]
    return ProxyOptions(
        listen_host=host, listen_port=port, destination=Destination.parse(destination), kafka=kafka_options,
        node_id=node_id or socket.gethostname(), tls=tls,
        on_capture_failure=on_capture_failure,  # type: ignore[arg-type]
        suppression=suppression, added_headers=added_headers, max_record_bytes=max_record_bytes,
        metrics_host=metrics_host, metrics_port=metrics_port, shutdown_timeout_s=shutdown_timeout_s,
        idle_timeout_s=idle_timeout_s, header_timeout_s=header_timeout_s, body_timeout_s=body_timeout_s,
        use_uvloop=use_uvloop, workers=workers, durable_read_posts=durable_read_posts,
        forward_before_ack=forward_before_ack, admin_host=admin_host, admin_port=admin_port,
        admin_token_env=admin_token_env, switch_target=target, switch_target_ca_file=switch_target_ca,
        switch_target_insecure=switch_target_insecure, reverse_topic=reverse_topic, max_hold_s=max_hold_s,
        start_side=start_side)


def app() -> typer.Typer:
    """A one-command typer app for ``python -m workers.capture``."""
    application = typer.Typer(add_completion=False)
    application.command()(proxy)
    return application
