"""Capture proxy overhead: added latency and throughput against going direct and against nginx, in one run.

Backends and contenders, back to back on the same machine and data:
  direct  the sandbox's Elasticsearch 7.10.2 source (own sandbox "capbench", 1 GB heap);
  nginx   nginx (Debian package) as a plain reverse proxy to it, upstream keep-alive, no capture;
  proxy   this capture proxy (python -m workers.capture, uvloop, defaults), capturing to the sandbox's Kafka
          (acks=all);
  early   on the writes only: the same proxy with --bench-forward-before-ack, the former forward mode (a write
          goes on to the source at once and only its response waits for the acknowledgement), so that one run
          gives what release-after-ack costs;
  base    with --baseline DIR: the proxy of another checkout (e.g. `git worktree add /tmp/base HEAD~1`), on every
          workload, so that one run compares a change with what came before on the same machine state.
Workloads: a small search as GET and as POST (both reads: captured asynchronously; clients send searches as
POST), a small document write (POST /index/_doc: its last bytes reach the source once Kafka acknowledged its
capture, release-after-ack), and 1 MB _bulk requests (writes, likewise).
Each at 1, 16 and 64 keep-alive connections, from a load generator in its own process. Each cell also gives the
CPU per request of the contender, the source, the Kafka broker and the whole machine, and how busy both cores were:
every contender here shares 2 cores with the source, so throughput follows where the CPU goes.

On 2 shared cores one measurement swings by a third (the source's merges, JIT, the scheduler), so each cell is
measured in several rounds, the contenders in a rotated order each round, and the medians are reported.

    flock /tmp/cpu-heavy.lock .venv/bin/python bench/capture_proxy.py [--seconds 4] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from opensearchpy import OpenSearch, helpers

from migration_pipeline.sandbox import manager
from migration_pipeline.sandbox.processes import free_port

RESULTS = Path(__file__).parent / "results"
SANDBOX = "capbench"
INDEX = "bench-search"
BULK_INDEX = "bench-bulk"
WRITE_INDEX = "bench-write"
WRITE_BODY = b'{"title":"small write","n":1}'
CONCURRENCY = (1, 16, 64)
SEARCH_BODY = b'{"query":{"match":{"title":"alpha"}},"size":5}'
WORKLOADS = ("search GET", "search POST", "write POST", "bulk 1 MB")
# The workloads that change data: the only ones where the "early" contender differs from "proxy".
WRITES = ("write POST", "bulk 1 MB")


def machine() -> dict[str, object]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    return {"cpus": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1), "python": platform.python_version()}


def bulk_body() -> bytes:
    """About 1 MB of NDJSON; fixed ids, so repeated requests overwrite rather than grow the index."""
    lines = []
    size, i = 0, 0
    while size < 1_000_000:
        doc = json.dumps({"title": f"doc {i}", "n": i, "text": "lorem ipsum dolor sit amet " * 36}).encode()
        line = b'{"index":{"_id":"%d"}}\n' % i + doc + b"\n"
        lines.append(line)
        size += len(line)
        i += 1
    return b"".join(lines)


def requests_for(host: str, bulk: bytes) -> dict[str, bytes]:
    head = f"Host: {host}\r\nContent-Type: application/json\r\n"
    return {
        "search GET": f"GET /{INDEX}/_search?q=title:alpha&size=5 HTTP/1.1\r\n{head}\r\n".encode(),
        "search POST": f"POST /{INDEX}/_search HTTP/1.1\r\n{head}Content-Length: {len(SEARCH_BODY)}\r\n\r\n".encode()
        + SEARCH_BODY,
        "write POST": f"POST /{WRITE_INDEX}/_doc HTTP/1.1\r\n{head}Content-Length: {len(WRITE_BODY)}\r\n\r\n".encode()
        + WRITE_BODY,
        "bulk 1 MB": f"POST /{BULK_INDEX}/_bulk HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-ndjson\r\n"
                     f"Content-Length: {len(bulk)}\r\n\r\n".encode() + bulk,
    }


# The load generator: keep-alive connections, one request in flight on each, latency per request.

async def _client(port: int, request: bytes, warm_until: float, stop_at: float, out: list[int],
                  errors: list[int], counted: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    try:
        while True:
            began = time.perf_counter_ns()
            if began / 1e9 >= stop_at:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            lower = head.lower()
            at = lower.find(b"content-length:")
            if at >= 0:
                length = int(lower[at + 15:lower.find(b"\r\n", at)])
            if length:
                await reader.readexactly(length)
            done = time.perf_counter_ns()
            counted[0] += 1
            if began / 1e9 >= warm_until:
                out.append(done - began)
                if not head.startswith(b"HTTP/1.1 2"):
                    errors.append(int(head[9:12]))
            if b"connection: close" in lower:  # a server may end keep-alive after N requests: reconnect
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    finally:
        writer.close()


async def _load(port: int, request: bytes, connections: int, warmup_s: float, seconds: float) -> dict[str, Any]:
    now = time.perf_counter()
    warm_until, stop_at = now + warmup_s, now + warmup_s + seconds
    latencies: list[int] = []
    errors: list[int] = []
    counted = [0]
    await asyncio.gather(*(_client(port, request, warm_until, stop_at, latencies, errors, counted)
                           for _ in range(connections)))
    latencies.sort()
    if not latencies:
        return {"rps": 0.0, "p50_ms": float("nan"), "p99_ms": float("nan"), "errors": len(errors),
                "all_requests": counted[0]}
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    elapsed = (time.perf_counter() - now) - warmup_s  # includes the requests still in flight at the end
    return {"rps": round(len(latencies) / max(elapsed, seconds), 1), "p50_ms": q[49] / 1e6, "p99_ms": q[98] / 1e6,
            "errors": len(errors), "requests": len(latencies), "all_requests": counted[0]}


def _load_process(args: tuple[int, bytes, int, float, float], queue: Any) -> None:
    import uvloop

    queue.put(uvloop.run(_load(*args)))


def run_load(port: int, request: bytes, connections: int, warmup_s: float, seconds: float) -> dict[str, Any]:
    """One measurement in a fresh process, so the generator's own state never carries over."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_load_process, args=((port, request, connections, warmup_s, seconds), queue))
    proc.start()
    result: dict[str, Any] = queue.get(timeout=warmup_s + seconds + 120)
    proc.join()
    return result


