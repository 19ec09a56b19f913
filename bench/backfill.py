"""Backfill throughput: this worker against the target's ingest ceiling and the tools users pick instead.

One run, one machine, the same data (a multi-shard `logs` index of 1M documents on Elasticsearch 7.10.2,
snapshotted), into OpenSearch 2.19, the target index recreated identically before each contender:
  1. ceiling: the same documents as ready-made (pre-gzipped) NDJSON bodies, posted with the worker's in-flight
     policy (the same adaptive limit) and, as a second shape, 4 x 2 MiB fixed; the better is the ceiling;
  2. this worker (defaults: up to 10 x 10 MiB in flight, adaptive, gzip), run three ways: every shard in one run
     (`--shard all`: shard after shard, sharing the connections and the in-flight limit); one shard per run,
     one after another; and as the workflow runs it on its local instance, one worker process per shard, two at
     a time (the `shard_backfill` pool's limit there); and once more in one run with the second ceiling's shape
     (`--max-connections 4 --fixed-concurrency --max-bulk-bytes 2MiB`), so that each ceiling shape has the
     worker's figure in the same shape;
  3. peers: OpenSearch reindex-from-remote, elasticdump (npm), opensearch-py helpers.reindex.
The target is warmed up first (a fresh JVM indexes slowly until its JIT settles); the ceiling shapes and the
worker and reindex-from-remote (the closest peer) are then measured in rounds (default 3) in a rotated order,
and their median is reported, since this VM's speed drifts by a quarter over minutes. The other peers, far
behind, run once each. Each row also gives the CPU seconds the target's JVM and the client side (this process and
the worker processes it ran) used: on 2 cores they compete, and a request shape that costs the target more CPU
per document shows there.

    .venv/bin/python bench/backfill.py [--docs 1000000] [--shards 4] [--rounds 3] [--skip elasticdump] [--keep]
                                       [--only CONTENDER ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

import orjson
from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import TransportError

from migration_pipeline.sandbox import loader, manager
from migration_pipeline.sandbox.datagen import PROFILES
from workers.common.cluster_info import observe
from workers.common.clusters import ClusterConnection
from workers.documents.reader import read_snapshot_documents
from workers.rfs.concurrency import AdaptiveLimit
from workers.rfs.options import BackfillOptions
from workers.rfs.progress import Progress
from workers.rfs.retry import backoff
from workers.rfs.worker import run_shard, run_shards
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.create import create_snapshot, register_fs_repository

RESULTS = Path(__file__).parent / "results"
INDEX = "bench-backfill"
CONCURRENCY = 10
WORKER = "this worker, --shard all"
SEQUENTIAL = "this worker, shard after shard"
POOLED = "this worker, 2 shard processes"
SMALL_SHAPE = "this worker, --shard all, 4 x 2 MiB"
CEILING = "ceiling: 10 x 10 MiB, adaptive"
SMALL_CEILING = "ceiling: 4 x 2 MiB, fixed"
SMALL_BODY_BYTES = 2 << 20
# Shard runs at once on the workflow's own local instance (the pool limit in workflow_model/store.py).
WORKFLOW_POOL = 2
BODY_BYTES = 10 << 20


def machine() -> dict[str, object]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    return {"cpus": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1), "python": platform.python_version()}


def reset_target(target: OpenSearch, shards: int) -> None:
    if target.indices.exists(index=INDEX):
        target.indices.delete(index=INDEX)
    target.indices.create(index=INDEX, body={
        "settings": {"index": {"number_of_shards": shards, "number_of_replicas": 0}},
        "mappings": PROFILES["logs"].mapping})
    for coordination in (".migrations_working_state",):
        if target.indices.exists(index=coordination):
            target.indices.delete(index=coordination)


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process (the target's JVM), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time of this process (the ceiling's poster, the worker in-process) and of its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(label: str, target: OpenSearch, target_pid: int, shards: int, docs: int, source_mb: float,
          run: Callable[[], None]) -> dict[str, float | str]:
    """One contender's run; also the CPU the target and the client side used (on 2 cores they compete)."""
    reset_target(target, shards)
    print(f"running {label} ...", flush=True)
    target_cpu, own_cpu = process_cpu_seconds(target_pid), own_cpu_seconds()
    began = time.monotonic()
    run()
    target.indices.refresh(index=INDEX)
    seconds = time.monotonic() - began
    target_cpu, own_cpu = process_cpu_seconds(target_pid) - target_cpu, own_cpu_seconds() - own_cpu
    count = target.count(index=INDEX)["count"]
    if count != docs:
        raise SystemExit(f"{label}: target has {count} documents, expected {docs}")
    row: dict[str, float | str] = {"contender": label, "seconds": round(seconds, 1),
                                   "docs_per_s": round(docs / seconds), "mb_per_s": round(source_mb / seconds, 2),
                                   "target_cpu_s": round(target_cpu, 1), "client_cpu_s": round(own_cpu, 1)}
    print(f"  {row}", flush=True)
    return row


