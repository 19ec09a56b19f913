"""Traffic replayer throughput, CPU and memory: replay at --max-speed against a plain client's ceiling, in one run.

The issue's benchmark: record a bulk-heavy workload (80% ``_bulk`` of 100 x ~2.4 KB documents, 20% small searches)
through the capture proxy; replay it at ``--max-speed`` and, in the same run, send the same requests straight to the
target with a plain concurrent client at the same concurrency (the ceiling). Goals:
  - replay >= 0.9 x the ceiling's docs/s;
  - the replayer's own CPU <= 1/5 of the Java replayer's published cost (3,500 docs/s per vCPU), i.e.
    >= 17,500 docs/s per second of replayer CPU;
  - RSS <= 512 MB with a 2 GB backlog in Kafka.

Steps (own sandbox "replaybench": Elasticsearch 7.10.2 source, OpenSearch 2.19 target, Kafka; 1 GB heaps):
  1. the request bodies are generated once into files, one per client connection (log-like documents with ids
     unique across the run, so the target's count checks every write);
  2. record: C keep-alive connections (one aiohttp session of one connection each, from a separate process) send
     their requests sequentially through the capture proxy (python -m workers.capture) to the source;
  3. the target is warmed up (a share of the same requests, into a throwaway index), then, in rounds (order
     rotated): ceiling = the same C connections sending the same files straight to the target (aiohttp, one
     request in flight per connection, as fast as the target answers); replay = python -m workers.replay
     --max-speed --exit-when-idle-s 2 (new consumer group) onto the same index, recreated empty before each;
     the target's document count is checked after each;
  4. backlog: ~2 GB of capture records (request and response records as the proxy writes them, made of the recorded
     transactions, under fresh connection ids, pointed at a throwaway index) produced into a separate topic; a
     replayer started on it; its RSS sampled for --backlog-seconds; then SIGTERM and the topic deleted.

Replay window: from the replayer's status file (rewritten every second, with its own clock): from the last status
before any document was written to the first status with every document written (so up to ~2 s more than the real
window: the docs/s is a lower bound); the idle wait before exit is outside it. The replayer's CPU over that window
(utime + stime from /proc/PID/stat, every thread) and over its whole life (wait4 rusage, startup and the idle wait
included); RSS from VmHWM (peak) in /proc/PID/status, sampled every 0.2 s.

    flock /tmp/cpu-heavy.lock .venv/bin/python bench/replay.py [--requests 5000] [--connections 8] [--rounds 1]
                                                               [--backlog-gb 2] [--backlog-seconds 60] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from opensearchpy import OpenSearch

from migration_pipeline.sandbox import manager
from migration_pipeline.sandbox.processes import free_port
from workers.capture.reader import Transaction, read_transactions
from workers.capture.records import Kind, encode
from workers.replay.stats import read_status

RESULTS = Path(__file__).parent / "results"
SANDBOX = "replaybench"
INDEX = "replaybench-logs"
WARMUP_INDEX = "replaybench-warmup"
BACKLOG_INDEX = "replaybench-backlog"
# The Java replayer's published cost; the goal is a fifth of it.
JAVA_DOCS_PER_CPU_S = 3500.0
GOAL_DOCS_PER_CPU_S = 5 * JAVA_DOCS_PER_CPU_S
GOAL_RATIO = 0.9
GOAL_RSS_MB = 512.0
BULK, SEARCH = ord("B"), ord("S")
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")

MAPPING: dict[str, Any] = {
    "properties": {
        "@timestamp": {"type": "date"}, "host": {"type": "keyword"}, "service": {"type": "keyword"},
        "level": {"type": "keyword"}, "message": {"type": "text"}, "details": {"type": "text"},
        "trace_id": {"type": "keyword"}, "user_agent": {"type": "text"}, "tags": {"type": "keyword"},
        "http": {"properties": {"method": {"type": "keyword"}, "path": {"type": "keyword"},
                                "status": {"type": "integer"}, "bytes": {"type": "long"},
                                "duration_ms": {"type": "float"}}},
    }
}
WORDS = ("request", "user", "session", "timeout", "cache", "database", "query", "connection", "pool", "retry",
         "backend", "upstream", "latency", "error", "warning", "shard", "index", "replica", "node", "cluster",
         "memory", "disk", "queue", "worker", "thread", "token", "auth", "login", "payment", "order", "cart",
         "checkout", "inventory", "search", "result", "page", "image", "upload", "download", "stream", "buffer",
         "socket", "handshake", "certificate", "gateway", "service", "deploy", "rollout", "config", "secret",
         "metric", "trace", "span", "event", "batch", "job", "schedule", "cron", "lock", "mutex", "commit",
         "rollback", "transaction", "snapshot", "restore", "backup", "archive", "compress")
SEARCH_TERMS = ("timeout", "database", "retry", "checkout", "certificate", "snapshot", "latency", "gateway")


def machine() -> dict[str, object]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    return {"cpus": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1), "python": platform.python_version()}


def loadavg() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def machine_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICK, sum(values) / _TICK


def process_seconds(pid: int | None) -> float:
    """CPU seconds (user + system, every thread) the process has used so far (0 when it is gone)."""
    if not pid:
        return 0.0
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    return 0.0


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB; (0, 0) when the process is gone, or still this bench before its exec (Popen's vfork
    shares this process's address space until the exec: read then, VmHWM is this bench's, over a GB)."""
    rss = hwm = 0.0
    with contextlib.suppress(OSError):
        if b"workers.replay" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return rss, hwm
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return rss, hwm


