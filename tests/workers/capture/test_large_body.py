"""A 100 MB bulk body through the proxy process (options from CAPTURE_PROXY_* variables) with bounded memory."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from opensearchpy import OpenSearch

from migration_pipeline.sandbox.processes import free_port
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.capture.conftest import create_topic, transactions

BODY_BYTES = 100_000_000  # under Elasticsearch's default http.max_content_length (100 MiB)
DOC = b'{"blob":"' + b"x" * 999_900 + b'"}\n'


def bulk_lines() -> Iterator[bytes]:
    """NDJSON of about 1 MB documents, exactly BODY_BYTES long, made as it is sent."""
    sent, i = 0, 0
    while True:
        action = b'{"index":{"_id":"%d"}}\n' % i
        if sent + len(action) + len(DOC) > BODY_BYTES:
            break
        yield action + DOC
        sent += len(action) + len(DOC)
        i += 1
    yield b"\n" * (BODY_BYTES - sent)


def memory_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def test_100_mb_bulk_streams_through_with_bounded_memory(sandbox: SandboxState) -> None:
    assert sandbox.kafka is not None
    source = sandbox.engines["source"].url
    index = unique("large")
    direct = OpenSearch(source)
    # Stored, not indexed: the source's time goes to receiving the body, not to analysing it.
    direct.indices.create(index=index, body={"settings": {"number_of_replicas": 0}, "mappings": {"enabled": False}})
    direct.close()
    topic = create_topic(sandbox.kafka.bootstrap, partitions=1)
    port, admin = free_port(), free_port()
    env = {**os.environ, "CAPTURE_PROXY_LISTEN": f"127.0.0.1:{port}", "CAPTURE_PROXY_DESTINATION": source,
           "CAPTURE_PROXY_KAFKA_BROKERS": sandbox.kafka.bootstrap, "CAPTURE_PROXY_KAFKA_TOPIC": topic,
           "CAPTURE_PROXY_KAFKA_BUFFER_KBYTES": "16384", "CAPTURE_PROXY_METRICS_LISTEN": f"127.0.0.1:{admin}"}
    proc = subprocess.Popen([sys.executable, "-m", "workers.capture"], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin}/health", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "proxy did not start"
                time.sleep(0.2)
        baseline = memory_kb(proc.pid)["VmRSS"]
        head = (f"POST /{index}/_bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                f"Content-Length: {BODY_BYTES}\r\nConnection: close\r\n\r\n").encode()
        digest = hashlib.sha256(head)
        with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
            sock.sendall(head)
            for piece in bulk_lines():
                digest.update(piece)
                sock.sendall(piece)
            received = bytearray()
            while chunk := sock.recv(1 << 16):
                received += chunk
        # Elasticsearch answers 200, or 429 when the body exceeds its indexing pressure limit (10% of a 512 MB
        # heap in the sandbox); either way it received the whole body and the client gets its answer.
        status = int(received[9:12])
        assert status in (200, 429), received[:500]
        peak = memory_kb(proc.pid)["VmHWM"]
        print(f"proxy RSS {baseline // 1024} MB before, peak {peak // 1024} MB, status {status}")
        assert peak - baseline < 64 * 1024, f"proxy memory grew by {(peak - baseline) // 1024} MB"
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/health", timeout=5) as health:
            assert json.load(health)["status"] == "ok"
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    (txn,) = transactions(sandbox.kafka.bootstrap, topic)
    assert len(txn.request) == len(head) + BODY_BYTES
    assert hashlib.sha256(txn.request).digest() == digest.digest()
    assert txn.response == bytes(received)
