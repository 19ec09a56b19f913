"""The proxy SIGKILLed at random points under a sustained write load, restarted on the same port, again and again:
the source must hold no write that Kafka lacks (release-after-ack: a write's last bytes reach the source only once
Kafka acknowledged its capture; docs/capture-format.md, "Durability").

CAPTURE_CRASH_KILLS sets the number of kills of the default run (50, about a minute); the ``slow`` soak kills
hundreds of times. CAPTURE_CRASH_MODES picks the --on-capture-failure modes the restarts alternate between
("forward,reject"), CAPTURE_CRASH_PROXY_ARGS adds proxy flags (e.g. --bench-forward-before-ack: the former
forward mode, which this test catches writing to the source what Kafka never got).
"""

from __future__ import annotations

import http.client
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest
from opensearchpy import OpenSearch, helpers

from migration_pipeline.sandbox.processes import free_port
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.capture.conftest import create_topic
from workers.capture.reader import read_topic
from workers.capture.records import Kind

KILLS = int(os.environ.get("CAPTURE_CRASH_KILLS", "50"))
MODES = tuple(os.environ.get("CAPTURE_CRASH_MODES", "forward,reject").split(","))
EXTRA_ARGS = shlex.split(os.environ.get("CAPTURE_CRASH_PROXY_ARGS", ""))
# Client connections writing through the proxy, each one request in flight.
CONNECTIONS = 8
# How long a proxy serves before it is killed: from a few requests to a second's worth.
LIFETIME_S = (0.02, 1.0)


class Writer(threading.Thread):
    """One keep-alive client connection indexing documents, each under an id of its own, until told to stop.

    An id is never retried: after an error the next request has the next id.
    """

    def __init__(self, number: int, port: int, index: str, stop: threading.Event) -> None:
        super().__init__(name=f"writer-{number}", daemon=True)
        self.number = number
        self.port = port
        self.index = index
        self.stop = stop
        self.attempted = 0
        self.acknowledged: set[str] = set()
        self.failed = 0

    def run(self) -> None:
        connection: http.client.HTTPConnection | None = None
        while not self.stop.is_set():
            if connection is None:
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                    connection.connect()
                except OSError:  # the proxy is not listening yet
                    connection = None
                    time.sleep(0.005)
                    continue
            doc_id = f"w{self.number}-{self.attempted}"
            self.attempted += 1
            try:
                connection.request("PUT", f"/{self.index}/_doc/{doc_id}", body=b'{"n":%d}' % self.attempted,
                                   headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                if response.status in (200, 201):
                    self.acknowledged.add(doc_id)
                else:
                    self.failed += 1
            except (OSError, http.client.HTTPException):
                # The proxy died (reset, closed): a new connection for the next write.
                self.failed += 1
                connection.close()
                connection = None
        if connection is not None:
            connection.close()


def start_proxy(port: int, source: str, brokers: str, topic: str, mode: str, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """A proxy process on ``port``, returned once it accepts connections."""
    proc = subprocess.Popen([sys.executable, "-m", "workers.capture", "--listen", f"127.0.0.1:{port}",
                             "--destination", source, "--kafka-brokers", brokers, "--kafka-topic", topic,
                             "--on-capture-failure", mode, "--log-level", "warning", *EXTRA_ARGS],
                            stdout=log, stderr=log, env=os.environ.copy())
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            assert proc.poll() is None, f"the proxy exited with {proc.returncode} (log: {log.name})"
            assert time.monotonic() < deadline, "the proxy did not start listening in 30 s"
            time.sleep(0.01)


def source_ids(url: str, index: str) -> set[str]:
    """The ids of every document the source holds in ``index``."""
    client = OpenSearch(url, timeout=120)
    try:
        client.indices.refresh(index=index)
        return {hit["_id"] for hit in helpers.scan(client, index=index, query={"_source": False}, size=5000)}
    finally:
        client.close()


def kafka_ids(brokers: str, topic: str, index: str) -> set[str]:
    """The ids of the writes whose whole request Kafka holds (workers.capture.reader)."""
    prefix = f"/{index}/_doc/"
    ids = set()
    for record in read_topic(brokers, topic, timeout_s=120):
        meta = record.meta
        # A small write is one request record: its first part, and its last.
        if record.kind is Kind.REQUEST and meta.get("part") == 0 and meta.get("last"):
            target = str(meta.get("target", ""))
            if target.startswith(prefix):
                ids.add(target[len(prefix):])
    return ids


def run_crash_loop(sandbox: SandboxState, tmp_path: Path, kills: int, budget_s: float) -> None:
    assert sandbox.kafka is not None
    source, brokers = sandbox.engines["source"].url, sandbox.kafka.bootstrap
    topic = create_topic(brokers)
    index = unique("crash")
    client = OpenSearch(source, timeout=60)
    client.indices.create(index=index, body={"settings": {"number_of_shards": 1, "number_of_replicas": 0,
                                                           "refresh_interval": "30s"}})
    client.close()
    seed = int(os.environ.get("CAPTURE_CRASH_SEED", str(time.time_ns() % 1_000_000)))
    rng = random.Random(seed)
    port = free_port()
    stop = threading.Event()
    writers = [Writer(n, port, index, stop) for n in range(CONNECTIONS)]
    began = time.monotonic()
    done = 0
    with open(tmp_path / "proxy.log", "wb") as log:
        proc = start_proxy(port, source, brokers, topic, rng.choice(MODES), log)
        try:
            for writer in writers:
                writer.start()
            while done < kills and time.monotonic() - began < budget_s:
                time.sleep(rng.uniform(*LIFETIME_S))
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
                done += 1
                proc = start_proxy(port, source, brokers, topic, rng.choice(MODES), log)
            time.sleep(0.5)  # the last proxy serves a while, and its records are flushed at SIGTERM
        finally:
            stop.set()
            for writer in writers:
                writer.join(60)
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    elapsed = time.monotonic() - began

    applied = source_ids(source, index)
    captured = kafka_ids(brokers, topic, index)
    acknowledged = set().union(*(w.acknowledged for w in writers))
    missing = applied - captured
    unapplied = captured - applied
    print(f"\ncrash test (seed {seed}, modes {','.join(MODES)}{' ' + ' '.join(EXTRA_ARGS) if EXTRA_ARGS else ''}): "
          f"{done} kills in {elapsed:.0f} s, {sum(w.attempted for w in writers)} writes attempted, "
          f"{len(acknowledged)} acknowledged to clients, {sum(w.failed for w in writers)} failed; "
          f"source applied {len(applied)}, Kafka holds {len(captured)}; "
          f"applied but missing from Kafka: {len(missing)}; in Kafka, never applied: {len(unapplied)}")
    assert done >= min(kills, 20), f"only {done} kills in {budget_s:.0f} s"
    assert len(acknowledged) > 10 * done, "too little load between kills to test anything"
    assert acknowledged <= applied, "the source lost writes it acknowledged"
    assert acknowledged <= captured, "a client was answered before Kafka held its write"
    assert not missing, f"the source applied {len(missing)} writes Kafka lacks, e.g. {sorted(missing)[:5]}"


def test_source_holds_no_write_kafka_lacks_across_random_kills(sandbox: SandboxState, tmp_path: Path) -> None:
    run_crash_loop(sandbox, tmp_path, KILLS, budget_s=max(120.0, KILLS * 2.5))


@pytest.mark.slow
def test_source_holds_no_write_kafka_lacks_across_hundreds_of_kills(sandbox: SandboxState, tmp_path: Path) -> None:
    run_crash_loop(sandbox, tmp_path, 400, budget_s=1200.0)