# 1. The workload, generated once into one file per connection: records of [kind byte][4-byte length][body].

def _paragraphs(rng: random.Random, count: int, size: int) -> list[str]:
    out = []
    for _ in range(count):
        words: list[str] = []
        length = 0
        while length < size:
            word = rng.choice(WORDS)
            words.append(word)
            length += len(word) + 1
        out.append(" ".join(words))
    return out


def _generate_connection(args: tuple[Path, int, int, int, int, int]) -> tuple[int, int, int, int]:
    """Connection ``conn``'s file: its share of the ``total`` requests (request g is a search when g % 5 == 4).
    Returns (bulks, searches, documents, bytes)."""
    path, conn, connections, total, per_bulk, doc_bytes = args
    rng = random.Random(conn)
    messages = _paragraphs(rng, 400, max(200, doc_bytes - 850))
    details = _paragraphs(rng, 200, 400)
    agents = [f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0 Safari/537.36"
              for v in range(100, 130)]
    base_ms = 1_764_800_000_000
    bulks = searches = docs = size = 0
    with open(path, "wb") as out:
        for i, g in enumerate(range(conn, total, connections)):
            if g % 5 == 4:
                term = SEARCH_TERMS[g % len(SEARCH_TERMS)]
                body = orjson.dumps({"query": {"match": {"message": term}}, "size": 10})
                kind = SEARCH
                searches += 1
            else:
                lines = []
                for j in range(per_bulk):
                    n = rng.randrange(1 << 30)
                    doc = {
                        "@timestamp": base_ms + g * 1000 + j,
                        "host": f"web-{n % 40:02d}.eu-west-1.internal", "service": f"svc-{n % 12}",
                        "level": ("INFO", "INFO", "INFO", "WARN", "ERROR")[n % 5],
                        "message": messages[n % len(messages)], "details": details[(n >> 8) % len(details)],
                        "trace_id": f"{n:016x}{g:08x}{j:04x}", "user_agent": agents[n % len(agents)],
                        "tags": ["prod", f"zone-{n % 3}", f"build-{n % 97}"],
                        "http": {"method": ("GET", "POST", "PUT")[n % 3], "path": f"/api/v2/orders/{n % 100000}",
                                 "status": (200, 200, 201, 404, 500)[(n >> 4) % 5], "bytes": n % 50000,
                                 "duration_ms": (n % 10000) / 10},
                    }
                    lines.append(b'{"index":{"_id":"c%d-%d-%d"}}\n' % (conn, i, j))
                    lines.append(orjson.dumps(doc) + b"\n")
                body = b"".join(lines)
                kind = BULK
                bulks += 1
                docs += per_bulk
            out.write(bytes([kind]) + len(body).to_bytes(4, "big") + body)
            size += len(body)
    return bulks, searches, docs, size