def ndjson_bodies(repo: str, snapshot: str, folder: Path, body_bytes: int) -> list[Path]:
    """The snapshot's documents as pre-gzipped _bulk bodies of about ``body_bytes``, written to disk."""
    paths: list[Path] = []
    lines: list[bytes] = []
    size = 0

    def flush() -> None:
        nonlocal lines, size
        path = folder / f"body-{body_bytes}-{len(paths):05d}.ndjson.gz"
        path.write_bytes(gzip.compress(b"".join(lines), compresslevel=1))
        paths.append(path)
        lines, size = [], 0

    for doc in read_snapshot_documents(open_blob_store(repo), snapshot):
        action = {"index": {"_index": INDEX, "_id": doc.id, **({"routing": doc.routing} if doc.routing else {})}}
        line = orjson.dumps(action) + b"\n" + doc.source + b"\n"
        if size + len(line) > body_bytes and lines:
            flush()
        lines.append(line)
        size += len(line)
    if lines:
        flush()
    return paths


def post_bodies(target_url: str, bodies: list[Path], connections: int, adaptive: bool) -> None:
    """Post ready-made bodies with the worker's in-flight policy (same AdaptiveLimit) and backoff on 429s.

    An item-level rejection resends the whole body: an upper bound on the ceiling's cost, and rare.
    """
    client = OpenSearch(hosts=[target_url], timeout=300, pool_maxsize=connections + 2, max_retries=0)
    headers = {"content-type": "application/x-ndjson", "content-encoding": "gzip"}
    limit = AdaptiveLimit(connections, adaptive=adaptive)

    def post(path: Path) -> None:
        body = path.read_bytes()
        for attempt in range(1, 51):
            epoch = limit.epoch
            began = time.perf_counter()
            try:
                resp = client.transport.perform_request("POST", "/_bulk", body=body, headers=headers,
                                                        params={"filter_path": "errors"})
            except TransportError as exc:
                if exc.status_code != 429:
                    raise
                resp = {"errors": True}
            if not resp.get("errors"):
                if attempt == 1:
                    limit.succeeded(epoch, time.perf_counter() - began, len(body))
                return
            limit.throttled(epoch)
            time.sleep(backoff(attempt, 0.5, 30.0))
        raise SystemExit(f"ceiling: {path} still failing after 50 tries")

    with ThreadPoolExecutor(connections) as pool:
        in_flight: set[Future[None]] = set()
        for path in bodies:
            while len(in_flight) >= limit.limit:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for f in done:
                    f.result()
            in_flight.add(pool.submit(post, path))
        for f in in_flight:
            f.result()


def run_worker(repo: str, snapshot: str, target_url: str, shards: int, one_run: bool = True,
               small_shape: bool = False) -> None:
    """The worker with its defaults (or the second ceiling's request shape): every shard in one run (as
    ``--shard all``), or one run per shard."""
    options = BackfillOptions(target=ClusterConnection(endpoint=target_url, timeout_s=300), dead_letter="off")
    if small_shape:
        options = dataclasses.replace(options, max_connections=4, adaptive_concurrency=False,
                                      max_bulk_bytes=SMALL_BODY_BYTES)
    if one_run:
        results = run_shards(open_blob_store(repo), snapshot, INDEX, list(range(shards)), options, Progress())
    else:
        results = [run_shard(open_blob_store(repo), snapshot, INDEX, shard, options, Progress())
                   for shard in range(shards)]
    limits = [f"{r.concurrency.get('highest')}/{r.concurrency.get('final')}" for r in results]
    print(f"  worker in-flight limit per shard (highest/final): {' '.join(limits)}", flush=True)


def run_worker_processes(repo: str, snapshot: str, target_url: str, shards: int,
                         at_once: int = WORKFLOW_POOL) -> None:
    """The shards as the workflow runs them locally: ``python -m workers.rfs`` per shard, ``at_once`` at a time."""
    def one(shard: int) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "workers.rfs", "--snapshot-repo", Path(repo).as_uri(), "--snapshot", snapshot,
             "--index", INDEX, "--shard", str(shard), "--target-endpoint", target_url, "--target-timeout", "300",
             "--dead-letter", "off"], capture_output=True, text=True, cwd=Path(__file__).parent.parent)
        if proc.returncode != 0:
            raise SystemExit(f"worker for shard {shard} exited {proc.returncode}: {proc.stderr[-2000:]}")

    with ThreadPoolExecutor(at_once) as pool:
        list(pool.map(one, range(shards)))


