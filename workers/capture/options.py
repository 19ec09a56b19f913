"""The capture proxy's options, validated once at start-up (the CLI and tests build them)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from workers.common.errors import ConfigurationError

MUTATING_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
OnCaptureFailure = Literal["forward", "reject"]


def parse_host_port(spec: str, option: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a pair."""
    host, sep, port = spec.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigurationError(f"{option} {spec!r} must be HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


@dataclass(frozen=True)
class Destination:
    """The source cluster the proxy forwards to."""

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, url: str, option: str = "--destination") -> Destination:
        """``http(s)://host[:port]``; a path is refused since requests keep their own."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"{option} {url!r} must be http(s)://host[:port]")
        if parts.path not in ("", "/") or parts.query:
            raise ConfigurationError(f"{option} {url!r} must not have a path or query")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port)

    @property
    def url(self) -> str:
        """``scheme://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def tls(self) -> bool:
        """True for https."""
        return self.scheme == "https"


@dataclass(frozen=True)
class TlsOptions:
    """TLS termination on the listener, and TLS towards the destination."""

    cert_file: str | None = None
    key_file: str | None = None
    # Client certificates on the listener: required and verified against this CA when set.
    client_ca_file: str | None = None
    destination_ca_file: str | None = None
    insecure_destination: bool = False
    destination_client_cert: str | None = None
    destination_client_key: str | None = None

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigurationError("--tls-cert and --tls-key go together")
        if self.client_ca_file and not self.cert_file:
            raise ConfigurationError("--tls-client-ca needs --tls-cert and --tls-key (client auth is part of TLS)")
        if bool(self.destination_client_cert) != bool(self.destination_client_key):
            raise ConfigurationError("--destination-client-cert and --destination-client-key go together")


@dataclass(frozen=True)
class KafkaOptions:
    """Where and how capture records are produced."""

    brokers: str
    topic: str
    client_id: str = "capture-proxy"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    # The *name* of the environment variable holding the SASL password, never the password itself.
    sasl_password_env: str | None = None
    ssl_ca_file: str | None = None
    ssl_cert_file: str | None = None
    ssl_key_file: str | None = None
    delivery_timeout_ms: int = 10_000
    linger_ms: int = 0
    # For records nobody waits on (reads, responses, connection events): batching costs no client any time.
    background_linger_ms: int = 5
    buffer_kbytes: int = 65_536
    properties: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.brokers:
            raise ConfigurationError("--kafka-brokers is required")
        if not self.topic:
            raise ConfigurationError("--kafka-topic is required")
        if self.sasl_username and not self.sasl_password_env:
            raise ConfigurationError("--kafka-sasl-username needs --kafka-sasl-password-env (the variable's name)")
        _check_kafka_security(self)


KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def _check_kafka_security(options: KafkaOptions) -> None:
    """The SASL and TLS flags fit the security protocol (a --kafka-property may set what a flag does not)."""
    props = dict(options.properties)
    protocol = props.get("security.protocol", options.security_protocol).upper()
    if protocol not in KAFKA_PROTOCOLS:
        raise ConfigurationError(f"--kafka-security-protocol {protocol!r} must be one of {', '.join(KAFKA_PROTOCOLS)}")
    object.__setattr__(options, "security_protocol", options.security_protocol.upper())
    sasl_flags = [flag for flag, value in (("--kafka-sasl-mechanism", options.sasl_mechanism),
                                           ("--kafka-sasl-username", options.sasl_username),
                                           ("--kafka-sasl-password-env", options.sasl_password_env)) if value]
    if protocol.startswith("SASL_"):
        mechanism = (options.sasl_mechanism or props.get("sasl.mechanism") or props.get("sasl.mechanisms") or "")
        if not mechanism:
            raise ConfigurationError(f"--kafka-security-protocol {protocol} needs --kafka-sasl-mechanism (PLAIN, "
                                     "SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or GSSAPI)")
        if (mechanism.upper() == "PLAIN" or mechanism.upper().startswith("SCRAM-")) and not (
                options.sasl_username and options.sasl_password_env):
            raise ConfigurationError(f"--kafka-sasl-mechanism {mechanism} needs --kafka-sasl-username and "
                                     "--kafka-sasl-password-env (the name of the variable holding the password)")
    elif sasl_flags:
        raise ConfigurationError(f"{sasl_flags[0]} needs --kafka-security-protocol SASL_SSL or SASL_PLAINTEXT "
                                 f"(not {protocol})")
    files = (("--kafka-ssl-ca", options.ssl_ca_file), ("--kafka-ssl-cert", options.ssl_cert_file),
             ("--kafka-ssl-key", options.ssl_key_file))
    for flag, path in files:
        if path and protocol not in ("SSL", "SASL_SSL"):
            raise ConfigurationError(f"{flag} needs --kafka-security-protocol SSL or SASL_SSL (not {protocol})")
        if path and not os.path.isfile(path):
            raise ConfigurationError(f"{flag} {path}: no such file")
    if bool(options.ssl_cert_file) != bool(options.ssl_key_file):
        raise ConfigurationError("--kafka-ssl-cert and --kafka-ssl-key go together")