def generate(workdir: Path, connections: int, total: int, per_bulk: int, doc_bytes: int) -> dict[str, int]:
    jobs = [(workdir / f"conn-{c}.bin", c, connections, total, per_bulk, doc_bytes) for c in range(connections)]
    with multiprocessing.get_context("fork").Pool(min(connections, os.cpu_count() or 1)) as pool:
        parts = pool.map(_generate_connection, jobs)
    return {"bulks": sum(p[0] for p in parts), "searches": sum(p[1] for p in parts),
            "documents": sum(p[2] for p in parts), "bytes": sum(p[3] for p in parts)}


# 2. and 3. The client: C connections, each sending its file's requests one after another.

async def _stream(base: str, index: str, path: Path, limit: int | None, out: dict[str, Any]) -> None:
    import aiohttp

    bulk_url, search_url = f"{base}/{index}/_bulk", f"{base}/{index}/_search"
    bulk_headers = {"Content-Type": "application/x-ndjson"}
    search_headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as session:
        with open(path, "rb") as source:
            sent = 0
            while limit is None or sent < limit:
                head = source.read(5)
                if not head:
                    break
                body = source.read(int.from_bytes(head[1:], "big"))
                bulk = head[0] == BULK
                began = time.time()
                out["first"] = min(out["first"], began)
                async with session.post(bulk_url if bulk else search_url, data=body,
                                        headers=bulk_headers if bulk else search_headers) as response:
                    data = await response.read()
                out["last"] = max(out["last"], time.time())
                sent += 1
                out["requests"] += 1
                if response.status >= 300:
                    out["errors"] += 1
                elif bulk:
                    if b'"errors":true' in data[:64]:
                        out["item_errors"] += 1
                    out["documents"] += body.count(b"\n") // 2


async def _clients(base: str, index: str, files: list[Path], limit: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"first": float("inf"), "last": 0.0, "requests": 0, "documents": 0, "errors": 0,
                           "item_errors": 0}
    await asyncio.gather(*(_stream(base, index, path, limit, out) for path in files))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["client_cpu_s"] = usage.ru_utime + usage.ru_stime
    out["seconds"] = out["last"] - out["first"]
    return out


def _client_process(args: tuple[str, str, list[Path], int | None], queue: Any) -> None:
    import uvloop

    queue.put(uvloop.run(_clients(*args)))


def watched_cpu(result: dict[str, Any], watch: dict[str, int | None], before: dict[str, float], machine_s: float,
                own_s: float) -> None:
    """CPU seconds of the watched processes (the target, Kafka) and of everything else on the machine (other
    sessions, the kernel's network work) over a run, into ``result``."""
    spent = {name: process_seconds(pid) - before[name] for name, pid in watch.items()}
    for name, seconds in spent.items():
        result[f"{name}_cpu_s"] = round(seconds, 1)
    result["machine_cpu_s"] = round(machine_s, 1)
    result["other_cpu_s"] = round(machine_s - own_s - sum(spent.values()), 1)