def median_row(label: str, results: list[dict[str, float | str]], docs: int,
               source_mb: float) -> dict[str, float | str]:
    """One contender over its rounds: the median time, and every round's docs/s."""
    seconds = statistics.median(float(r["seconds"]) for r in results)
    return {"contender": label, "seconds": round(seconds, 1), "docs_per_s": round(docs / seconds),
            "mb_per_s": round(source_mb / seconds, 2),
            **{key: round(statistics.median(float(r[key]) for r in results), 1)
               for key in ("target_cpu_s", "client_cpu_s")},
            "rounds_docs_per_s": " ".join(str(r["docs_per_s"]) for r in results)}


def reindex_from_remote(source_url: str, target: OpenSearch) -> None:
    task = target.reindex(body={"source": {"remote": {"host": source_url}, "index": INDEX, "size": 1000},
                                "dest": {"index": INDEX}}, params={"wait_for_completion": "false"})["task"]
    while True:
        status = target.tasks.get(task_id=task)
        if status.get("completed"):
            failures = status.get("response", {}).get("failures") or status.get("error")
            if failures:
                raise SystemExit(f"reindex-from-remote failed: {str(failures)[:500]}")
            return
        time.sleep(2)


def elasticdump_binary() -> str:
    folder = Path(__file__).parent / ".npm"
    binary = folder / "node_modules" / ".bin" / "elasticdump"
    if not binary.exists():
        subprocess.run(["npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund", "elasticdump@6"],
                       check=True, capture_output=True)
    return str(binary)


def run_elasticdump(binary: str, source_url: str, target_url: str) -> None:
    subprocess.run([binary, f"--input={source_url}/{INDEX}", f"--output={target_url}/{INDEX}",
                    "--type=data", "--limit=1000", "--noRefresh"], check=True, capture_output=True)