@dataclass(frozen=True)
class HeaderMatch:
    """A header whose value matches a regular expression (the whole value)."""

    name: bytes
    pattern: re.Pattern[bytes]

    @classmethod
    def parse(cls, spec: str) -> HeaderMatch:
        """``NAME=REGEX``."""
        name, sep, regex = spec.partition("=")
        if not sep or not name.strip():
            raise ConfigurationError(f"--suppress-capture-header {spec!r} must be NAME=REGEX")
        try:
            pattern = re.compile(regex.encode())
        except re.error as exc:
            raise ConfigurationError(f"--suppress-capture-header {spec!r}: bad regular expression ({exc})") from None
        return cls(name.strip().lower().encode(), pattern)


@dataclass(frozen=True)
class Suppression:
    """Requests that are forwarded but not captured."""

    headers: tuple[HeaderMatch, ...] = ()
    methods: frozenset[str] = frozenset()
    paths: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def parse(cls, headers: list[str], methods: list[str], paths: list[str]) -> Suppression:
        """From the repeatable command-line values; path patterns must match the whole path (query excluded)."""
        compiled = []
        for path in paths:
            try:
                compiled.append(re.compile(path))
            except re.error as exc:
                raise ConfigurationError(f"--suppress-capture-path {path!r}: bad regular expression ({exc})") from None
        return cls(tuple(HeaderMatch.parse(h) for h in headers), frozenset(m.upper() for m in methods), tuple(compiled))

    def __bool__(self) -> bool:
        return bool(self.headers or self.methods or self.paths)

    def matches(self, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> bool:
        """True when the request must not be captured."""
        if method in self.methods:
            return True
        if any(p.fullmatch(path) for p in self.paths):
            return True
        for rule in self.headers:
            for name, value in headers:
                if name.lower() == rule.name and rule.pattern.fullmatch(value):
                    return True
        return False


def parse_added_header(spec: str) -> bytes:
    """``Name: value`` as the header line inserted into forwarded requests."""
    name, sep, value = spec.partition(":")
    if not sep or not name.strip() or any(c in spec for c in "\r\n"):
        raise ConfigurationError(f"--add-header {spec!r} must be 'Name: value' on one line")
    return f"{name.strip()}: {value.strip()}\r\n".encode("latin-1")


@dataclass(frozen=True)
class ProxyOptions:
    """Everything the proxy needs to run."""

    listen_host: str
    listen_port: int
    destination: Destination
    kafka: KafkaOptions | None
    node_id: str
    tls: TlsOptions = field(default_factory=TlsOptions)
    on_capture_failure: OnCaptureFailure = "forward"
    suppression: Suppression = field(default_factory=Suppression)
    added_headers: tuple[bytes, ...] = ()
    # POST searches (and the other read APIs in workers.capture.classify) held for the acknowledgement too.
    durable_read_posts: bool = False
    # Bench only (a hidden flag): forward mode's former behaviour, a write forwarded while its capture is in flight
    # and only its response held for the acknowledgement, to measure what release-after-ack costs.
    forward_before_ack: bool = False
    max_record_bytes: int = 1 << 20
    max_head_bytes: int = 64 << 10
    metrics_host: str | None = None
    metrics_port: int | None = None
    connect_timeout_s: float = 10.0
    # Client connections (0: no limit): no request on a keep-alive connection (counted from the last response byte
    # written), a request head not complete from its first byte, no byte of a request body.
    idle_timeout_s: float = 60.0
    header_timeout_s: float = 30.0
    body_timeout_s: float = 60.0
    shutdown_timeout_s: float = 30.0
    use_uvloop: bool = True
    # Processes sharing the listening port (SO_REUSEPORT); each has its own Kafka producer, metrics and admin port.
    workers: int = 1
    # The cutover switch (workers.capture.switch): the admin API's own listener (None: off) and the *name* of the
    # environment variable holding its bearer token, never the token itself.
    admin_host: str | None = None
    admin_port: int | None = None
    admin_token_env: str | None = None
    # Where requests go once switched to the target, and how its certificate is checked.
    switch_target: Destination | None = None
    switch_target_ca_file: str | None = None
    switch_target_insecure: bool = False
    # The capture topic while the target is the destination (None: ``<topic>.reverse``).
    reverse_topic: str | None = None
    # The longest writes are held (pause) before the proxy releases them by itself.
    max_hold_s: float = 30.0
    # The side a (re)started proxy sends to: "target" for a proxy restarted after a cutover, so that its traffic
    # keeps going to the target and into the reverse topic.
    start_side: str = "source"

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigurationError("--workers must be at least 1")
        if self.workers > 1 and self.listen_port == 0:
            raise ConfigurationError("--workers above 1 needs a fixed --listen port")
        if self.on_capture_failure not in ("forward", "reject"):
            raise ConfigurationError("--on-capture-failure must be 'forward' or 'reject'")
        if self.max_record_bytes < 4096:
            raise ConfigurationError("--max-record-bytes must be at least 4096")
        for name in ("idle", "header", "body"):
            if getattr(self, f"{name}_timeout_s") < 0:
                raise ConfigurationError(f"--{name}-timeout must be 0 (no limit) or more seconds")
        self._check_switch()

    def _check_switch(self) -> None:
        if not self.max_hold_s > 0:
            raise ConfigurationError("--max-hold-s must be more than 0 seconds")
        if self.start_side not in ("source", "target"):
            raise ConfigurationError(f"--start-side {self.start_side!r} must be source or target")
        if self.start_side == "target" and self.switch_target is None:
            raise ConfigurationError("--start-side target needs --switch-target (where the target is)")
        if self.admin_port is not None:
            if not self.admin_token_env:
                raise ConfigurationError("--admin-listen needs --admin-token-env NAME (the name of the environment "
                                         "variable holding the admin API's bearer token)")
            admin_token(self.admin_token_env)
            if self.admin_port != 0 and self.admin_port == self.listen_port:
                raise ConfigurationError("--admin-listen must not be the traffic listener's port (--listen)")
            if self.workers > 1 and self.admin_port == 0:
                raise ConfigurationError("--workers above 1 needs a fixed --admin-listen port")
        if self.switch_target_ca_file and not os.path.isfile(self.switch_target_ca_file):
            raise ConfigurationError(f"--switch-target-ca {self.switch_target_ca_file}: no such file")
        if self.kafka is not None and self.reverse_topic_name == self.kafka.topic:
            raise ConfigurationError("--reverse-topic must differ from --kafka-topic")

    @property
    def reverse_topic_name(self) -> str | None:
        """The capture topic while the target is the destination (None without capture)."""
        if self.kafka is None:
            return None
        return self.reverse_topic or default_reverse_topic(self.kafka.topic)


def default_reverse_topic(topic: str) -> str:
    """The capture topic while the target is the destination, unless --reverse-topic names one."""
    return f"{topic}.reverse"


def admin_token(env_name: str) -> bytes:
    """The admin API's token, from the variable ``env_name`` (--admin-token-env); never logged."""
    value = os.environ.get(env_name, "")
    if not value:
        raise ConfigurationError(f"--admin-token-env: environment variable {env_name} is not set or empty "
                                 "(it must hold the admin API's bearer token)")
    return value.encode()