def run_clients(base: str, index: str, files: list[Path], limit: int | None = None,
                watch: dict[str, int | None] | None = None) -> dict[str, Any]:
    """The client in a fresh process (its CPU is its own), plus the machine's busy share over the run."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    watch = watch or {}
    before = {name: process_seconds(pid) for name, pid in watch.items()}
    busy0, total0 = machine_seconds()
    proc = ctx.Process(target=_client_process, args=((base, index, files, limit), queue))
    proc.start()
    result: dict[str, Any] = queue.get(timeout=3600)
    proc.join()
    busy1, total1 = machine_seconds()
    result["busy"] = round((busy1 - busy0) / max(1e-9, total1 - total0), 2)
    watched_cpu(result, watch, before, busy1 - busy0, result["client_cpu_s"])
    return result


# The proxy and the replayer as processes.

def wait_port(port: int, timeout_s: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port} after {timeout_s}s")


def start_proxy(destination: str, brokers: str, topic: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port, admin = free_port(), free_port()
    log = open(workdir / "proxy.log", "wb")  # noqa: SIM115 (lives as long as the process)
    proc = subprocess.Popen([sys.executable, "-m", "workers.capture", "--listen", f"127.0.0.1:{port}",
                             "--destination", destination, "--kafka-brokers", brokers, "--kafka-topic", topic,
                             "--metrics-listen", f"127.0.0.1:{admin}", "--log-level", "warning"],
                            stdout=log, stderr=log)
    wait_port(port)
    return proc, port


def run_replayer(brokers: str, topic: str, target: str, group: str, workdir: Path, *, idle_exit_s: float | None,
                 max_seconds: float | None, watch: dict[str, int | None]) -> dict[str, Any]:
    """A replayer process sampled every 0.2 s (its CPU, memory and status file) until it exits, or until
    ``max_seconds`` (then SIGTERM); what it did and what it cost."""
    status_path = workdir / f"{group}.status.json"
    command = [sys.executable, "-m", "workers.replay", "--kafka-brokers", brokers, "--kafka-topic", topic,
               "--target-endpoint", target, "--group-id", group, "--max-speed", "--status-file", str(status_path),
               "--json", "--log-level", "warning"]
    if idle_exit_s is not None:
        command += ["--exit-when-idle-s", str(idle_exit_s)]
    stdout, stderr = open(workdir / f"{group}.out", "wb"), open(workdir / f"{group}.log", "wb")  # noqa: SIM115
    busy0, total0 = machine_seconds()
    before = {name: process_seconds(pid) for name, pid in watch.items()}
    started = time.time()
    proc = subprocess.Popen(command, stdout=stdout, stderr=stderr)
    samples: list[tuple[float, float]] = []  # (time, replayer CPU seconds)
    statuses: dict[float, dict[str, Any]] = {}  # the status file's own time -> its content
    peak_rss = peak_hwm = 0.0
    max_buffered = 0
    timeline: list[tuple[float, float, float]] = []  # every ~5 s: (seconds, RSS MB, buffered MB)
    termed = False
    while True:
        pid, wait_status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        now = time.time()
        samples.append((now, process_seconds(proc.pid)))
        rss, hwm = memory_mb(proc.pid)
        peak_rss, peak_hwm = max(peak_rss, rss), max(peak_hwm, hwm)
        status = read_status(str(status_path))
        if status is not None and "time" in status:
            statuses.setdefault(float(status["time"]), status)
            max_buffered = max(max_buffered, int(status.get("buffered_bytes", 0)))
        if not timeline or now - started - timeline[-1][0] >= 5:
            buffered = int(status.get("buffered_bytes", 0)) / 1e6 if status else 0.0
            timeline.append((round(now - started, 1), round(rss, 1), round(buffered, 1)))
        if max_seconds is not None and not termed and now - started > max_seconds:
            proc.send_signal(signal.SIGTERM)
            termed = True
        time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(wait_status)
    stdout.close()
    stderr.close()
    busy1, total1 = machine_seconds()
    final: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        final = json.loads((workdir / f"{group}.out").read_text() or "{}")
    if not final:
        final = read_status(str(status_path)) or {}
    if proc.returncode != 0:
        log_tail = (workdir / f"{group}.log").read_text()[-3000:]
        raise SystemExit(f"replayer exited {proc.returncode}:\n{log_tail}")
    stats = final.get("stats", {})
    documents = int(stats.get("documents", 0))
    ordered = [statuses[t] for t in sorted(statuses)]
    # The window: the last status before any document, to the first status with every document.
    begin = next((float(s["time"]) for s in reversed(ordered) if s["stats"]["documents"] == 0), started)
    end = next((float(s["time"]) for s in ordered if s["stats"]["documents"] >= documents), time.time())
    window = max(1e-9, end - begin)

    def cpu_at(moment: float) -> float:
        return min(samples, key=lambda s: abs(s[0] - moment))[1] if samples else 0.0

    window_cpu = cpu_at(end) - cpu_at(begin)
    # Steady rate: between the first and the last status that show progress, both inside the window.
    moving = [s for s in ordered if 0 < s["stats"]["documents"] < documents]
    steady = None
    if len(moving) >= 2:
        d = moving[-1]["stats"]["documents"] - moving[0]["stats"]["documents"]
        steady = d / max(1e-9, float(moving[-1]["time"]) - float(moving[0]["time"]))
    life_cpu = usage.ru_utime + usage.ru_stime
    result: dict[str, Any] = {
        "documents": documents, "transactions": stats.get("transactions"), "dead_letters": stats.get("dead_letters"),
        "retries": stats.get("retries"), "requests_sent": stats.get("requests_sent"),
        "seconds": round(window, 2), "docs_per_s": round(documents / window, 1),
        "steady_docs_per_s": round(steady, 1) if steady else None,
        "cpu_window_s": round(window_cpu, 2), "cpu_life_s": round(life_cpu, 2),
        "docs_per_cpu_s": round(documents / window_cpu, 1) if window_cpu > 0 else None,
        "docs_per_cpu_s_life": round(documents / life_cpu, 1) if life_cpu > 0 else None,
        # VmHWM of the replayer's own address space. Not wait4's ru_maxrss: Linux folds into it the high-water mark
        # of the address space exec replaced, here this bench's own (vfork), over a GB after producing the backlog.
        "peak_rss_mb": round(max(peak_hwm, peak_rss), 1), "rusage_maxrss_mb": round(usage.ru_maxrss / 1024, 1),
        "max_buffered_mb": round(max_buffered / 1e6, 1), "rss_timeline": timeline,
        "process_seconds": round(time.time() - started, 1), "stopped_by_sigterm": termed,
        "busy": round((busy1 - busy0) / max(1e-9, total1 - total0), 2),
        "comparisons": stats.get("comparisons"),
    }
    watched_cpu(result, watch, before, busy1 - busy0, life_cpu)
    return result


# Indices.

def recreate(client: OpenSearch, index: str) -> None:
    if client.indices.exists(index=index):
        client.indices.delete(index=index)
    client.indices.create(index=index, body={"settings": {"number_of_shards": 1, "number_of_replicas": 0},
                                             "mappings": MAPPING})


def count(client: OpenSearch, index: str) -> int:
    client.indices.refresh(index=index)
    return int(client.count(index=index)["count"])


# 4. The backlog: capture records as the proxy writes them, made of recorded transactions.

def templates(brokers: str, topic: str, wanted: int) -> list[Transaction]:
    found: list[Transaction] = []
    for event in read_transactions(brokers, topic):
        if isinstance(event, Transaction) and event.response is not None:
            found.append(event)
            if len(found) >= wanted:
                break
    return found


def produce_backlog(brokers: str, topic: str, samples: list[Transaction], gigabytes: float,
                    connections: int = 64) -> dict[str, Any]:
    """About ``gigabytes`` of records: an open record per connection, then per transaction a request record and
    a response record (one part each), the request pointed at the backlog index."""
    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 50, "batch.size": 4 << 20,
                         "message.max.bytes": 16 << 20, "queue.buffering.max.kbytes": 1 << 20,
                         "acks": "all", "enable.idempotence": True})
    node = "bench"
    now = time.time_ns()
    for c in range(connections):
        conn = f"{node}.backlog.{c}"
        producer.produce(topic, key=conn, value=encode(Kind.OPEN, {"node": node, "conn": conn, "t": now,
                                                                   "client": f"127.0.0.1:{40000 + c}",
                                                                   "listener": "127.0.0.1:9200", "tls": False}))
    began = time.monotonic()
    limit = int(gigabytes * 1e9)
    written = transactions = 0
    seqs = [0] * connections
    old = f" /{INDEX}/".encode()
    new = f" /{BACKLOG_INDEX}/".encode()
    while written < limit:
        tx = samples[transactions % len(samples)]
        c = transactions % connections
        seqs[c] += 1
        conn = f"{node}.backlog.{c}"
        request = tx.request.replace(old, new, 1)
        response = tx.response or b""
        stamp = now + transactions * 1000
        base = {"node": node, "conn": conn, "seq": seqs[c], "part": 0, "offset": 0, "last": True}
        req_meta = base | {"received": stamp, "method": tx.method, "target": tx.target.replace(INDEX, BACKLOG_INDEX)}
        resp_meta = base | {"status": tx.status, "received": stamp, "forwarded": stamp + 100_000,
                            "response_started": stamp + 200_000, "response_finished": stamp + 300_000,
                            "request_bytes": len(request), "response_bytes": len(response)}
        for value in (encode(Kind.REQUEST, req_meta, request), encode(Kind.RESPONSE, resp_meta, response)):
            while True:
                try:
                    producer.produce(topic, key=conn, value=value)
                    break
                except BufferError:
                    producer.poll(0.1)
            written += len(value)
        producer.poll(0)
        transactions += 1
    remaining = producer.flush(300)
    if remaining:
        raise SystemExit(f"backlog: {remaining} records not delivered")
    seconds = time.monotonic() - began
    return {"bytes": written, "transactions": transactions, "produce_seconds": round(seconds, 1),
            "produce_mb_per_s": round(written / 1e6 / seconds, 1)}


def delete_topic(brokers: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": brokers})
    for future in admin.delete_topics([topic], operation_timeout=60).values():
        with contextlib.suppress(Exception):
            future.result(60)


# The run.

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000,
                        help="requests recorded, 80%% bulk, 20%% search (default 5000: 400,000 documents)")
    parser.add_argument("--connections", type=int, default=8, help="client connections (default 8)")
    parser.add_argument("--docs-per-bulk", type=int, default=100)
    parser.add_argument("--doc-bytes", type=int, default=2400, help="approximate JSON size of a document")
    parser.add_argument("--warmup-share", type=float, default=0.1,
                        help="share of each connection's requests sent to warm the target up (default 0.1)")
    parser.add_argument("--rounds", type=int, default=1, help="ceiling and replay rounds, order rotated (default 1)")
    parser.add_argument("--backlog-gb", type=float, default=2.0, help="backlog size in GB (default 2; 0: skip)")
    parser.add_argument("--backlog-seconds", type=float, default=60.0, help="seconds to sample it (default 60)")
    parser.add_argument("--keep", action="store_true", help="leave the replaybench sandbox running")
    ns = parser.parse_args()

    began = time.monotonic()
    host = machine() | {"loadavg_start": loadavg()}
    workdir = Path(tempfile.mkdtemp(prefix="replaybench-"))
    files = [workdir / f"conn-{c}.bin" for c in range(ns.connections)]
    print(f"generating {ns.requests} requests for {ns.connections} connections in {workdir} ...", flush=True)
    workload = generate(workdir, ns.connections, ns.requests, ns.docs_per_bulk, ns.doc_bytes)
    workload["doc_bytes_avg"] = round((workload["bytes"] - 60 * workload["searches"]) / workload["documents"])
    print(f"  {workload}", flush=True)
    print("starting sandbox 'replaybench' (Elasticsearch 7.10.2 source, OpenSearch 2.19 target, Kafka; "
          "1 GB heaps) ...", flush=True)
    state = manager.up(manager.UpRequest(kafka=True, heap="1g"), name=SANDBOX)
    source_url, target_url = state.engines["source"].url, state.engines["target"].url
    watch = {"target": state.engines["target"].pid, "kafka": state.kafka.pid if state.kafka else None}
    assert state.kafka is not None
    brokers = state.kafka.bootstrap
    source, target = OpenSearch(source_url, timeout=300), OpenSearch(target_url, timeout=300)
    topic = f"replaybench-capture-{int(time.time())}"
    backlog_topic = f"{topic}-backlog"
    proxy: subprocess.Popen[bytes] | None = None
    rounds: list[dict[str, Any]] = []
    backlog: dict[str, Any] = {}
    try:
        recreate(source, INDEX)
        proxy, proxy_port = start_proxy(source_url, brokers, topic, workdir)
        print(f"recording through the capture proxy (topic {topic}) ...", flush=True)
        recorded = run_clients(f"http://127.0.0.1:{proxy_port}", INDEX, files)
        proxy.send_signal(signal.SIGTERM)
        proxy.wait(60)
        recorded["source_count"] = count(source, INDEX)
        print(f"  {fmt(recorded)}", flush=True)
        if recorded["source_count"] != workload["documents"] or recorded["errors"]:
            raise SystemExit(f"recording incomplete: {recorded}")

        print("warming the target up ...", flush=True)
        recreate(target, WARMUP_INDEX)
        per_conn = ns.requests // ns.connections
        warm = run_clients(target_url, WARMUP_INDEX, files, max(1, int(per_conn * ns.warmup_share)))
        target.indices.delete(index=WARMUP_INDEX)
        print(f"  {fmt(warm)}", flush=True)

        for r in range(ns.rounds):
            order = ("ceiling", "replay") if r % 2 == 0 else ("replay", "ceiling")
            row: dict[str, Any] = {"round": r + 1, "order": list(order), "loadavg_before": loadavg()}
            for contender in order:
                recreate(target, INDEX)
                time.sleep(1)
                print(f"round {r + 1}: {contender} ...", flush=True)
                if contender == "ceiling":
                    result = run_clients(target_url, INDEX, files, watch=watch)
                    result["docs_per_s"] = round(result["documents"] / max(1e-9, result["seconds"]), 1)
                else:
                    result = run_replayer(brokers, topic, target_url, f"replaybench-{r}-{time.time_ns()}", workdir,
                                          idle_exit_s=2.0, max_seconds=None, watch=watch)
                result["target_count"] = count(target, INDEX)
                print(f"  {fmt(result)}", flush=True)
                if result["target_count"] != workload["documents"]:
                    print(f"  WARNING: the target holds {result['target_count']} documents, expected "
                          f"{workload['documents']}", flush=True)
                row[contender] = result
            row["ratio"] = round(row["replay"]["docs_per_s"] / max(1e-9, row["ceiling"]["docs_per_s"]), 3)
            rounds.append(row)

        if ns.backlog_gb > 0:
            print(f"producing a {ns.backlog_gb:g} GB backlog into {backlog_topic} ...", flush=True)
            samples = templates(brokers, topic, 250)
            backlog = produce_backlog(brokers, backlog_topic, samples, ns.backlog_gb)
            print(f"  {backlog}", flush=True)
            recreate(target, BACKLOG_INDEX)
            print(f"replaying it for {ns.backlog_seconds:g} s, sampling the replayer's memory ...", flush=True)
            group = f"replaybench-backlog-{time.time_ns()}"
            backlog["replay"] = run_replayer(brokers, backlog_topic, target_url, group, workdir, idle_exit_s=2.0,
                                             max_seconds=ns.backlog_seconds, watch=watch)
            print(f"  {fmt(backlog['replay'])}", flush=True)
            delete_topic(brokers, backlog_topic)
    finally:
        if proxy is not None and proxy.poll() is None:
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(60)
        if not ns.keep:
            manager.down(SANDBOX)
        shutil.rmtree(workdir, ignore_errors=True)
    host["loadavg_end"] = loadavg()
    report(host, vars(ns), workload, recorded, warm, rounds, backlog, time.monotonic() - began)


def fmt(result: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in result.items() if k not in ("first", "last", "rss_timeline"))


def report(host: dict[str, Any], flags: dict[str, Any], workload: dict[str, int], recorded: dict[str, Any],
           warm: dict[str, Any], rounds: list[dict[str, Any]], backlog: dict[str, Any], seconds: float) -> None:
    lines = [
        f"replayer benchmark: {host['cpus']} CPUs, {host['memory_gb']} GB, Python {host['python']}; load average "
        f"{host['loadavg_start']} at the start, {host['loadavg_end']} at the end (other work shares the machine)",
        f"workload: {workload['bulks']} _bulk of {flags['docs_per_bulk']} documents (~{workload['doc_bytes_avg']} "
        f"bytes each) + {workload['searches']} searches = {workload['documents']} documents, "
        f"{workload['bytes'] / 1e6:.0f} MB of bodies, {flags['connections']} connections",
        f"recorded through the capture proxy onto Elasticsearch 7.10.2 in {recorded['seconds']:.1f} s "
        f"({recorded['documents'] / max(1e-9, recorded['seconds']):.0f} docs/s); source count "
        f"{recorded['source_count']}",
        f"target warm-up: {warm['requests']} requests, {warm['documents']} documents in {warm['seconds']:.1f} s",
        "",
        "ceiling = aiohttp, the same connections sending the same bodies straight to OpenSearch 2.19; replay = "
        "python -m workers.replay --max-speed (window from its status file: <= ~2 s too long, a lower bound); client "
        "CPU s: the client's, or the replayer's over that window; target, kafka and other CPU s: over each one's whole "
        "run (the replayer's life); other = the machine's busy CPU less the contender, the target and Kafka (other "
        "sessions on this VM, the kernel's loopback work)",
        f"{'round':>5} {'contender':<8} {'seconds':>8} {'docs/s':>9} {'steady':>9} {'client CPU s':>12} "
        f"{'docs/CPU-s':>10} {'life CPU s':>10} {'peak RSS MB':>11} {'target CPU s':>12} {'kafka CPU s':>11} "
        f"{'other CPU s':>11} {'busy':>5} {'count':>8}",
    ]
    for row in rounds:
        c, rp = row["ceiling"], row["replay"]
        lines.append(f"{row['round']:>5} {'ceiling':<8} {c['seconds']:>8.1f} {c['docs_per_s']:>9.0f} {'-':>9} "
                     f"{c['client_cpu_s']:>12.1f} {c['documents'] / max(1e-9, c['client_cpu_s']):>10.0f} {'-':>10} "
                     f"{'-':>11} {c['target_cpu_s']:>12.1f} {c['kafka_cpu_s']:>11.1f} {c['other_cpu_s']:>11.1f} "
                     f"{c['busy']:>5.2f} {c['target_count']:>8}")
        lines.append(f"{row['round']:>5} {'replay':<8} {rp['seconds']:>8.1f} {rp['docs_per_s']:>9.0f} "
                     f"{rp['steady_docs_per_s'] or 0:>9.0f} {rp['cpu_window_s']:>12.1f} "
                     f"{rp['docs_per_cpu_s'] or 0:>10.0f} "
                     f"{rp['cpu_life_s']:>10.1f} {rp['peak_rss_mb']:>11.1f} {rp['target_cpu_s']:>12.1f} "
                     f"{rp['kafka_cpu_s']:>11.1f} {rp['other_cpu_s']:>11.1f} {rp['busy']:>5.2f} "
                     f"{rp['target_count']:>8}")
    lines.append("")
    ratios = [row["ratio"] for row in rounds]
    per_cpu = [row["replay"]["docs_per_cpu_s"] or 0 for row in rounds]
    lines.append(f"goal 1, replay >= {GOAL_RATIO} x ceiling docs/s: ratio {ratios} -> "
                 f"{'met' if min(ratios) >= GOAL_RATIO else 'NOT met'}")
    lines.append(f"goal 2, >= {GOAL_DOCS_PER_CPU_S:.0f} docs per replayer CPU-second (Java replayer: "
                 f"{JAVA_DOCS_PER_CPU_S:.0f}/vCPU): {per_cpu} -> "
                 f"{'met' if min(per_cpu) >= GOAL_DOCS_PER_CPU_S else 'NOT met'}"
                 f" ({min(per_cpu) / JAVA_DOCS_PER_CPU_S:.1f} x the Java replayer's docs per CPU)")
    if backlog:
        b = backlog["replay"]
        lines.append(f"goal 3, RSS <= {GOAL_RSS_MB:.0f} MB with a {backlog['bytes'] / 1e9:.2f} GB backlog "
                     f"({backlog['transactions']} transactions, produced at {backlog['produce_mb_per_s']} MB/s): "
                     f"peak {b['peak_rss_mb']} MB over {b['process_seconds']} s ({b['documents']} documents "
                     f"replayed, {b['docs_per_s']} docs/s, buffered up to {b['max_buffered_mb']} MB) -> "
                     f"{'met' if b['peak_rss_mb'] <= GOAL_RSS_MB else 'NOT met'}")
        lines.append("  its RSS over time (seconds, RSS MB, buffered MB): "
                     + " ".join(f"{t:g}s:{r:.0f}/{m:.0f}" for t, r, m in b["rss_timeline"]))
    lines.append(f"total run time: {seconds:.0f} s")
    text = "\n".join(lines)
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replay.txt").write_text(text + "\n")
    (RESULTS / "replay.json").write_text(json.dumps({
        "machine": host, "flags": flags, "workload": workload, "recorded": recorded, "warmup": warm,
        "rounds": rounds, "backlog": backlog, "goals": {"ratio": GOAL_RATIO, "docs_per_cpu_s": GOAL_DOCS_PER_CPU_S,
                                                        "rss_mb": GOAL_RSS_MB}, "seconds": round(seconds)},
        indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
