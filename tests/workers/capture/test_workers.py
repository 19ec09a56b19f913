"""Several proxy processes sharing one port (--workers): all serve, all capture, SIGTERM stops them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from migration_pipeline.sandbox.processes import free_port
from migration_pipeline.sandbox.state import SandboxState
from tests.workers.capture.conftest import create_topic, transactions


def _two_free_ports() -> int:
    """A port whose successor is free too: worker 2 serves its metrics on the next port, and a port taken by
    another process there made this test fail at random."""
    for _ in range(100):
        first = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", first + 1))
            except OSError:
                continue
        return first
    raise AssertionError("no two consecutive free ports on loopback")


def test_two_workers_share_the_port_and_both_capture(sandbox: SandboxState) -> None:
    assert sandbox.kafka is not None
    topic = create_topic(sandbox.kafka.bootstrap)
    port, admin = free_port(), _two_free_ports()
    while port in (admin, admin + 1):
        port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "workers.capture", "--listen", f"127.0.0.1:{port}",
                             "--destination", sandbox.engines["source"].url, "--kafka-brokers",
                             sandbox.kafka.bootstrap, "--kafka-topic", topic, "--workers", "2",
                             "--metrics-listen", f"127.0.0.1:{admin}"], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 30
        for metrics_port in (admin, admin + 1):
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/health", timeout=2):
                        break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, "workers did not start"
                    time.sleep(0.2)
        for _ in range(40):  # a new connection each time: the kernel spreads them over both workers
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                assert response.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0
    txns = transactions(sandbox.kafka.bootstrap, topic)
    assert len(txns) == 40
    processes = {t.conn.rsplit(".", 1)[0] for t in txns}  # node.process-prefix.counter
    assert len(processes) == 2