def run_helpers_reindex(source_url: str, target_url: str) -> None:
    source = OpenSearch(hosts=[source_url], timeout=300)
    target = OpenSearch(hosts=[target_url], timeout=300, max_retries=10, retry_on_status=(429, 502, 503, 504))
    helpers.reindex(source, INDEX, INDEX, target_client=target, chunk_size=1000, scroll="10m")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--skip", action="append", default=[], help="peers to leave out")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of the ceiling, the worker and reindex-from-remote, order rotated; medians "
                             "reported (default 3)")
    parser.add_argument("--keep", action="store_true", help="leave the benchmark sandbox running")
    parser.add_argument("--only", action="append", default=[], metavar="CONTENDER",
                        help="measure in the rounds only this contender (a whole name) or those whose name starts "
                             "with this (repeatable; e.g. 'ceiling', 'this worker, --shard all'); --skip leaves the "
                             "other peers out")
    args = parser.parse_args()
    name = "bench-backfill"
    state = manager.up(manager.UpRequest(target_settings={"reindex.remote.allowlist": "127.0.0.1:*"}, heap="1g"),
                       name=name)
    source_url, target_url = state.engines["source"].url, state.engines["target"].url
    target_pid = state.engines["target"].pid
    source, target = OpenSearch(hosts=[source_url], timeout=300), OpenSearch(hosts=[target_url], timeout=300)
    work = Path(tempfile.mkdtemp(prefix="bench-backfill-", dir="/var/tmp"))
    try:
        if observe(source, source_url).indices.get(INDEX) != args.docs:
            if source.indices.exists(index=INDEX):
                source.indices.delete(index=INDEX)
            print(f"loading {args.docs} documents ({args.shards} shards) ...", flush=True)
            loader.load(source_url, INDEX, args.docs, profile_name="logs", shards=args.shards, routing=True, seed=5)
        repo = str(Path(state.engines["source"].repo_path) / "bench")
        register_fs_repository(source, "bench", repo)
        snapshot = f"s{int(time.time())}"
        create_snapshot(source, "bench", snapshot, indices=INDEX)
        print("preparing ready-made NDJSON bodies ...", flush=True)
        bodies = {size: ndjson_bodies(repo, snapshot, work, size) for size in (BODY_BYTES, SMALL_BODY_BYTES)}
        source_mb = sum(len(d.source) for d in read_snapshot_documents(open_blob_store(repo), snapshot)) / 1e6
        # The ceiling is the best of two request shapes: the target's physical limit, not one guess at it.
        measured: list[tuple[str, Callable[[], None]]] = [
            (CEILING, functools.partial(post_bodies, target_url, bodies[BODY_BYTES], CONCURRENCY, True)),
            (SMALL_CEILING, functools.partial(post_bodies, target_url, bodies[SMALL_BODY_BYTES], 4, False)),
            (WORKER, lambda: run_worker(repo, snapshot, target_url, args.shards)),
            (SMALL_SHAPE, lambda: run_worker(repo, snapshot, target_url, args.shards, small_shape=True)),
            (SEQUENTIAL, lambda: run_worker(repo, snapshot, target_url, args.shards, one_run=False)),
            (POOLED, lambda: run_worker_processes(repo, snapshot, target_url, args.shards)),
            # The closest peer: measured in the same rounds, since a margin from one run would be the VM's drift.
            ("reindex-from-remote", lambda: reindex_from_remote(source_url, target)),
        ]
        if args.only:
            # A whole label picks that contender alone; anything else picks every label it begins.
            labels = {label for label, _ in measured}
            measured = [(label, run) for label, run in measured
                        if any(label == o or (o not in labels and label.startswith(o)) for o in args.only)]
            if not measured:
                raise SystemExit(f"--only {args.only}: no contender of that name")
        # A fresh JVM indexes at a fraction of its speed until its JIT and heap settle, and this VM's speed
        # drifts over minutes: warm the target up, then measure in rounds, the order rotated each round.
        print("warming the target up (a quarter of the bodies, not measured) ...", flush=True)
        reset_target(target, args.shards)
        post_bodies(target_url, bodies[BODY_BYTES][: max(1, len(bodies[BODY_BYTES]) // 4)], CONCURRENCY, True)
        runs: dict[str, list[dict[str, float | str]]] = {label: [] for label, _ in measured}
        for round_ in range(args.rounds):
            shift = round_ % len(measured)
            for label, run in measured[shift:] + measured[:shift]:
                runs[label].append(timed(label, target, target_pid, args.shards, args.docs, source_mb, run))
        rows = [median_row(label, results, args.docs, source_mb) for label, results in runs.items()]
        # Installed before the clock starts: an npm install is not elasticdump's speed.
        dump = "" if "elasticdump" in args.skip else elasticdump_binary()
        peers: list[tuple[str, Callable[[], None]]] = [
            ("elasticdump", lambda: run_elasticdump(dump, source_url, target_url)),
            ("opensearch-py helpers.reindex", lambda: run_helpers_reindex(source_url, target_url)),
        ]
        for label, run in peers:
            if label.split()[0] in args.skip or label in args.skip:
                continue
            rows.append(timed(label, target, target_pid, args.shards, args.docs, source_mb, run))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            manager.down(name)
    by_label = {str(r["contender"]): r for r in rows}
    worker = by_label.get(WORKER)
    print(f"\nmachine: {machine()}; {args.docs} documents, {source_mb:.0f} MB of source, {args.shards} shards")
    print(f"{'contender':36} {'seconds':>8} {'docs/s':>9} {'MB/s':>7} {'worker / this':>14} {'target CPU s':>13} "
          f"{'client CPU s':>13}  rounds (docs/s)")
    for r in rows:
        ratio = f"{float(worker['docs_per_s']) / float(r['docs_per_s']):.2f}" if worker else "-"
        print(f"{r['contender']:36} {r['seconds']:>8} {r['docs_per_s']:>9} {r['mb_per_s']:>7} {ratio:>14} "
              f"{r['target_cpu_s']:>13} {r['client_cpu_s']:>13}  {r.get('rounds_docs_per_s', '')}")
    ceilings = [r for r in rows if str(r["contender"]).startswith("ceiling")]
    best = max(ceilings, key=lambda r: float(r["docs_per_s"])) if ceilings else None
    # Like with like (the measure: the same concurrency), then each against the better request shape.
    for label, ceiling in ((WORKER, CEILING), (SMALL_SHAPE, SMALL_CEILING)):
        if label in by_label and ceiling in by_label:
            print(f"{label} / {ceiling} (same shape): "
                  f"{float(by_label[label]['docs_per_s']) / float(by_label[ceiling]['docs_per_s']):.2f}")
    # Within a round the two ran one after the other: their ratio is the least touched by the VM's drift.
    for label, ceiling in ((WORKER, CEILING), (SMALL_SHAPE, SMALL_CEILING)):
        if runs.get(label) and runs.get(ceiling):
            paired = [float(w["docs_per_s"]) / float(c["docs_per_s"])
                      for w, c in zip(runs[label], runs[ceiling], strict=True)]
            print(f"{label} / {ceiling}, round by round: {' '.join(f'{r:.2f}' for r in paired)}; "
                  f"median {statistics.median(paired):.2f}")
    for label in (WORKER, SMALL_SHAPE, SEQUENTIAL, POOLED):
        if label in by_label and best is not None:
            print(f"{label} / best ceiling ({best['contender']}): "
                  f"{float(by_label[label]['docs_per_s']) / float(best['docs_per_s']):.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backfill.json").write_text(json.dumps({"machine": machine(), "docs": args.docs, "rows": rows},
                                                      indent=2) + "\n")


if __name__ == "__main__":
    main()