# Where the machine's CPU goes: the throughput of every contender here is bounded by 2 shared cores.

_TICK = os.sysconf("SC_CLK_TCK")


def process_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system, every thread) the processes have used so far."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def machine_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return (sum(values) - idle) / _TICK, sum(values) / _TICK


def children_of(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def measured_load(port: int, request: bytes, connections: int, warmup_s: float, seconds: float,
                  processes: dict[str, list[int]]) -> dict[str, Any]:
    """``run_load`` plus the CPU per request of each process group and of the whole machine, over the run."""
    before = {name: process_seconds(pids) for name, pids in processes.items()}
    busy0, total0 = machine_seconds()
    result = run_load(port, request, connections, warmup_s, seconds)
    busy1, total1 = machine_seconds()
    # Over the whole run, warm-up included: every request of the run is counted for it.
    n = max(1, result.pop("all_requests"))
    for name, pids in processes.items():
        result[f"cpu_{name}_us"] = (process_seconds(pids) - before[name]) / n * 1e6
    result["cpu_machine_us"] = (busy1 - busy0) / n * 1e6
    result["busy"] = (busy1 - busy0) / max(1e-9, total1 - total0)
    return result


# The contenders.

NGINX_CONF = """
user root;
worker_processes auto;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_max_body_size 0;
    keepalive_requests 10000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream source {{ server {upstream}; keepalive 128; keepalive_requests 10000000; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://source;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


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


def start_nginx(upstream: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("nginx is not installed: apt-get install -y nginx")
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, upstream=upstream, port=port))
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(workdir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port)
    deadline = time.monotonic() + 10
    while not children_of(proc.pid) and time.monotonic() < deadline:  # its workers, whose CPU is measured
        time.sleep(0.05)
    return proc, port


def start_proxy(destination: str, brokers: str, topic: str, workdir: Path, extra: list[str],
                cwd: Path | None = None) -> tuple[subprocess.Popen[bytes], int, list[int]]:
    """A proxy process (from the checkout ``cwd``, default this one): its process, port and metrics port."""
    port, admin = free_port(), free_port()
    log = open(workdir / f"proxy-{port}.log", "wb")  # noqa: SIM115 (lives as long as the process)
    proc = subprocess.Popen([sys.executable, "-m", "workers.capture", "--listen", f"127.0.0.1:{port}",
                             "--destination", destination, "--kafka-brokers", brokers, "--kafka-topic", topic,
                             "--metrics-listen", f"127.0.0.1:{admin}", "--log-level", "warning", *extra],
                            stdout=log, stderr=log, cwd=cwd)
    wait_port(port)
    wait_port(admin)
    return proc, port, [admin]


def uncaptured(admins: list[int]) -> float:
    total = 0.0
    for port in admins:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        total += sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                     if line.startswith("capture_proxy_uncaptured_requests_total"))
    return total


def topic_records(brokers: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "bench-count"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions)
    finally:
        consumer.close()


def prepare(source_url: str) -> None:
    client = OpenSearch(source_url, timeout=120)
    for index in (INDEX, BULK_INDEX, WRITE_INDEX):
        if client.indices.exists(index=index):
            client.indices.delete(index=index)
    client.indices.create(index=INDEX, body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    words = ["alpha", "beta", "gamma", "delta", "epsilon"]
    helpers.bulk(client, ({"_index": INDEX, "_id": str(i), "_source": {"title": f"{words[i % 5]} {i}", "n": i}}
                          for i in range(5000)), refresh=True)
    for index in (BULK_INDEX, WRITE_INDEX):
        client.indices.create(index=index, body={"settings": {"number_of_shards": 1, "number_of_replicas": 0,
                                                               "refresh_interval": "30s"}})
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per cell (default 4)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per cell (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per cell, medians reported (default 3)")
    parser.add_argument("--keep", action="store_true", help="leave the capbench sandbox running")
    parser.add_argument("--workload", action="append", choices=WORKLOADS, metavar="NAME",
                        help=f"measure only this workload (repeatable; default all: {', '.join(WORKLOADS)})")
    parser.add_argument("--connections", action="append", type=int, metavar="N",
                        help="measure only at this concurrency (repeatable; default 1, 16 and 64)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also measure the proxy of this checkout (contender 'base'), on every workload")
    ns = parser.parse_args()

    print("starting sandbox 'capbench' (Elasticsearch 7.10.2 source, 1 GB heap, Kafka) ...", flush=True)
    state = manager.up(manager.UpRequest(target=None, kafka=True, heap="1g",
                                         source_settings={"indexing_pressure.memory.limit": "50%"}), name=SANDBOX)
    source = state.engines["source"].url
    assert state.kafka is not None
    brokers = state.kafka.bootstrap
    upstream = source.removeprefix("http://")
    prepare(source)
    topic = f"bench-capture-{int(time.time())}"
    workdir = Path(tempfile.mkdtemp(prefix="capbench-"))
    os.chmod(workdir, 0o755)
    nginx, nginx_port = start_nginx(upstream, workdir)
    requests = {name: request for name, request in requests_for("127.0.0.1", bulk_body()).items()
                if not ns.workload or name in ns.workload}
    proxy, proxy_port, admins = start_proxy(source, brokers, topic, workdir, [])
    ports = {"direct": int(upstream.rsplit(":", 1)[1]), "nginx": nginx_port, "proxy": proxy_port}
    source_pid, kafka_pid = state.engines["source"].pid, state.kafka.pid
    processes = {"source": [source_pid] if source_pid else [], "kafka": [kafka_pid] if kafka_pid else [],
                 "nginx": [nginx.pid, *children_of(nginx.pid)], "proxy": [proxy.pid]}
    early: subprocess.Popen[bytes] | None = None
    if any(name in WRITES for name in requests):
        early, ports["early"], early_admins = start_proxy(source, brokers, topic, workdir,
                                                          ["--bench-forward-before-ack"])
        admins += early_admins
        processes["early"] = [early.pid]
    base: subprocess.Popen[bytes] | None = None
    if ns.baseline:
        base, ports["base"], base_admins = start_proxy(source, brokers, topic, workdir, [], ns.baseline.resolve())
        admins += base_admins
        processes["base"] = [base.pid]
    concurrency = tuple(ns.connections or CONCURRENCY)
    rows: list[dict[str, Any]] = []
    began = time.monotonic()
    try:
        print("warming up the source and Kafka (JIT), direct and through the proxy ...", flush=True)
        for workload, request in requests.items():
            run_load(ports["direct"], request, 16, 0.0, 3.0)
            run_load(ports["proxy"], request, 16, 0.0, 3.0)
            if "base" in ports:
                run_load(ports["base"], request, 16, 0.0, 3.0)
            if workload in WRITES:
                run_load(ports["early"], request, 16, 0.0, 3.0)
        for workload, request in requests.items():
            names = [name for name in ports if name != "early" or workload in WRITES]
            # 1 MB bulk requests take up to seconds under load: a longer window for a fair count.
            scale = 2.5 if workload.startswith("bulk") else 1.0
            for connections in concurrency:
                results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
                for round_ in range(ns.rounds):
                    shift = round_ % len(names)
                    for contender in names[shift:] + names[:shift]:
                        results[contender].append(measured_load(ports[contender], request, connections,
                                                                ns.warmup * scale, ns.seconds * scale, processes))
                for contender in names:
                    result = median_of(results[contender])
                    rows.append({"workload": workload, "connections": connections, "contender": contender,
                                 **result})
                    print(f"  {workload:<12} c={connections:<3} {contender:<8} {result['rps']:>9.1f} req/s  "
                          f"p50 {result['p50_ms']:7.3f} ms  p99 {result['p99_ms']:8.3f} ms  "
                          f"rounds {result['rounds_rps']}  errors {result['errors']}  "
                          f"CPU/req {own_cpu(result, contender)} us, machine {result['cpu_machine_us']:.0f} us, "
                          f"busy {result['busy']:.2f}", flush=True)
        missed = uncaptured(admins)
        for process in (proxy, early, base):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait(60)
        records = topic_records(brokers, topic)
    finally:
        for process in (proxy, early, base):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(60)
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(30)
        if not ns.keep:
            manager.down(SANDBOX)
    report(rows, machine(), time.monotonic() - began, missed, records)


def median_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell's rounds: the median of each figure, every round's req/s, and all errors."""
    cpu = {key: statistics.median(r[key] for r in results) for key in results[0] if key.startswith("cpu_")}
    return {"rps": round(statistics.median(r["rps"] for r in results), 1),
            "p50_ms": statistics.median(r["p50_ms"] for r in results),
            "p99_ms": statistics.median(r["p99_ms"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "rounds_rps": [r["rps"] for r in results],
            **cpu, "busy": statistics.median(r["busy"] for r in results)}


def own_cpu(row: dict[str, Any], contender: str) -> str:
    """The contender's own CPU per request in microseconds ("-" going direct)."""
    key = f"cpu_{contender}_us"
    return f"{row[key]:.0f}" if key in row else "-"


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def report(rows: list[dict[str, Any]], host: dict[str, object], seconds: float, missed: float,
           records: int) -> None:
    index = {(r["workload"], r["connections"], r["contender"]): r for r in rows}
    lines = [
        f"capture proxy benchmark: {host['cpus']} CPUs, {host['memory_gb']} GB, Python {host['python']}; "
        "backend: the sandbox's Elasticsearch 7.10.2 source (not a stub server)",
        "load generator: Python/uvloop, one process, keep-alive connections, one request in flight each",
        "nginx: worker_processes auto (2); proxy: one process, defaults; early (writes only): the proxy with "
        "--bench-forward-before-ack, the former forward mode (write forwarded before its acknowledgement)",
        "each figure: the median of the rounds (contenders in a rotated order each round)",
        "added = contender's percentile minus direct's percentile at the same concurrency",
        "CPU per request (us, user + system, all threads): own = the proxy or nginx, source = Elasticsearch, "
        "kafka = the broker, machine = all of it (the load generator too); busy = share of both cores in use",
        "",
        f"{'workload':<12} {'conn':>4} {'contender':<9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'+p50 ms':>8} {'+p99 ms':>8} {'vs nginx':>8} {'errors':>6} {'own':>5} {'source':>6} {'kafka':>5} "
        f"{'machine':>7} {'busy':>5}",
    ]
    for r in rows:
        direct = index[(r["workload"], r["connections"], "direct")]
        nginx = index[(r["workload"], r["connections"], "nginx")]
        added50 = r["p50_ms"] - direct["p50_ms"] if r["contender"] != "direct" else 0.0
        added99 = r["p99_ms"] - direct["p99_ms"] if r["contender"] != "direct" else 0.0
        ratio = r["rps"] / nginx["rps"] if nginx["rps"] else float("nan")
        lines.append(f"{r['workload']:<12} {r['connections']:>4} {r['contender']:<9} {r['rps']:>9.1f} "
                     f"{r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} {added50:>+8.3f} {added99:>+8.3f} {ratio:>8.2f} "
                     f"{r['errors']:>6} {own_cpu(r, r['contender']):>5} {r['cpu_source_us']:>6.0f} "
                     f"{r['cpu_kafka_us']:>5.0f} {r['cpu_machine_us']:>7.0f} {r['busy']:>5.2f}")
    cost = [r for r in rows if r["contender"] == "proxy" and (r["workload"], r["connections"], "early") in index]
    if cost:
        lines += ["", "release-after-ack on writes: proxy (last bytes held for the acknowledgement) against early "
                  "(forwarded at once, response held); added = minus direct",
                  f"{'workload':<12} {'conn':>4} {'+p50 early':>10} {'+p50 proxy':>10} {'+p99 early':>10} "
                  f"{'+p99 proxy':>10} {'p50 cost':>9} {'p99 cost':>9} {'req/s ratio':>11}"]
        for r in cost:
            direct = index[(r["workload"], r["connections"], "direct")]
            before = index[(r["workload"], r["connections"], "early")]
            lines.append(f"{r['workload']:<12} {r['connections']:>4} {before['p50_ms'] - direct['p50_ms']:>+10.3f} "
                         f"{r['p50_ms'] - direct['p50_ms']:>+10.3f} {before['p99_ms'] - direct['p99_ms']:>+10.3f} "
                         f"{r['p99_ms'] - direct['p99_ms']:>+10.3f} {r['p50_ms'] - before['p50_ms']:>+9.3f} "
                         f"{r['p99_ms'] - before['p99_ms']:>+9.3f} "
                         f"{_ratio(r['rps'], before['rps']):>11.2f}")
    against = [r for r in rows if r["contender"] == "proxy" and (r["workload"], r["connections"], "base") in index]
    if against:
        lines += ["", "proxy against base (--baseline): ratios of req/s, p50 and p99 (1.00: the same)",
                  f"{'workload':<12} {'conn':>4} {'req/s':>7} {'p50':>7} {'p99':>7}"]
        for r in against:
            b = index[(r["workload"], r["connections"], "base")]
            lines.append(f"{r['workload']:<12} {r['connections']:>4} {_ratio(r['rps'], b['rps']):>7.2f} "
                         f"{_ratio(r['p50_ms'], b['p50_ms']):>7.2f} {_ratio(r['p99_ms'], b['p99_ms']):>7.2f}")
    lines.append("")
    lines.append(f"proxy requests not captured: {missed:.0f}; capture records on the topic: {records}")
    lines.append(f"total run time: {seconds:.0f} s")
    text = "\n".join(lines)
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "capture_proxy.txt").write_text(text + "\n")
    (RESULTS / "capture_proxy.json").write_text(json.dumps({"machine": host, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
